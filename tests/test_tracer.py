"""The tracer against a process tree whose CPU use is known: children that burn CPU and exit."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.tracer import COLUMNS
from infra.cgroups import cgroups_available, create_cgroup
from infra.hosts import LocalHost

TRACER = Path(__file__).resolve().parent.parent / "experiments" / "tracer.py"

# A parent that idles while two children each burn ~0.6 s of CPU and exit (and are reaped),
# then a third child that sleeps: the tracer must count the CPU of children that are gone.
WORKLOAD = """
import os, time
def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
time.sleep(0.4)
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        burn(0.6)
        os._exit(0)
    os.waitpid(pid, 0)
if os.fork() == 0:
    time.sleep(30)
    os._exit(0)
time.sleep(30)
"""


def run_tracer(tmp_path, use_cgroup):
    cgroup = create_cgroup(f"test-tracer-{os.getpid()}", [0]) if use_cgroup else None
    host = LocalHost()
    workload = host.start([sys.executable, "-c", WORKLOAD], cgroup=cgroup)
    try:
        out, summary = tmp_path / "trace.csv", tmp_path / "tracer.json"
        argv = [sys.executable, str(TRACER), "--pid", str(workload.pid), "--out", str(out),
                "--summary", str(summary), "--interval", "0.25", "--duration", "2.5",
                "--warmup", "0.5", "--t0", str(time.time() + 0.3)]
        if cgroup is not None:
            argv += ["--cgroup-dir", str(cgroup.cpu_dir), "--cgroup-kind", cgroup.kind]
        subprocess.run(argv, check=True, timeout=20)
        with open(out) as handle:
            rows = list(csv.DictReader(handle))
        return rows, json.loads(summary.read_text())
    finally:
        workload.stop()
        if cgroup is not None:
            cgroup.remove()


def check_trace(rows, summary, method):
    assert list(rows[0]) == COLUMNS
    assert summary["method"] == method
    assert summary["samples"] == len(rows) == 10
    assert summary["cpu_seconds"] > 0
    cpu_seconds = sum(float(r["cpu_pct"]) for r in rows) * 0.25 / 100
    assert cpu_seconds == pytest.approx(1.2, abs=0.2)
    for row in rows:
        assert float(row["cpu_pct"]) == pytest.approx(
            float(row["user_pct"]) + float(row["system_pct"]), abs=0.01)
        assert float(row["cpu_pct"]) <= 100 * 1.1  # one child at a time: at most one CPU
        assert float(row["user_pct"]) >= 0 and float(row["system_pct"]) >= 0
    assert [int(r["warmup"]) for r in rows] == [1, 1] + [0] * 8
    t_rel = [float(r["t_rel_s"]) for r in rows]
    assert t_rel == pytest.approx([0.25 * k for k in range(1, 11)], abs=0.05)
    assert int(rows[-1]["n_procs"]) == 2  # the parent and the sleeping child
    assert int(rows[-1]["ctx_voluntary"]) >= int(rows[0]["ctx_voluntary"])
    assert int(rows[-1]["rss_bytes"]) > 1_000_000
    host_total = sum(float(rows[-1][c]) for c in
                     ("host_user_pct", "host_system_pct", "host_softirq_pct", "host_idle_pct"))
    assert 90 <= host_total <= 100.5


def test_psutil_tree_walk_counts_exited_children(tmp_path):
    rows, summary = run_tracer(tmp_path, use_cgroup=False)
    check_trace(rows, summary, "psutil")


@pytest.mark.skipif(cgroups_available() is None, reason="cgroups need root on Linux")
def test_cgroup_accounting_counts_exited_children(tmp_path):
    rows, summary = run_tracer(tmp_path, use_cgroup=True)
    check_trace(rows, summary, cgroups_available())


def test_tracer_stops_when_the_target_exits(tmp_path):
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.8)"])
    out, summary = tmp_path / "trace.csv", tmp_path / "tracer.json"
    started = time.monotonic()
    subprocess.run([sys.executable, str(TRACER), "--pid", str(target.pid), "--out", str(out),
                    "--summary", str(summary), "--interval", "0.2", "--duration", "10"],
                   check=True, timeout=20)
    target.wait()
    assert time.monotonic() - started < 5
    assert json.loads(summary.read_text())["target_exited"] is True


def test_bad_arguments_are_refused(tmp_path):
    done = subprocess.run([sys.executable, str(TRACER), "--pid", "1", "--out", "x", "--summary",
                           "y", "--duration", "-1"], capture_output=True, text=True)
    assert done.returncode == 2 and "must be positive" in done.stderr


# The main thread sleeps throughout; a second thread switches ~200 times a second, as a Go
# server's worker threads do while its main thread idles.
THREADED = """
import threading, time
def worker():
    while True:
        time.sleep(0.005)
threading.Thread(target=worker, daemon=True).start()
time.sleep(30)
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_context_switches_of_every_thread_are_counted(tmp_path):
    workload = LocalHost().start([sys.executable, "-c", THREADED])
    try:
        out, summary = tmp_path / "trace.csv", tmp_path / "tracer.json"
        subprocess.run([sys.executable, str(TRACER), "--pid", str(workload.pid), "--out",
                        str(out), "--summary", str(summary), "--interval", "0.25",
                        "--duration", "1.5"], check=True, timeout=20)
    finally:
        workload.stop()
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert int(rows[-1]["n_threads"]) == 2
    rates = [float(r["ctx_voluntary_per_s"]) for r in rows[1:]]
    assert min(rates) > 50, rates
