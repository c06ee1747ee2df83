"""Kill the runner with SIGKILL mid-run, then resume: completed cells stay exactly as they were."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.cgroups import CGROUP_ROOT, GROUP_PREFIX
from tests.pipeline_util import PROJECT_ROOT, wait_until_gone, write_config

pytestmark = pytest.mark.integration


def invoke(workdir: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PAPAYA_BUILD_ROOT": str(workdir / "build"),
           "PAPAYA_WORKDIR": str(workdir)}
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT), *args],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def snapshot(cell: Path) -> dict[str, tuple[str, int]]:
    return {f.name: (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns)
            for f in sorted(cell.iterdir())}


def test_sigkill_mid_run_then_resume(tmp_path):
    config = write_config(tmp_path / "resume.toml", servers=["c-fork", "go-goroutine"],
                          connections=[1, 4], warmup="500ms", duration="1500ms")
    runner = invoke(tmp_path, "run-experiment", "--config", str(config))
    raw = tmp_path / "data" / "raw"
    deadline = time.monotonic() + 240
    completed: list[Path] = []
    while time.monotonic() < deadline and runner.poll() is None:
        completed = [p.parent for p in raw.glob("*/*/status.json")]
        in_progress = list(raw.glob("*/.work/*/trace.csv"))
        if completed and in_progress:
            break
        time.sleep(0.05)
    assert completed and runner.poll() is None, runner.stdout.read().decode()
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    before = {cell.name: snapshot(cell) for cell in completed}

    # The servers and the load generator die with the runner (parent-death signal).
    assert wait_until_gone(tmp_path / "build") == []

    (run_dir,) = [p for p in raw.iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["ended_at"] is None
    resumed = invoke(tmp_path, "run-experiment", "--resume", run_dir.name)
    output = resumed.communicate(timeout=240)[0].decode()
    assert resumed.returncode == 0, output

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert len(manifest["cells"]) == 4
    assert all(c["status"] == "ok" for c in manifest["cells"]), manifest["cells"]
    assert manifest["ended_at"] and len(manifest["resumes"]) == 1
    assert manifest["resumes"][0]["remaining_cells"] == 4 - len(before)
    for cell in manifest["cells"]:
        assert (run_dir / cell["id"] / "trace.csv").is_file()
    for name, files in before.items():
        assert snapshot(run_dir / name) == files, f"completed cell {name} was modified"
    assert not (run_dir / ".work").exists()
    assert wait_until_gone(tmp_path / "build") == []
    for controller in ("cpuacct", "cpuset", "unified", ""):
        parent = CGROUP_ROOT / controller / GROUP_PREFIX
        if parent.is_dir():  # the killed attempt's cgroup was emptied and removed on resume
            assert not [p for p in parent.iterdir() if p.name.startswith(run_dir.name)]


def test_resume_of_unknown_run_is_a_clear_error(tmp_path):
    runner = invoke(tmp_path, "run-experiment", "--resume", "no-such-run")
    output = runner.communicate(timeout=60)[0].decode()
    assert runner.returncode == 1
    assert "no run 'no-such-run' under data/raw" in output


def test_ctrl_c_stops_cleanly_and_the_run_can_resume(tmp_path):
    config = write_config(tmp_path / "interrupt.toml", servers=["c-fork"], connections=[4],
                          repetitions=2, warmup="500ms", duration="3s")
    runner = invoke(tmp_path, "run-experiment", "--config", str(config))
    raw = tmp_path / "data" / "raw"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(raw.glob("*/.work/*/trace.csv")):
        time.sleep(0.05)
    time.sleep(1.0)  # mid-cell: server, tracer and load generator are all running
    runner.send_signal(signal.SIGINT)
    output = runner.communicate(timeout=60)[0].decode()
    assert runner.returncode == 130, output
    assert "--resume" in output
    assert wait_until_gone(tmp_path / "build", timeout_s=2) == []
    (run_dir,) = [p for p in raw.iterdir() if p.is_dir()]
    resumed = invoke(tmp_path, "run-experiment", "--resume", run_dir.name)
    output = resumed.communicate(timeout=120)[0].decode()
    assert resumed.returncode == 0, output
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [c["status"] for c in manifest["cells"]] == ["ok", "ok"]
