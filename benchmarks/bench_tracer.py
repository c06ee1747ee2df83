"""The tracer's own CPU cost at 500 ms sampling, with c-fork at 64 connections (65 processes).

Prints the tracer's CPU seconds as a percentage of one core over the traced window, for the
psutil tree walk and (as root on Linux) the cgroup path, measured side by side in one run.
Target: at most 1 % of one core.

    .venv/bin/python benchmarks/bench_tracer.py [--seconds 20] [--connections 64]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments import loadgens  # noqa: E402
from experiments.build import build_loadgen, build_server  # noqa: E402
from experiments.server_registry import discover_servers  # noqa: E402
from infra.cgroups import cgroups_available, create_cgroup  # noqa: E402
from infra.hosts import LocalHost, wait_for_port  # noqa: E402

TRACER = Path(__file__).resolve().parent.parent / "experiments" / "tracer.py"
PORT = 50999


def trace_once(host: LocalHost, build_root: Path, loadgen: Path, connections: int,
               seconds: float, use_cgroup: bool) -> dict[str, float]:
    server = discover_servers()["c-fork"]
    build_dir = build_server(host, server, build_root)
    cgroup = create_cgroup(f"bench-tracer-{int(time.time())}", [1]) if use_cgroup else None
    process = host.start(server.start_argv(build_dir, PORT), cpus=[1], cgroup=cgroup)
    load = None
    try:
        if not wait_for_port("127.0.0.1", PORT, 5, process):
            raise SystemExit("c-fork did not start")
        load = host.start(loadgens.native_command(loadgen, f"127.0.0.1:{PORT}", connections,
                                                  seconds + 4, "message\n", 1e6), cpus=[0])
        time.sleep(2)  # let every connection open: 65 processes before tracing starts
        with tempfile.TemporaryDirectory() as scratch:
            out, summary = Path(scratch) / "t.csv", Path(scratch) / "t.json"
            argv = [sys.executable, str(TRACER), "--pid", str(process.pid), "--out", str(out),
                    "--summary", str(summary), "--interval", "0.5", "--duration", str(seconds)]
            if cgroup is not None:
                argv += ["--cgroup-dir", str(cgroup.cpu_dir), "--cgroup-kind", cgroup.kind]
            started = time.monotonic()
            subprocess.run(["taskset", "-c", "0", *argv], check=True)
            wall = time.monotonic() - started
            result = json.loads(summary.read_text())
            procs = max(int(line.split(",")[11]) for line in out.read_text().splitlines()[1:])
    finally:
        if load is not None:
            load.stop()
        process.stop()
        if cgroup is not None:
            cgroup.remove()
    # The interpreter's start-up (imports) is a one-off per cell; report it apart.
    return {"method": result["method"], "cpu_s": result["cpu_seconds"], "wall_s": wall,
            "pct_of_core": 100 * result["cpu_seconds"] / wall, "procs": procs,
            "samples": result["samples"]}


def startup_cost() -> float:
    done = subprocess.run([sys.executable, "-c",
                           "import resource, psutil, csv, json; r = resource.getrusage(0); "
                           "print(r.ru_utime + r.ru_stime)"], capture_output=True, text=True,
                          check=True)
    return float(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    host = LocalHost()
    with tempfile.TemporaryDirectory() as scratch:
        build_root = Path(scratch)
        loadgen = build_loadgen(host, build_root)
        modes = [False] + ([True] if cgroups_available() else [])
        results = [trace_once(host, build_root, loadgen, args.connections, args.seconds, m)
                   for m in modes]
    start = startup_cost()
    print(f"tracer overhead, c-fork at {args.connections} connections, 500 ms sampling, "
          f"{args.seconds:g} s; {platform.node()} {platform.machine()}, python "
          f"{platform.python_version()}")
    print(f"{'method':<10} {'procs':>5} {'samples':>7} {'cpu s':>7} {'wall s':>7} "
          f"{'% of one core':>14} {'excl. start-up':>15}")
    for r in results:
        steady = 100 * max(r["cpu_s"] - start, 0.0) / r["wall_s"]
        print(f"{r['method']:<10} {r['procs']:>5} {r['samples']:>7} {r['cpu_s']:>7.3f} "
              f"{r['wall_s']:>7.2f} {r['pct_of_core']:>13.2f}% {steady:>14.2f}%")
    print(f"interpreter start-up and imports: {start:.3f} CPU s (once per cell)")


if __name__ == "__main__":
    main()
