"""Benchmark papaya-loadgen: pacing accuracy and its own CPU cost, against a sink on loopback.

For each scenario (connections x per-connection bandwidth) it starts papaya-sink on
127.0.0.1, runs papaya-loadgen for a fixed time, and prints achieved vs target bandwidth
(aggregate and per connection: min, median, max, with % error) and the load generator's
own CPU seconds (user + system, from wait4) per MB sent. Not a test: it prints figures.

    .venv/bin/python benchmarks/bench_loadgen.py [--duration 10] [--repeat 1] [--json OUT]

Traffic goes only to 127.0.0.1; every run is bounded by --duration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments import loadgens  # noqa: E402

GO = Path(sys.prefix) / "bin" / "go"
MODULE_DIR = ROOT / "experiments" / "loadgen"
SCENARIOS = [(64, 1_000_000.0), (1000, 100_000.0)]
MESSAGE = "message\n"
CONNECT_RATE = 100_000  # open all connections at once: the ramp-up lowers the aggregate


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0")
    return env


def go_version() -> str:
    out = subprocess.run(
        [str(GO), "version"], env=go_env(), capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def build(out: Path) -> tuple[Path, Path]:
    subprocess.run(
        [str(GO), "build", "-trimpath", "-o", f"{out}{os.sep}", "./cmd/..."],
        cwd=MODULE_DIR,
        env=go_env(),
        check=True,
    )
    return out / "papaya-loadgen", out / "papaya-sink"


def run_scenario(
    loadgen: Path, sink: Path, connections: int, bandwidth_bps: float, duration_s: float
) -> dict:
    sink_proc = subprocess.Popen(
        [str(sink), "-listen", "127.0.0.1:0", "-T", f"{duration_s + 60:.0f}s"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink_proc.stdout is not None
        addr = sink_proc.stdout.readline().strip().removeprefix("listening on ")
        cmd = loadgens.native_command(
            loadgen,
            addr,
            connections,
            duration_s,
            MESSAGE,
            bandwidth_bps,
            connect_rate=CONNECT_RATE,
        )
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
            assert proc.stdout is not None
            out = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            err.seek(0)
            stderr = err.read()
        if proc.returncode != 0:
            raise RuntimeError(f"papaya-loadgen exited {proc.returncode}:\n{stderr}")
        summary = loadgens.parse_native_summary(out)
        sink_proc.terminate()
        sink_out, _ = sink_proc.communicate(timeout=10)
        sink_stats = json.loads(sink_out.strip().splitlines()[-1])
    finally:
        if sink_proc.poll() is None:
            sink_proc.kill()
            sink_proc.wait(timeout=5)

    target_agg = connections * bandwidth_bps
    per = summary["per_connection_bandwidth_bps"]
    cpu_s = usage.ru_utime + usage.ru_stime
    mb = summary["bytes_sent"] / 1e6
    ramp = next((ln for ln in stderr.splitlines() if ln.startswith("Ramped up")), "")
    return {
        "connections": connections,
        "opened": summary["connections"]["opened"],
        "target_bps": bandwidth_bps,
        "duration_s": summary["duration_s"],
        "aggregate_bps": summary["aggregate_bandwidth_bps"],
        "aggregate_err_pct": 100 * (summary["aggregate_bandwidth_bps"] / target_agg - 1),
        "per_conn_min_bps": per["min"],
        "per_conn_median_bps": per["median"],
        "per_conn_max_bps": per["max"],
        "per_conn_worst_err_pct": max(
            abs(100 * (per[k] / bandwidth_bps - 1)) for k in ("min", "median", "max")
        ),
        "bytes_sent": summary["bytes_sent"],
        "sink_bytes_received": sink_stats["bytes_received"],
        "cpu_user_s": usage.ru_utime,
        "cpu_system_s": usage.ru_stime,
        "cpu_s_per_mb": cpu_s / mb if mb else float("nan"),
        "cpu_pct_of_one_core": 100 * cpu_s / summary["duration_s"],
        "max_rss_kib": usage.ru_maxrss,
        "ramp_up": ramp,
        "errors": summary["errors"],
    }


def fmt_bps(bps: float) -> str:
    return f"{bps / 1e6:.4f} Mbps" if bps >= 1e6 else f"{bps / 1e3:.3f} kbps"


def print_result(r: dict) -> None:
    target_agg = r["connections"] * r["target_bps"]
    print(
        f"{r['connections']} x {fmt_bps(r['target_bps'])} for {r['duration_s']:.3f}s "
        f"({r['opened']} opened; {r['ramp_up'] or 'ramp-up incomplete'})"
    )
    print(
        f"  aggregate   {fmt_bps(r['aggregate_bps'])} vs {fmt_bps(target_agg)}"
        f"  ({r['aggregate_err_pct']:+.3f}%)"
    )
    for k in ("min", "median", "max"):
        v = r[f"per_conn_{k}_bps"]
        print(f"  per-conn {k:<6} {fmt_bps(v)}  ({100 * (v / r['target_bps'] - 1):+.3f}%)")
    print(
        f"  bytes sent {r['bytes_sent']}, sink received {r['sink_bytes_received']}"
        f"  ({'match' if r['bytes_sent'] == r['sink_bytes_received'] else 'MISMATCH'})"
    )
    print(
        f"  loadgen CPU {r['cpu_user_s']:.2f}s user + {r['cpu_system_s']:.2f}s system"
        f" = {r['cpu_pct_of_one_core']:.1f}% of one core; "
        f"{r['cpu_s_per_mb']:.4f} CPU-s per MB sent; max RSS {r['max_rss_kib'] / 1024:.1f} MiB"
    )
    if r["errors"]:
        print(f"  errors: {r['errors']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per scenario (default 1)")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    args = ap.parse_args()

    print(f"date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"go: {go_version()}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        loadgen, sink = build(Path(tmp))
        for connections, bw in SCENARIOS:
            for _ in range(args.repeat):
                r = run_scenario(loadgen, sink, connections, bw, args.duration)
                print_result(r)
                results.append(r)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
