"""Running the behaviour checks on a host: hostscripts/hostcheck.py (smoke test and the
regressions) and the chat conformance suite (tests/chat) against the host's own binaries.

Everything goes through ``Host``; paths on the host come from the caller (under the host's
scratch directory), results come back as JSON on stdout or as a JUnit XML file.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from experiments.portability.matrix import TestResult
from infra.hosts import Host, HostError

HOSTCHECK = Path(__file__).resolve().parent / "hostscripts" / "hostcheck.py"
REPO_ROOT = Path(__file__).resolve().parents[2]
# The conformance suite: protocol, lifecycle and load (test_build.py is the build matrix's
# job, done here by the matrix itself).
CONFORMANCE_FILES = ("tests/chat/test_protocol.py", "tests/chat/test_lifecycle.py",
                     "tests/chat/test_load.py")
_SUITE_SUPPORT = ("tests/__init__.py", "tests/servers_util.py", "tests/chat/__init__.py",
                  "tests/chat/conftest.py", "tests/chat/chat_util.py")
# Our own ini, so the suite runs the same under Debian bookworm's pytest 7.2 and newer ones,
# without the project's pyproject.toml (and its test paths) on the host.
_PYTEST_INI = """[pytest]
addopts = -ra -p no:cacheprovider
markers =
    integration: builds and runs real servers on loopback
"""
HOSTCHECK_TIMEOUT_S = 600
SUITE_TIMEOUT_S = 1800

Remote = Path | PurePosixPath


@dataclass
class Wrapper:
    """How to run a check in a v6-only setting on a host: a command prefix plus clean-up."""

    prefix: list[str]
    how: str
    cleanup: Callable[[], None]


def run_hostcheck(host: Host, script: Remote, spec_path: Remote, spec: dict[str, Any],
                  local_spec: Path, prefix: list[str] | None = None) -> list[TestResult]:
    """One check for the servers in ``spec``; one TestResult per server."""
    local_spec.parent.mkdir(parents=True, exist_ok=True)
    local_spec.write_text(json.dumps(spec, indent=1))
    names = [s["name"] for s in spec["servers"]]
    try:
        host.put(local_spec, spec_path)  # type: ignore[arg-type]
        result = host.run([*(prefix or []), host.python, str(script), str(spec_path)],
                          check=False, timeout=HOSTCHECK_TIMEOUT_S)
        data = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() \
            else None
    except (HostError, json.JSONDecodeError) as error:
        return [_broken(spec["check"], name, f"{host.name}: hostcheck.py: {error}")
                for name in names]
    if data is None:
        why = f"{host.name}: hostcheck.py exited with {result.returncode}: " \
              f"{result.stderr.strip()[-600:]}"
        return [_broken(spec["check"], name, why) for name in names]
    out = []
    for entry in data["results"]:
        failures = [name for name, ok, _ in entry["subchecks"] if not ok]
        out.append(TestResult(
            name=spec["check"], passed=int(entry["passed"]), total=1,
            status="passed" if entry["passed"] else "failed", failures=failures,
            detail=entry["subchecks"] + ([["server stderr", True, entry["stderr_tail"]]]
                                         if not entry["passed"] else []),
            duration_s=entry["duration_s"], ran_on=host.name))
    return out


def _broken(check: str, server: str, why: str) -> TestResult:
    return TestResult(name=check, passed=0, total=1, status="failed",
                      failures=["check could not run"], detail=[["check could not run", False,
                                                                 why]])


def skipped(check: str, why: str, ran_on: str) -> TestResult:
    return TestResult(name=check, passed=0, total=0, status="skipped", detail=[why],
                      ran_on=ran_on)


# --------------------------------------------------------------------- v6-only namespaces


def _text(host: Host, cmd: list[str]) -> str | None:
    try:
        result = host.run(cmd, check=False, timeout=60)
    except HostError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def v6only_wrapper(host: Host, facts: dict[str, Any], tag: str) -> tuple[Wrapper | None, str]:
    """Where IPv6 sockets are v6-only by default, as on FreeBSD: (wrapper, "") or (None, why).

    FreeBSD: natively. Linux as root: a throwaway network namespace with
    net.ipv6.bindv6only=1; failing that, on a host that already lives in a namespace of its
    own (a lab host), the setting itself, restored afterwards.
    """
    system = str(facts.get("os", ""))
    if system == "FreeBSD":
        value = _text(host, ["sysctl", "-n", "net.inet6.ip6.v6only"])
        return Wrapper([], f"FreeBSD, net.inet6.ip6.v6only={value}", lambda: None), ""
    if system != "Linux":
        return None, f"{system}: no known way to make IPv6 sockets v6-only"
    if _text(host, ["id", "-u"]) != "0":
        return None, "not root: cannot set net.ipv6.bindv6only in a network namespace"
    namespace = f"papaya-v6-{tag}"[:40]
    if _text(host, ["ip", "netns", "add", namespace]) is not None:
        def remove() -> None:
            _text(host, ["ip", "netns", "del", namespace])

        setup = (_text(host, ["ip", "-n", namespace, "link", "set", "lo", "up"]) is not None
                 and _text(host, ["ip", "netns", "exec", namespace, "sh", "-c",
                                  "echo 1 > /proc/sys/net/ipv6/bindv6only"]) is not None)
        if setup:
            return Wrapper(["ip", "netns", "exec", namespace],
                           f"throwaway network namespace {namespace} with "
                           "net.ipv6.bindv6only=1", remove), ""
        remove()
    # A lab host says so (its provider made the namespace); elsewhere compare with PID 1's.
    own = _text(host, ["readlink", "/proc/self/ns/net"])
    init = _text(host, ["readlink", "/proc/1/ns/net"])
    if facts.get("network_namespace") or (own and init and own != init):
        old = _text(host, ["cat", "/proc/sys/net/ipv6/bindv6only"])
        if old is not None and _text(host, ["sh", "-c",
                                            "echo 1 > /proc/sys/net/ipv6/bindv6only"]) is not None:
            def restore() -> None:
                _text(host, ["sh", "-c", f"echo {int(old)} > /proc/sys/net/ipv6/bindv6only"])

            return Wrapper([], f"net.ipv6.bindv6only=1 in the host's own network namespace "
                               f"(was {old}; restored after)", restore), ""
    return None, "cannot create a network namespace here (ip netns add failed) and the host " \
                 "shares the initial one: not changing its global net.ipv6.bindv6only"


# --------------------------------------------------------------------- conformance suite


def stage_suite() -> Path:
    """A folder with the conformance suite and its helpers, to upload (caller removes it)."""
    stage = Path(tempfile.mkdtemp(prefix="papaya-suite-"))
    for relative in (*_SUITE_SUPPORT, *CONFORMANCE_FILES):
        target = stage / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, target)
    (stage / "pytest.ini").write_text(_PYTEST_INI)
    return stage


def run_conformance(host: Host, suite_dir: Remote, binaries: dict[str, Remote],
                    junit_local: Path, files: tuple[str, ...] = CONFORMANCE_FILES,
                    select: str | None = None) -> dict[str, TestResult]:
    """tests/chat against ``binaries`` ({"c": path, "go": path}) with the host's python3 -m
    pytest; results by implementation from the JUnit XML."""
    junit_remote = type(suite_dir)(f"{suite_dir}/junit.xml")
    argv = [host.python, "-m", "pytest", "-q", f"--junitxml={junit_remote}", *files]
    if select:
        argv += ["-k", select]
    env = {f"PAPAYA_CHAT_BINARY_{impl.upper()}": str(path) for impl, path in binaries.items()}
    try:
        result = host.run(argv, cwd=suite_dir, env=env, check=False, timeout=SUITE_TIMEOUT_S)
        junit_local.parent.mkdir(parents=True, exist_ok=True)
        (junit_local.with_suffix(".log")).write_text(result.stdout + result.stderr)
        if "No module named pytest" in result.stderr:
            return {impl: skipped("conformance", f"{host.name}: no pytest for {host.python}",
                                  host.name) for impl in binaries}
        host.get(junit_remote, junit_local)  # type: ignore[arg-type]
    except HostError as error:
        return {impl: _broken("conformance", impl, str(error)) for impl in binaries}
    return parse_junit(junit_local, list(binaries), host.name)


def _impl_of(name: str, impls: list[str]) -> str | None:
    """Which implementation a parametrized test id ran on: test_x[c] / test_x[go-0o644]."""
    match = re.search(r"\[(.*)\]$", name)
    if not match:
        return None
    tokens = re.split(r"[-,]", match.group(1))
    found = [impl for impl in impls if impl in tokens]
    return found[0] if len(found) == 1 else None


def parse_junit(path: Path, impls: list[str], ran_on: str) -> dict[str, TestResult]:
    root = ElementTree.parse(path).getroot()
    results = {impl: TestResult("conformance", 0, 0, "passed", ran_on=ran_on) for impl in impls}
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        impl = _impl_of(name, impls)
        owners = [impl] if impl else impls  # a test of both servers counts for both
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        for owner in owners:
            result = results[owner]
            result.duration_s = round(result.duration_s + float(case.get("time", 0)), 2)
            if outcome == "skipped":
                result.detail.append(f"skipped: {name}")
                continue
            result.total += 1
            if outcome == "passed":
                result.passed += 1
            else:
                result.failures.append(f"{case.get('classname', '')}::{name}")
    for result in results.values():
        if result.total == 0:
            result.status = "skipped"
        elif result.failures:
            result.status = "failed"
    return results
