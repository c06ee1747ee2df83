"""The Invoke entry points as a user calls them: listing, provision, status, dry run, destroy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.pipeline_util import PROJECT_ROOT, write_config


def invoke(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAPAYA_WORKDIR": str(tmp_path), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT),
                           *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_every_task_is_listed_with_help(tmp_path):
    listing = invoke(tmp_path, "--list").stdout
    for name in ("provision", "build", "run-experiment", "report", "status", "destroy"):
        line = next(line for line in listing.splitlines() if line.strip().startswith(name))
        assert len(line.split()) > 1, f"{name} has no help line"
    options = invoke(tmp_path, "--help", "run-experiment").stdout
    for option in ("--provider", "--config", "--resume", "--dry-run"):
        assert option in options


def test_provision_status_and_destroy(tmp_path):
    done = invoke(tmp_path, "provision")
    assert done.returncode == 0, done.stderr
    state = json.loads((tmp_path / "data" / "state" / "local.json").read_text())
    facts = state["hosts"]["local"]["facts"]
    for key in ("os", "kernel", "arch", "cpu_model", "cores", "memory_bytes", "cc", "go"):
        assert facts[key], key
    assert "go version" in facts["go"]
    status = invoke(tmp_path, "status")
    assert status.returncode == 0 and "provider local" in status.stdout
    assert "True" in status.stdout  # provisioned
    destroyed = invoke(tmp_path, "destroy")
    assert destroyed.returncode == 0 and "data/state/local.json" in destroyed.stdout
    assert not (tmp_path / "data" / "state" / "local.json").exists()
    again = invoke(tmp_path, "destroy")
    assert "nothing to remove" in again.stdout


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    config = write_config(tmp_path / "plan.toml", servers=["c-fork", "go-goroutine"],
                          connections=[1, 4], repetitions=2)
    done = invoke(tmp_path, "run-experiment", "--config", str(config), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "8 cells" in done.stdout and "estimated duration" in done.stdout
    assert done.stdout.count("-sink-c000") == 8
    assert "host local" in done.stdout
    assert not (tmp_path / "data" / "raw").exists()


def test_config_errors_are_one_line_before_anything_runs(tmp_path):
    config = write_config(tmp_path / "bad.toml", servers=["c-fork"], connections=[0])
    done = invoke(tmp_path, "run-experiment", "--config", str(config))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: {config}: matrix.connections = [0]: expected a non-empty list of integers >= 1"]
    assert not (tmp_path / "data" / "raw").exists()
