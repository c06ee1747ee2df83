"""`invoke import-top`: legacy top logs (FreeBSD and procps) into imported runs under data/raw.

Expected values are written out by hand from the fixtures in tests/fixtures/top/, so a
parser that reads the wrong column or rounds a sum fails here.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from experiments.cells import cell_id
from experiments.importers import TopImportError, import_top
from experiments.importers.__main__ import main as cli_main
from experiments.importers.top_import import TRACE_COLUMNS
from experiments.importers.toplog import (
    command_matches,
    parse_memory,
    parse_percent,
    parse_top_file,
)
from experiments.rawdata import RunDir
from experiments.tracer import COLUMNS

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "top"
FREEBSD = FIXTURES / "freebsd_server_bin.txt"
FREEBSD_SMP = FIXTURES / "freebsd_smp.txt"
PROCPS = FIXTURES / "linux_procps.txt"
PROCPS_OLD = FIXTURES / "linux_procps_3.2.txt"
MALFORMED = FIXTURES / "malformed_freebsd.txt"
EMPTY = FIXTURES / "empty.txt"
WRONG = FIXTURES / "wrong_format.txt"
KIB = 1024

# freebsd_server_bin.txt, per screen: server.bin CPU sum, rows, RES sum (KiB), THR sum, and
# the host line (user+nice, system, interrupt, idle).
FREEBSD_CPU = ["2.59", "0", "4.67", "12.90", "0", "2.05", "11.35", "2.44"]
FREEBSD_ROWS = [3, 0, 4, 3, 0, 2, 4, 2]
FREEBSD_RES_KIB = [5356, 0, 7148, 12 * 1024 + 1784 + 1792, 0, 3572, 7152, 3576]
FREEBSD_HOST = [(1.2, 2.0, 0.4, 96.4), (0.0, 0.0, 0.0, 100.0), (2.4, 3.1, 0.8, 93.7),
                (10.2, 4.3, 1.2, 84.3), (0.0, 0.4, 0.0, 99.6), (0.8, 1.6, 0.4, 97.2),
                (3.9, 6.3, 1.2, 88.6), (1.2, 1.2, 0.0, 97.6)]
# linux_procps.txt: the server starts after screen 1 and is gone in screen 6; in screen 4 it
# is there at 0.0 %, which is a real zero, not a missing row.
PROCPS_CPU = [0.0, 1.6, 3.9, 0.0, 12.2, 0.0]
PROCPS_NO_MATCH = [1, 0, 0, 0, 0, 1]
PROCPS_ROWS = [0, 2, 3, 3, 3, 0]
PROCPS_RES_KIB = [0, 920, 3608, 3608, 3624, 0]
# user = us + ni, idle = id + wa, softirq = si (as the tracer does on Linux)
PROCPS_HOST_SCREEN_3 = (2.7, 3.9, 0.9, 92.5)


def _import(raw: Path, files: list[Path], **options) -> object:
    options = {"server": "c-fork", "connections": 4, "cpus": 1, "command": "server.bin",
               **options}
    return import_top([str(f) for f in files], raw_dir=raw, base_dirs=[REPO], **options)


def _trace(run_dir: Path, cell: str) -> list[dict[str, str]]:
    with open(run_dir / cell / "trace.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _only_cell(run_dir: Path) -> str:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert len(manifest["cells"]) == 1
    return manifest["cells"][0]["id"]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(root.rglob("*"))}


# --- parsing ------------------------------------------------------------------------------

def test_freebsd_screens_sum_exactly(tmp_path: Path) -> None:
    result = _import(tmp_path, [FREEBSD])
    rows = _trace(result.run_dir.path, _only_cell(result.run_dir.path))
    assert list(rows[0]) == TRACE_COLUMNS == [*COLUMNS, "top_no_match"]
    assert [r["cpu_pct"] for r in rows] == FREEBSD_CPU  # exact decimal sums, no float noise
    assert [int(r["top_no_match"]) for r in rows] == [0, 1, 0, 0, 1, 0, 0, 0]
    assert [int(r["n_procs"]) for r in rows] == FREEBSD_ROWS
    assert [int(r["n_threads"]) for r in rows] == FREEBSD_ROWS  # one thread per C process
    assert [int(r["rss_bytes"]) for r in rows] == [k * KIB for k in FREEBSD_RES_KIB]
    host = [tuple(float(r[c]) for c in ("host_user_pct", "host_system_pct",
                                        "host_softirq_pct", "host_idle_pct")) for r in rows]
    assert host == FREEBSD_HOST
    assert [float(r["t_rel_s"]) for r in rows] == [0.5 * k for k in range(1, 9)]
    assert all(r["warmup"] == "0" for r in rows)
    for column in ("t_unix", "user_pct", "system_pct", "ctx_voluntary", "ctx_involuntary",
                   "ctx_voluntary_per_s", "ctx_involuntary_per_s"):
        assert {r[column] for r in rows} == {""}, column


def test_procps_screens_sum_exactly(tmp_path: Path) -> None:
    result = _import(tmp_path, [PROCPS])
    rows = _trace(result.run_dir.path, _only_cell(result.run_dir.path))
    assert [float(r["cpu_pct"]) for r in rows] == PROCPS_CPU
    assert [int(r["top_no_match"]) for r in rows] == PROCPS_NO_MATCH
    assert [int(r["n_procs"]) for r in rows] == PROCPS_ROWS
    assert [int(r["rss_bytes"]) for r in rows] == [k * KIB for k in PROCPS_RES_KIB]  # KiB
    assert {r["n_threads"] for r in rows} == {""}  # procps shows no thread column by default
    third = rows[2]
    assert (float(third["host_user_pct"]), float(third["host_system_pct"]),
            float(third["host_softirq_pct"]), float(third["host_idle_pct"])) \
        == PROCPS_HOST_SCREEN_3


def test_freebsd_smp_columns_and_per_cpu_lines() -> None:
    """`top -CIbtP` on 2 CPUs: USERNAME and C columns, one CPU line per CPU (averaged)."""
    log = parse_top_file(FREEBSD_SMP, "go-goroutine")
    assert not log.problems
    assert [s.cpu_pct for s in log.screens] == [Decimal("4.30"), Decimal("103.52"), 0]
    assert [s.n_threads for s in log.screens] == [6, 7, 0]
    assert [s.rss_bytes for s in log.screens] == [11 * KIB**2, 14 * KIB**2, 0]
    assert log.screens[1].host == {"host_user_pct": 44.45, "host_system_pct": 11.2,
                                   "host_softirq_pct": 1.0, "host_idle_pct": 43.35}


def test_procps_3_2_format_and_clock_past_midnight() -> None:
    log = parse_top_file(PROCPS_OLD, "server.bin")
    assert not log.problems
    assert log.format == "procps"
    assert [s.cpu_pct for s in log.screens] == [Decimal("1.3"), Decimal("9.9")]
    assert log.screens[0].rss_bytes == 12 * KIB**2 + 788 * KIB  # "12m" + "788" (KiB)
    assert log.screens[1].host["host_softirq_pct"] == 1.6
    assert [s.clock for s in log.screens] == ["23:59:59", "00:00:00"]
    assert log.clock_elapsed_s() == 1.0


@pytest.mark.parametrize(("text", "expected"), [
    ("1788K", 1788 * KIB), ("12M", 12 * KIB**2), ("1.5G", 3 * KIB**3 // 2),
    ("788", 788 * KIB), ("1.2g", round(Decimal("1.2") * KIB**3)), ("12m", 12 * KIB**2),
    ("512B", 512), ("0", 0), ("2,5m", 5 * KIB**2 // 2),
    ("12X", None), ("", None), ("-5K", None), ("1.2.3M", None),
])
def test_res_sizes(text: str, expected: int | None) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("1.37%", Decimal("1.37")), ("0.0", Decimal("0.0")), ("103.52%", Decimal("103.52")),
    ("100%", Decimal("100")), ("1,3", Decimal("1.3")),
    ("1.3x", None), ("-1.0", None), ("NaN", None), ("", None),
])
def test_cpu_percentages(text: str, expected: Decimal | None) -> None:
    assert parse_percent(text) == expected


def test_command_matching() -> None:
    assert command_matches("server.bin", "server.bin", "freebsd")
    assert command_matches("/usr/local/bin/server.bin -p 5000", "server.bin", "freebsd")
    assert not command_matches("server.bin2", "server.bin", "procps")
    assert not command_matches("xserver.bin", "server.bin", "procps")
    # Linux shows at most 15 characters of a process name.
    assert command_matches("go-goroutine-se", "go-goroutine-server", "procps")
    assert not command_matches("go-goroutine-se", "go-goroutine-server", "freebsd")


# --- cleaning rule --------------------------------------------------------------------------

@pytest.mark.parametrize("paper_compatible", [False, True])
def test_both_rules_keep_every_screen(tmp_path: Path, paper_compatible: bool) -> None:
    """The rule is recorded; every screen is written either way, flagged, so the analysis can
    show both means from one import."""
    result = _import(tmp_path, [FREEBSD], paper_compatible=paper_compatible)
    manifest = result.run_dir.read_manifest()
    assert manifest["cleaning_rule"] == ("paper-compatible" if paper_compatible else "zero-fill")
    trace = pd.read_csv(result.run_dir.path / _only_cell(result.run_dir.path) / "trace.csv")
    assert len(trace) == 8
    assert trace["cpu_pct"].mean() == pytest.approx(36.00 / 8, abs=1e-12)  # zero-fill
    matched = trace[trace["top_no_match"] == 0]
    assert matched["cpu_pct"].mean() == pytest.approx(36.00 / 6, abs=1e-12)  # paper rule
    item = result.files[0]
    assert item.mean_cpu("zero-fill", 0.0, 0.5) == pytest.approx(4.5)
    assert item.mean_cpu("paper-compatible", 0.0, 0.5) == pytest.approx(6.0)


def test_warmup_flags_by_schedule(tmp_path: Path) -> None:
    result = _import(tmp_path, [FREEBSD], warmup_s=1.0)
    rows = _trace(result.run_dir.path, _only_cell(result.run_dir.path))
    assert [int(r["warmup"]) for r in rows] == [1, 1, 0, 0, 0, 0, 0, 0]
    status = json.loads((result.run_dir.path / _only_cell(result.run_dir.path)
                         / "status.json").read_text())
    assert (status["warmup_s"], status["measure_s"]) == (1.0, 3.0)


# --- what is written ------------------------------------------------------------------------

def test_manifest_and_status_fields(tmp_path: Path) -> None:
    result = _import(tmp_path, [FREEBSD])
    run = result.run_dir.path
    assert run.parent == tmp_path
    assert run.name.split("-")[2] == "imported" and len(run.name.split("-")[3]) == 4
    manifest = result.run_dir.read_manifest()
    data = FREEBSD.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert manifest["source"] == "imported"
    assert manifest["tools"] is None
    assert manifest["started_at"] is None and manifest["cpu_isolation"] is None
    host = manifest["hosts"]["unknown"]
    assert host["os"] == "FreeBSD" and host["cores"] is None and host["kernel"] is None
    assert "unknown" in manifest["hosts_note"]
    (record,) = manifest["imports"]
    assert record["importer_version"] and record["command"] == "server.bin"
    assert record["cleaning_rule"] == "zero-fill"
    (entry,) = record["files"]
    assert entry["sha256"] == digest
    assert entry["size_bytes"] == len(data) == FREEBSD.stat().st_size
    assert entry["path"] == str(FREEBSD)
    assert (entry["screens"], entry["screens_no_match"]) == (8, 2)
    assert (entry["clock_first"], entry["clock_last"]) == ("10:02:11", "10:02:14")

    (cell,) = manifest["cells"]
    assert cell["status"] == "ok"
    assert cell["factors"] == {"server": "c-fork", "workload": "sink", "connections": 4,
                               "bandwidth_bps": None, "message": None, "cpus": 1,
                               "repetition": 1}
    status = json.loads((run / cell["id"] / "status.json").read_text())
    assert status["status"] == "ok" and status["source"] == "imported"
    assert status["sha256"] == digest and status["loadgen"] is None
    assert status["factors"] == cell["factors"]
    assert status["sample_interval_s"] == 0.5
    assert status["tracer"] == {"method": "top-freebsd", "cpu_seconds": None, "samples": 8}
    assert not (run / cell["id"] / "loadgen.json").exists()
    assert (run / cell["id"] / "top.log").read_bytes() == data
    assert sorted(p.name for p in run.iterdir()) == [cell["id"], "manifest.json"]
    assert not (tmp_path / ".staging").exists()


def test_append_to_imported_run(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    first = _import(raw, [FREEBSD])
    run_id = first.run_dir.run_id
    second = _import(raw, [FREEBSD_SMP], run_id=run_id, server="go-goroutine",
                     command="go-goroutine")
    later = tmp_path / "c-fork-again.txt"  # another repetition: same screens, other bytes
    later.write_bytes(FREEBSD.read_bytes() + b"\n")
    third = _import(raw, [later], run_id=run_id)
    assert first.created and not second.created and not third.created
    assert third.run_dir.path == first.run_dir.path
    manifest = third.run_dir.read_manifest()
    assert [(c["factors"]["server"], c["factors"]["repetition"], c["order"])
            for c in manifest["cells"]] == [("c-fork", 1, 0), ("go-goroutine", 1, 1),
                                            ("c-fork", 2, 2)]
    assert [i["command"] for i in manifest["imports"]] == ["server.bin", "go-goroutine",
                                                            "server.bin"]
    assert all(third.run_dir.is_complete(c["id"]) for c in manifest["cells"])
    assert not (third.run_dir.path / ".work").exists()


def test_append_refusals_write_nothing(tmp_path: Path) -> None:
    run_id = _import(tmp_path, [FREEBSD]).run_dir.run_id
    before = _tree(tmp_path)
    cases = [
        ({"files": [FREEBSD]}, "already imported"),
        ({"files": [FREEBSD_SMP], "paper_compatible": True}, "cleaning rule"),
        ({"files": [PROCPS]}, "one run is one host"),
        ({"files": [FREEBSD_SMP], "run_id": "20260101-000000-imported-ffff"}, "no run"),
    ]
    for options, expected in cases:
        options = {"run_id": run_id, **options}
        with pytest.raises(TopImportError, match=expected):
            _import(tmp_path, **options)
        assert _tree(tmp_path) == before, expected


def test_refuses_measured_run(tmp_path: Path) -> None:
    measured = RunDir.create("20261123-193000-quick-1a2b", tmp_path)
    measured.write_manifest({"schema": 1, "run_id": measured.run_id, "source": "measured",
                             "cells": []})
    before = _tree(tmp_path)
    with pytest.raises(TopImportError, match="measured run"):
        _import(tmp_path, [FREEBSD], run_id=measured.run_id)
    assert _tree(tmp_path) == before


def test_refuses_an_existing_cell_id(tmp_path: Path) -> None:
    """A cell directory left by an interrupted import is never overwritten."""
    first = _import(tmp_path, [FREEBSD])
    # The id repetition 2 would get, present on disk but not in the manifest.
    orphan = cell_id({"server": "c-fork", "workload": "sink", "connections": 4,
                      "bandwidth_bps": None, "message": None, "cpus": 1, "repetition": 2})
    (first.run_dir.path / orphan).mkdir()
    before = _tree(tmp_path)
    with pytest.raises(TopImportError, match="exists already"):
        _import(tmp_path, [FREEBSD_SMP], run_id=first.run_dir.run_id)
    assert _tree(tmp_path) == before


def test_problems_are_all_listed_and_nothing_written(tmp_path: Path) -> None:
    with pytest.raises(TopImportError) as caught:
        _import(tmp_path, [FREEBSD, MALFORMED, EMPTY, WRONG, FIXTURES / "missing.txt"])
    message = str(caught.value)
    assert "nothing was written" in message
    for expected in (
        "malformed_freebsd.txt:11: screen 2: no host CPU line",
        "malformed_freebsd.txt:27: screen 3: CPU value '2.4#%' is not a percentage",
        "malformed_freebsd.txt:28: screen 3: process row has 4 fields",
        "malformed_freebsd.txt:32: screen 4: no process table header",
        "empty.txt: empty file",
        "wrong_format.txt: not batch output of top",
        "missing.txt: cannot read",
    ):
        assert expected in message, expected
    assert len(caught.value.problems) == 7
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("options", "expected"), [
    ({"connections": 0}, "--connections 0"),
    ({"cpus": -1}, "--cpus -1"),
    ({"server": "../etc"}, "--server"),
    ({"interval_s": 0}, "--interval"),
    ({"warmup_s": 10.0}, "all 8 screens fall in the 10 s warm-up"),
])
def test_bad_options(tmp_path: Path, options: dict, expected: str) -> None:
    with pytest.raises(TopImportError, match=expected):
        _import(tmp_path, [FREEBSD], **options)
    assert list(tmp_path.iterdir()) == []


def test_same_file_twice_in_one_import(tmp_path: Path) -> None:
    copy = tmp_path / "copy.txt"
    shutil.copy(FREEBSD, copy)
    raw = tmp_path / "raw"
    with pytest.raises(TopImportError, match="same content"):
        _import(raw, [FREEBSD, copy])
    assert not raw.exists()


def test_module_cli_takes_positional_files(tmp_path: Path, capsys) -> None:
    code = cli_main(["--server", "c-fork", "--connections", "1", "--cpus", "1", "--command",
                     "server.bin", "--raw-dir", str(tmp_path), str(FREEBSD), str(PROCPS_OLD)])
    assert code == 1 and "mix top formats" in capsys.readouterr().err
    assert cli_main(["--server", "c-fork", "--connections", "1", "--cpus", "1", "--command",
                     "server.bin", "--raw-dir", str(tmp_path), str(PROCPS), str(PROCPS_OLD)]) == 0
    (run,) = tmp_path.iterdir()
    assert len(RunDir(run).read_manifest()["cells"]) == 2


# --- end to end through invoke, then the report ---------------------------------------------

def _invoke(workdir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAPAYA_WORKDIR": str(workdir)}
    return subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_invoke_import_top_then_report(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "paper").mkdir(parents=True)
    shutil.copy(REPO / "paper" / "paper.tex", work / "paper" / "paper.tex")
    raw = work / "data" / "raw"

    # Relative paths are taken from where invoke was called, not from PAPAYA_WORKDIR.
    done = _invoke(work, "import-top", "--server", "c-fork", "--connections", "4", "--cpus",
                   "1", "--command", "server.bin", "--file", "freebsd_server_bin.txt",
                   cwd=FIXTURES)
    assert done.returncode == 0, done.stderr
    (run,) = raw.iterdir()
    assert "zero-fill" in done.stdout and run.name in done.stdout

    done = _invoke(work, "import-top", "--server", "go-goroutine", "--connections", "4",
                   "--cpus", "1", "--run-id", run.name, "--file", str(FREEBSD_SMP), cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "'go-goroutine'" in done.stdout  # the default command: the server's binary name

    before = _tree(raw)
    done = _invoke(work, "import-top", "--server", "c-fork", "--connections", "4", "--cpus",
                   "1", "--run-id", run.name, "--file", str(MALFORMED), "--file", str(EMPTY),
                   cwd=REPO)
    assert done.returncode == 1
    assert "malformed_freebsd.txt:28" in done.stderr and "empty.txt: empty file" in done.stderr
    assert "Traceback" not in done.stderr
    assert _tree(raw) == before

    done = _invoke(work, "report", "--no-pdf", "--run-id", run.name, cwd=REPO)
    assert done.returncode == 0, done.stderr
    processed = work / "data" / "processed" / run.name
    cells = pd.read_csv(processed / "cells.csv").set_index("server")
    assert cells.loc["c-fork", "cpu_pct_mean"] == pytest.approx(4.5)
    assert cells.loc["go-goroutine", "cpu_pct_mean"] == pytest.approx((4.30 + 103.52) / 3)
    assert pd.isna(cells.loc["c-fork", "load_ratio"])
    ratios = pd.read_csv(processed / "ratios.csv")
    assert ratios["go_over_c"].tolist() == pytest.approx([(107.82 / 3) / 4.5])
    assert (work / "paper" / "build" / "report.html").is_file()
