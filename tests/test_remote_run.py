"""Runs over SSH through the ssh provider, with this machine as the inventory's only host.

A real sshd on 127.0.0.1; the C servers are built by the "host" from uploaded sources, the Go
server and the load generator are cross-compiled here and uploaded, the tracer runs there and
its files come back into data/raw/. A dropped connection fails only the cell it hits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.pipeline_util import PROJECT_ROOT, write_config
from tests.ssh_util import SshdInfo, loopback_sshd, sshd_unavailable_reason

# The host's own python3 must have psutil (Debian: python3-psutil), as on any remote host.
HOST_PYTHON = "/usr/bin/python3"


def _host_python_reason() -> str | None:
    if sshd_unavailable_reason():
        return sshd_unavailable_reason()
    probe = subprocess.run([HOST_PYTHON, "-c", "import psutil"], capture_output=True,
                           check=False)
    if probe.returncode != 0:
        return f"{HOST_PYTHON} has no psutil (apt-get install python3-psutil)"
    return None


pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(_host_python_reason() is not None,
                                 reason=_host_python_reason() or "")]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdInfo]:
    with loopback_sshd(tmp_path_factory.mktemp("sshd")) as info:
        yield info


def invoke(workdir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAPAYA_BUILD_ROOT": str(workdir / "build"),
           "PAPAYA_WORKDIR": str(workdir)}
    return subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT), *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def write_inventory(path: Path, sshd: SshdInfo) -> Path:
    path.write_text(textwrap.dedent(f"""
        [hosts.loopback]
        address = "127.0.0.1"
        port = {sshd.port}
        user = "{sshd.user}"
        key_file = "{sshd.key_file}"
        known_hosts = "{sshd.known_hosts}"
        roles = ["server", "loadgen"]
        python = "{HOST_PYTHON}"
        """))
    return path


def with_chat(config: Path) -> Path:
    config.write_text(config.read_text() + textwrap.dedent("""
        [chat]
        servers = ["chat-c"]
        connections = [4]
        message_rate = 5
        """))
    return config


def manifest_of(workdir: Path) -> dict:
    (manifest,) = (workdir / "data" / "raw").glob("*/manifest.json")
    return json.loads(manifest.read_text())


def test_provision_and_run_over_ssh(sshd: SshdInfo, tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inventory.toml", sshd)
    config = with_chat(write_config(tmp_path / "remote.toml",
                                    servers=["c-fork", "go-goroutine"], connections=[4]))
    done = invoke(tmp_path, "provision", "--provider", "ssh", "--inventory", str(inventory))
    assert done.returncode == 0, done.stdout + done.stderr
    done = invoke(tmp_path, "run-experiment", "--provider", "ssh", "--inventory",
                  str(inventory), "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = manifest_of(tmp_path)
    assert [c["status"] for c in manifest["cells"]] == ["ok"] * 3, [
        (c["id"], c["reason"]) for c in manifest["cells"]]
    assert manifest["provider"] == "ssh"
    assert manifest["server_host"] == "loopback" and manifest["target_address"] == "127.0.0.1"
    assert manifest["hosts"]["loopback"]["long_bit"] in (32, 64, "32", "64")
    run_dir = next((tmp_path / "data" / "raw").iterdir())
    for cell in manifest["cells"]:
        files = {p.name for p in (run_dir / cell["id"]).iterdir()}
        assert {"trace.csv", "tracer.json", "loadgen.json", "server.stderr"} <= files, files
        tracer = json.loads((run_dir / cell["id"] / "tracer.json").read_text())
        assert tracer["samples"] >= 4
        if cell["factors"]["workload"] == "chat":
            # The chat log came back from the host: every delivered line is in it.
            loadgen = json.loads((run_dir / cell["id"] / "loadgen.json").read_text())
            log_lines = (run_dir / cell["id"] / "chat.log").read_text().splitlines()
            assert len(log_lines) >= loadgen["lines_sent"] > 0
    # The C server was built by the host itself, from sources uploaded to its scratch dir.
    c_fork = Path("/var/lib/papaya-bench/build/c-fork/c-fork")
    assert c_fork.is_file()
    # Nothing the run started is left on the host.
    left = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"])
            if any("/var/lib/papaya-bench/build" in part for part in p.info["cmdline"] or [])]
    assert left == []


def test_dropped_connection_fails_that_cell_and_the_run_goes_on(sshd: SshdInfo,
                                                                tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inventory.toml", sshd)
    config = write_config(tmp_path / "drop.toml", servers=["c-fork"], connections=[4],
                          repetitions=3, warmup="500ms", duration="3s")
    assert invoke(tmp_path, "provision", "--provider", "ssh", "--inventory",
                  str(inventory)).returncode == 0
    env = {**os.environ, "PAPAYA_BUILD_ROOT": str(tmp_path / "build"),
           "PAPAYA_WORKDIR": str(tmp_path)}
    runner = subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT), "run-experiment",
         "--provider", "ssh", "--inventory", str(inventory), "--config", str(config)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Wait until the first cell measures, then cut every SSH session from the server side.
        deadline = time.monotonic() + 120
        work = None
        while time.monotonic() < deadline:
            work = next((tmp_path / "data" / "raw").glob("*/.work/*"), None)
            if work is not None:
                break
            time.sleep(0.2)
        assert work is not None, "no cell started"
        time.sleep(2.0)
        for process in psutil.Process(sshd.process.pid).children(recursive=True):
            if process.name() == "sshd":
                process.kill()
        output, _ = runner.communicate(timeout=240)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, output
    cells = manifest_of(tmp_path)["cells"]
    failed = [c for c in cells if c["status"] == "failed"]
    assert len(failed) == 1, [(c["id"], c["status"], c["reason"]) for c in cells]
    assert "connection lost" in failed[0]["reason"] or "cannot" in failed[0]["reason"], failed
    assert sum(c["status"] == "ok" for c in cells) == 2
    # --resume redoes the failed cell only.
    run_id = manifest_of(tmp_path)["run_id"]
    done = invoke(tmp_path, "run-experiment", "--provider", "ssh", "--inventory",
                  str(inventory), "--resume", run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(c["status"] == "ok" for c in manifest_of(tmp_path)["cells"])
