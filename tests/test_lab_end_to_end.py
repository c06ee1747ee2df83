"""The issue's "done when", through the README's commands, on a real lab (root only).

provision a lab (server-amd64, server-i386, loadgen) → one short remote run over SSH →
the portability matrix on this machine and both server hosts → the report's RQ3 table →
destroy, and nothing is left: no namespaces, links, mounts, processes or cgroups.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.pipeline_util import PROJECT_ROOT, free_port
from tests.test_lab_provider import _assert_nothing_left, needs_lab

pytestmark = [pytest.mark.integration, needs_lab]


def invoke(workdir: Path, *args: str, timeout: float = 900) -> str:
    env = {**os.environ, "PAPAYA_BUILD_ROOT": str(workdir / "build"),
           "PAPAYA_WORKDIR": str(workdir)}
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT), *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"invoke {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def lab_config(path: Path) -> Path:
    path.write_text(textwrap.dedent(f"""
        [experiment]
        name = "lab-e2e"
        seed = 5
        repetitions = 1
        warmup = "500ms"
        duration = "2s"
        sample_interval = "250ms"
        port = {free_port()}

        [load]
        message = "message\\n"
        bandwidth = "1Mbps"

        [matrix]
        servers = ["c-fork", "go-goroutine"]
        connections = [4]
        cpus = [1]

        [chat]
        servers = ["chat-c"]
        connections = [4]
        message_rate = 5

        [lab]
        run_on = "server-amd64"

        [lab.hosts.server-amd64]
        arch = "amd64"
        roles = ["server"]
        cpus = [1]

        [lab.hosts.server-i386]
        arch = "i386"
        roles = ["server"]
        cpus = [1]

        [lab.hosts.loadgen]
        arch = "amd64"
        roles = ["loadgen"]
        cpus = [0]
        """))
    return path


def test_lab_provision_run_portability_report_destroy(tmp_path: Path) -> None:
    config = lab_config(tmp_path / "lab-e2e.toml")
    try:
        invoke(tmp_path, "provision", "--provider", "lab", "--config", str(config))
        status = invoke(tmp_path, "status", "--provider", "lab", "--config", str(config))
        for host in ("server-amd64", "server-i386", "loadgen"):
            assert host in status

        # One short run: servers on server-amd64 (C built there), load from the loadgen host
        # across the lab network, traces back in data/raw/.
        invoke(tmp_path, "run-experiment", "--provider", "lab", "--config", str(config))
        (manifest_path,) = (tmp_path / "data" / "raw").glob("*/manifest.json")
        manifest = json.loads(manifest_path.read_text())
        assert [c["status"] for c in manifest["cells"]] == ["ok"] * 3, [
        (c["id"], c["reason"]) for c in manifest["cells"]]
        assert manifest["provider"] == "lab"
        assert manifest["server_host"] == "server-amd64"
        assert manifest["loadgen_host"] == "loadgen"
        assert manifest["target_address"].startswith("198.18.0.")
        assert {"server-amd64", "loadgen"} <= set(manifest["hosts"])
        for cell in manifest["cells"]:
            cell_dir = manifest_path.parent / cell["id"]
            tracer = json.loads((cell_dir / "tracer.json").read_text())
            assert tracer["samples"] >= 6
            loadgen = json.loads((cell_dir / "loadgen.json").read_text())
            assert loadgen["connections"]["opened"] == 4

        # The matrix on this machine and both lab server hosts.
        invoke(tmp_path, "portability", "--provider", "lab", "--config", str(config),
               timeout=1200)
        (matrix_path,) = (tmp_path / "data" / "portability").glob("*/matrix.json")
        matrix = json.loads(matrix_path.read_text())
        check_matrix(matrix)

        report = invoke(tmp_path, "report", "--no-pdf")
        rq3 = (tmp_path / "paper" / "generated" / "rq3.tex")
        assert rq3.is_file(), report
        table = rq3.read_text()
        assert "i386" in table or "i686" in table
        assert "not run: no FreeBSD host" in table
    finally:
        invoke(tmp_path, "destroy", "--provider", "lab", "--config", str(config))
    _assert_nothing_left()
    again = invoke(tmp_path, "destroy", "--provider", "lab", "--config", str(config))
    assert "nothing to remove" in again


def check_matrix(matrix: dict) -> None:
    """Native builds on both lab hosts, and the host's own binaries passed every test there."""
    rows = matrix["rows"]
    hosts = {row["host"] for row in rows}
    assert {"local", "server-amd64", "server-i386"} <= hosts, hosts
    for host in ("server-amd64", "server-i386"):
        native = [r for r in rows if r["host"] == host and r["kind"] == "native"]
        assert native and all(r["builds"] for r in native), native
        assert {r["compiler"] for r in native} >= {"gcc"}
        assert {r["mode"] for r in native} == {"strict", "gnu"}
        tests = [t for r in rows if r["host"] == host for t in r["tests"]]
        names = {t["name"] for t in tests}
        assert {"smoke", "conformance", "v6only", "sigchld", "sigusr1"} <= names, names
        assert all(t["ran_on"] == host for t in tests)
        failed = [t for t in tests if t["passed"] != t["total"]]
        assert not failed, failed
    # The 32-bit host appended to a chat log beyond 2 GiB and served its tail.
    assert any(t["name"] == "biglog" and t["passed"] == t["total"] == 1
               for r in rows if r["host"] == "server-i386" for t in r["tests"])
