"""End to end on this machine: real builds, real servers, real load on loopback, real traces."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from experiments import server_registry
from experiments.build import BuildError, build_server
from experiments.cell_run import RunAborted
from experiments.runner import run_experiment
from infra.cgroups import CGROUP_ROOT, GROUP_PREFIX
from infra.hosts import LocalHost
from tests.pipeline_util import wait_until_gone, write_config

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def build_root(tmp_path_factory):
    return tmp_path_factory.mktemp("build")


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, build_root):
    """One short cell (2 s, 4 connections) per server."""
    workdir = tmp_path_factory.mktemp("run")
    config = write_config(workdir / "short.toml", servers=["c-fork", "go-goroutine"],
                          connections=[4])
    run_dir = run_experiment("local", str(config), raw_dir=workdir / "raw",
                             build_root=build_root)
    return run_dir, json.loads((run_dir.path / "manifest.json").read_text())


def test_manifest_records_the_run(short_run):
    run_dir, manifest = short_run
    assert manifest["schema"] == 1 and manifest["run_id"] == run_dir.run_id
    assert manifest["source"] == "measured" and manifest["provider"] == "local"
    assert len(manifest["config_sha256"]) == 64 and manifest["seed"] == 11
    assert manifest["config"]["matrix"]["connections"] == [4]
    assert "commit" in manifest["git"]
    facts = manifest["hosts"]["local"]
    assert facts["cores"] >= 1 and facts["arch"] and facts["kernel"] and facts["cpu_model"]
    assert manifest["tools"]["cc"] and manifest["tools"]["go"].startswith("go version")
    assert manifest["tools"]["loadgen"].startswith("papaya-loadgen")
    assert manifest["cpu_isolation"] in ("isolated", "shared")
    assert manifest["started_at"] <= manifest["ended_at"]
    assert [c["status"] for c in manifest["cells"]] == ["ok", "ok"]
    assert (run_dir.path / "config.toml").is_file()
    assert not (run_dir.path / ".work").exists()


@pytest.mark.parametrize("server", ["c-fork", "go-goroutine"])
def test_cell_has_real_cpu_samples_and_achieved_load(short_run, server):
    run_dir, manifest = short_run
    (entry,) = [c for c in manifest["cells"] if c["factors"]["server"] == server]
    cell = run_dir.path / entry["id"]
    status = json.loads((cell / "status.json").read_text())
    assert status["status"] == "ok" and status["factors"]["connections"] == 4
    assert status["tracer"]["samples"] == 8 and status["tracer"]["cpu_seconds"] > 0
    with open(cell / "trace.csv") as handle:
        rows = list(csv.DictReader(handle))
    measured = [r for r in rows if r["warmup"] == "0"]
    assert len(rows) == 8 and len(measured) == 6
    # 4 × 1 Mbit/s of "message\n" costs measurable CPU in either server, far below a core.
    mean_cpu = sum(float(r["cpu_pct"]) for r in measured) / len(measured)
    assert 0.05 < mean_cpu < 100
    assert max(int(r["n_procs"]) for r in measured) >= (5 if server == "c-fork" else 1)
    loadgen = json.loads((cell / "loadgen.json").read_text())
    assert loadgen["connections"] == {"requested": 4, "opened": 4, "failed": 0}
    assert loadgen["aggregate_bandwidth_bps"] == pytest.approx(4e6, rel=0.05)
    assert loadgen["per_connection_bandwidth_bps"]["min"] == pytest.approx(1e6, rel=0.05)
    assert (cell / "server.stderr").is_file()


def test_no_process_or_cgroup_left_behind(short_run, build_root):
    assert wait_until_gone(build_root) == []
    run_dir, _ = short_run
    for controller in ("cpuacct", "cpuset", "unified", ""):
        parent = CGROUP_ROOT / controller / GROUP_PREFIX
        if parent.is_dir():
            assert not [p for p in parent.iterdir() if p.name.startswith(run_dir.run_id)]


def test_crashing_server_fails_its_cell_and_the_run_goes_on(tmp_path, build_root, monkeypatch):
    servers_dir = tmp_path / "servers"
    servers_dir.mkdir()
    shutil.copytree(FIXTURES / "crashy", servers_dir / "crashy")
    shutil.copytree(server_registry.SERVERS_DIR / "go-goroutine", servers_dir / "go-goroutine",
                    ignore=shutil.ignore_patterns("build"))
    monkeypatch.setattr(server_registry, "SERVERS_DIR", servers_dir)
    config = write_config(tmp_path / "crash.toml", servers=["crashy", "go-goroutine"],
                          connections=[2], warmup="500ms", duration="2s")
    run_dir = run_experiment("local", str(config), raw_dir=tmp_path / "raw",
                             build_root=build_root)
    manifest = json.loads((run_dir.path / "manifest.json").read_text())
    by_server = {c["factors"]["server"]: c for c in manifest["cells"]}
    assert by_server["go-goroutine"]["status"] == "ok"
    crashed = by_server["crashy"]
    assert crashed["status"] == "failed" and "exited" in crashed["reason"]
    failed_dir = run_dir.path / crashed["failed_dir"]
    status = json.loads((failed_dir / "status.json").read_text())
    assert "boom, giving up on purpose" in status["server"]["stderr_tail"]
    assert not (run_dir.path / crashed["id"]).exists()  # only completed cells at the top
    assert wait_until_gone(build_root) == []


def test_port_in_use_stops_the_run_with_what_to_do(tmp_path, build_root):
    import socket

    config = write_config(tmp_path / "busy.toml", servers=["c-fork"], connections=[1])
    port = int(config.read_text().split("port = ")[1].split()[0])
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", port))
        squatter.listen()
        with pytest.raises(RunAborted) as error:
            run_experiment("local", str(config), raw_dir=tmp_path / "raw", build_root=build_root)
    message = str(error.value)
    assert f"port {port} is in use" in message and "experiment.port" in message
    assert "--resume" in message  # what was collected so far is kept and resumable


def test_missing_compiler_is_named_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, no make; the venv's go stays reachable
    host = LocalHost()
    with pytest.raises(BuildError, match=r"cc not found on local: install a C compiler"):
        build_server(host, server_registry.discover_servers()["c-fork"], tmp_path / "b")


def test_ablation_factors_reach_the_server(tmp_path, build_root):
    config = write_config(tmp_path / "abl.toml", servers=["go-goroutine"], connections=[4])
    config.write_text(config.read_text().replace(
        "cpus = [1]", 'cpus = [1]\noutput = ["paper", "discard"]\ngogc = ["off"]'))
    run_dir = run_experiment("local", str(config), raw_dir=tmp_path / "raw",
                             build_root=build_root)
    manifest = json.loads((run_dir.path / "manifest.json").read_text())
    assert sorted(c["factors"]["output"] for c in manifest["cells"]) == ["discard", "paper"]
    assert all(c["status"] == "ok" and c["factors"]["gogc"] == "off" for c in manifest["cells"])
    for cell in manifest["cells"]:
        status = json.loads((run_dir.path / cell["id"] / "status.json").read_text())
        assert status["server"]["env"]["GOGC"] == "off"
        assert ("--output" in status["server"]["argv"]) == (cell["factors"]["output"] != "paper")
