"""The portability matrix (issue #5, RQ3), run for real on this machine.

One module-scoped run of ``run_portability`` on the local host builds every C server with
every compiler × mode × make here, cross-compiles with Zig and Go, and runs the smoke test,
a slice of the chat conformance suite and the regressions (v6-only in a throwaway network
namespace as root, signal storms, signal() check, the >2 GiB chat log on the 32-bit Zig
build). The tests then read the matrix.json it wrote. The remote part (lab and inventory
hosts) is exercised by the lead's end-to-end test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from analysis import rq3
from experiments.portability import run_portability
from experiments.portability.builds import EXPECTED_ELF, GO_TARGETS, ZIG_TARGETS
from experiments.portability.checks import parse_junit
from experiments.portability.elf import ElfError, parse_elf, read_elf
from experiments.portability.matrix import ROW_KEYS, SCHEMA, load_matrix
from experiments.portability.signal_check import check_sources, signal_calls
from experiments.portability.toolchains import compilers, makes
from experiments.server_registry import discover_servers
from infra.hosts import LocalHost

pytestmark = pytest.mark.integration

C_SERVERS = sorted(s.name for s in discover_servers().values() if s.language == "c")
GO_PROGRAMS = sorted(s.name for s in discover_servers().values() if s.language == "go") \
    + ["papaya-loadgen"]


@dataclass
class Entry:
    """Stand-in for infra.providers.HostEntry (same fields)."""

    name: str
    roles: list[str]
    host: Any
    address: str = "127.0.0.1"
    cpus: list[int] | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def _entry() -> Any:
    try:
        from infra.providers import HostEntry
    except ImportError:
        return Entry("local", ["server"], LocalHost())
    return HostEntry("local", ["server"], LocalHost(), "127.0.0.1", None, {})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("portability")
    # A slice of the conformance suite keeps this file within its time budget; the full suite
    # runs in `invoke portability`.
    return run_portability([_entry()], out_root=out, console=Console(quiet=True),
                           conformance_files=("tests/chat/test_protocol.py",),
                           conformance_select="history or key")


@pytest.fixture(scope="module")
def matrix(run_dir: Path) -> dict[str, Any]:
    return load_matrix(run_dir / "matrix.json")


def _rows(matrix: dict[str, Any], **where: Any) -> list[dict[str, Any]]:
    return [r for r in matrix["rows"] if all(r[k] == v for k, v in where.items())]


def _test(row: dict[str, Any], name: str) -> dict[str, Any]:
    found = [t for t in row["tests"] if t["name"] == name]
    assert found, f"{row['id']}: no {name} test in {[t['name'] for t in row['tests']]}"
    return found[0]


# ------------------------------------------------------------------------------ schema


def test_matrix_schema_and_rows(run_dir: Path, matrix: dict[str, Any]) -> None:
    assert matrix["schema"] == SCHEMA and matrix["run_id"] == run_dir.name
    assert matrix["hosts"][0]["name"] == "local"
    for row in matrix["rows"]:
        assert set(ROW_KEYS) <= set(row), row["id"]
        assert (run_dir / row["log"]).is_file(), row["log"]
        assert row["tests_total"] == sum(t["total"] for t in row["tests"]
                                         if t["status"] != "skipped")


# ------------------------------------------------------------------------------ native builds


def test_native_matrix_every_combination_builds_without_warnings(matrix: dict[str, Any]
                                                                 ) -> None:
    here = LocalHost()
    cc_kinds = {c.kind for c in compilers(here)}
    make_labels = {m.label for m in makes(here)}
    assert {"gcc", "clang"} <= cc_kinds and {"GNU make", "bmake"} <= make_labels, \
        "CI installs gcc, clang, make and bmake"
    native = _rows(matrix, kind="native", host="local")
    combos = {(r["server"], r["compiler"], r["mode"], r["make"]) for r in native}
    expected = {(s, c, m, mk) for s in C_SERVERS for c in cc_kinds for m in ("strict", "gnu")
                for mk in make_labels}
    assert combos == expected
    for row in native:
        assert row["builds"], f"{row['id']}: {row['errors']}"
        assert row["warnings"] == [], row["id"]
        assert row["compiler_version"] and row["make_version"], row["id"]


def test_makefiles_keep_cppflags_when_the_mode_is_set(tmp_path: Path) -> None:
    """CFLAGS on the command line (the mode) must not drop -D_FILE_OFFSET_BITS=64."""
    for server in (s for s in discover_servers().values() if s.language == "c"):
        for make in ("make", "bmake"):
            if shutil.which(make) is None:
                continue
            result = subprocess.run(
                [make, "-n", "CFLAGS=-std=gnu11", f"BUILD_DIR={tmp_path / make}"],
                cwd=server.source_dir, capture_output=True, text=True, timeout=60, check=True)
            compiles = [line for line in result.stdout.splitlines() if " -c " in line]
            assert compiles and all("-D_FILE_OFFSET_BITS=64" in line and "-std=gnu11" in line
                                    for line in compiles), (server.name, make, compiles[:2])


def test_a_warning_fails_the_build_and_is_listed(tmp_path: Path) -> None:
    """The build function itself: -Werror stops it and the relaxed rebuild names the warning."""
    from experiments.portability.builds import build_c
    from experiments.portability.toolchains import MODES

    server = discover_servers()["c-fork"]
    src = tmp_path / "src"
    shutil.copytree(server.source_dir, src, ignore=shutil.ignore_patterns("build"))
    options = src / "options.c"
    options.write_text(options.read_text() + "\nstatic int unusedOnPurpose;\n")
    gnu = next(m for m in makes(LocalHost()) if m.kind == "gnu")
    built, warnings, errors, _ = build_c(LocalHost(), server, src, tmp_path / "b", gnu, "gcc",
                                         MODES["strict"], tmp_path / "log", jobs=2)
    assert not built
    assert any("unusedOnPurpose" in w and "warning:" in w for w in warnings), warnings
    assert any("unusedOnPurpose" in e for e in errors), errors


# ------------------------------------------------------------------------------ cross builds


@pytest.mark.parametrize("target", ZIG_TARGETS)
def test_zig_cross_builds_have_the_right_format(matrix: dict[str, Any], target: str) -> None:
    rows = _rows(matrix, kind="cross-zig", target=target)
    assert sorted(r["server"] for r in rows) == C_SERVERS
    machine, freebsd = EXPECTED_ELF[target]
    for row in rows:
        assert row["builds"], f"{row['id']}: {row['errors']} {row['notes']}"
        assert row["binary"]["machine"] == machine and row["binary"]["is_freebsd"] == freebsd
        assert row["binary"]["bits"] == (32 if target.startswith("x86-") else 64)


@pytest.mark.parametrize(("goos", "goarch"), GO_TARGETS)
def test_go_cross_builds_have_the_right_format(matrix: dict[str, Any], goos: str,
                                              goarch: str) -> None:
    rows = _rows(matrix, kind="cross-go", target=f"{goos}/{goarch}")
    assert sorted(r["server"] for r in rows) == GO_PROGRAMS
    machine, freebsd = EXPECTED_ELF[f"{goos}/{goarch}"]
    for row in rows:
        assert row["builds"], f"{row['id']}: {row['errors']}"
        assert row["binary"]["machine"] == machine and row["binary"]["is_freebsd"] == freebsd
        assert row["binary"]["interpreter"] is None  # CGO_ENABLED=0: static


def test_elf_reader_on_this_machine_and_on_garbage(tmp_path: Path) -> None:
    info = read_elf(Path(os.readlink("/proc/self/exe")) if Path("/proc/self/exe").exists()
                    else Path("/bin/sh"))
    assert info.bits == 64 and info.machine == "x86-64" and not info.is_freebsd
    with pytest.raises(ElfError):
        parse_elf(b"#!/bin/sh\n" + b"\0" * 64)


# ------------------------------------------------------------------------------ tests run


def test_smoke_and_conformance_ran_on_the_reference_builds(matrix: dict[str, Any]) -> None:
    ref = {r["server"]: r for r in _rows(matrix, kind="native", host="local", mode="strict",
                                          compiler="gcc", make="GNU make")}
    assert _test(ref["c-fork"], "smoke")["status"] == "passed"
    conformance = _test(ref["chat-c"], "conformance")
    assert conformance["status"] == "passed" and conformance["total"] >= 5, conformance
    go = {r["server"]: r for r in _rows(matrix, kind="deployed-go", host="local")}
    assert _test(go["go-goroutine"], "smoke")["status"] == "passed"
    assert _test(go["chat-go"], "conformance")["passed"] == _test(go["chat-go"],
                                                                 "conformance")["total"] > 0


def test_junit_results_are_split_by_implementation(tmp_path: Path) -> None:
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="t" name="test_a[c]" time="0.1"/>'
        '<testcase classname="t" name="test_a[go]" time="0.1"><failure message="x"/></testcase>'
        '<testcase classname="t" name="test_b[0o644-c]" time="0.1"><skipped/></testcase>'
        '<testcase classname="t" name="test_both" time="0.1"/>'
        "</testsuite></testsuites>")
    results = parse_junit(xml, ["c", "go"], "local")
    assert (results["c"].passed, results["c"].total, results["c"].status) == (2, 2, "passed")
    assert (results["go"].passed, results["go"].total) == (1, 2)
    assert results["go"].failures == ["t::test_a[go]"]


# ------------------------------------------------------------------------------ regressions


def test_v6only_regression_in_a_throwaway_namespace(matrix: dict[str, Any]) -> None:
    rows = [r for r in matrix["rows"] if r["host"] == "local"
            and any(t["name"] == "v6only" for t in r["tests"])]
    assert {r["server"] for r in rows} == {s for s in discover_servers()}
    for row in rows:
        test = _test(row, "v6only")
        if os.geteuid() != 0:
            assert test["status"] == "skipped" and "root" in test["detail"][0]
            continue
        assert test["status"] == "passed", test
        names = " ".join(name for name, _, _ in test["detail"])
        assert "ipv4 client reaches" in names
        assert "IPV6_V6ONLY=1" in test["detail"][0][2] and "namespace" in test["detail"][0][2]
        if discover_servers()[row["server"]].workload == "chat":
            assert "ipv6 client reaches" in names  # --ipv6: v6-only by design, IPv6 served
    if os.geteuid() == 0:
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                               check=True).stdout
        assert "papaya-v6" not in netns, "the throwaway namespace was not removed"


@pytest.mark.parametrize("check", ["sigchld", "sigusr1"])
def test_signal_storms_on_strict_builds(matrix: dict[str, Any], check: str) -> None:
    targets = [("native", "x86_64-linux"), ("cross-zig", "x86-linux-gnu")]
    for kind, target in targets:
        for server in C_SERVERS:
            rows = [r for r in _rows(matrix, kind=kind, server=server, mode="strict")
                    if r["target"].startswith(target) and r["tests"]]
            assert rows, (kind, target, server)
            test = _test(rows[0], check)
            assert test["status"] == "passed", test
            subchecks = {name: ok for name, ok, _ in test["detail"]}
            if check == "sigchld":
                assert any("1000 connections" in n for n in subchecks), subchecks
                assert subchecks["every connection was served (no accept lost)"]
                assert subchecks["every child reaped (no zombies)"]
                assert subchecks["still accepts and serves afterwards"]
            elif server == "chat-c":  # uses SIGUSR1: must survive it
                assert subchecks["no process died (server, every RECV and SEND)"]
                assert subchecks["every client got every line"]
            else:  # c-fork does not handle SIGUSR1: the default action ends the group
                assert any("default action" in n for n in subchecks), subchecks


def test_no_signal_calls_and_the_check_catches_one(matrix: dict[str, Any],
                                                  tmp_path: Path) -> None:
    check = matrix["checks"]["no_signal_calls"]
    assert check["passed"] and len(check["files_checked"]) >= 20 and check["calls"] == []
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ok.c").write_text("/* signal(SIGINT, h) in a comment */\n"
                              'const char *s = "signal(";\nint senderSignal(int);\n')
    assert check_sources([bad]).passed
    (bad / "handler.c").write_text("#include <signal.h>\nvoid h(int s) { (void) s; }\n"
                                   "void f(void) {\n    if (signal (SIGCHLD, h) == SIG_ERR)\n"
                                   "        return;\n}\n")
    result = check_sources([bad])
    assert not result.passed and result.calls == [
        f"{bad / 'handler.c'}:4: if (signal (SIGCHLD, h) == SIG_ERR)"]
    assert signal_calls("x = sigaction(SIGINT, &sa, NULL); raise_signal(1);") == []


def test_big_chat_log_on_32_bit(matrix: dict[str, Any]) -> None:
    zig = _rows(matrix, kind="cross-zig", target="x86-linux-gnu", server="chat-c")[0]
    test = _test(zig, "biglog")
    assert test["status"] == "passed", test
    details = {name: detail for name, _, detail in test["detail"]}
    assert "appended past 2 GiB" in " ".join(details)
    go386 = _rows(matrix, kind="cross-go", target="linux/386", server="chat-go")[0]
    assert _test(go386, "biglog")["status"] == "passed"


# ------------------------------------------------------------------------------ RQ3 table


def test_rq3_table_from_the_real_matrix(run_dir: Path, matrix: dict[str, Any],
                                        tmp_path: Path) -> None:
    out, used = rq3.write_rq3(tmp_path / "generated", matrix_path=run_dir / "matrix.json")
    assert used == run_dir / "matrix.json"
    tex = out.read_text()
    assert "\\label{tab:rq3}" in tex and "\\begin{tabular}" in tex
    table = rq3.rq3_table(matrix)
    cells = {tuple(row[:5]): row for row in table.rows}
    native_builds = len(C_SERVERS)
    gcc = next(r for key, r in cells.items()
               if key[1] == "local" and key[2].startswith("gcc") and key[3] == "strict"
               and key[4] == "GNU make")
    assert gcc[5] == f"{native_builds}/{native_builds}" and gcc[6] == "0"
    passed, total = (int(x) for x in gcc[7].split("/"))
    assert passed == total > 0
    freebsd = [row for row in table.rows if "freebsd" in row[0]]
    assert freebsd and all(row[7] == rq3.NOT_RUN_FREEBSD for row in freebsd)
    assert rq3.NOT_RUN_FREEBSD.replace(",", "") in tex.replace(",", "")
    # Every number of the table comes from the matrix: the builds column adds up to it.
    built = sum(int(row[5].split("/")[0]) for row in table.rows)
    assert built == sum(1 for r in matrix["rows"] if r["builds"])


def test_rq3_without_a_matrix_says_how_to_make_one(tmp_path: Path) -> None:
    out, used = rq3.write_rq3(tmp_path / "generated", data_dir=tmp_path / "no-data")
    assert used is None and "invoke portability" in out.read_text()
    assert "invoke portability" in rq3.html_section(tmp_path / "no-data")


def test_matrix_file_is_json_with_a_version(run_dir: Path) -> None:
    raw = json.loads((run_dir / "matrix.json").read_text())
    assert raw["schema"] == SCHEMA and raw["duration_s"] > 0
    assert not (run_dir / "bin").exists()  # cross binaries are not kept
