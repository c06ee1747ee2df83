"""Reliability and delivery latency of the two chat servers (experiments/chat).

For each server (C: papaya-chatd, Go: papaya-chatd-go), on loopback:

1. Reliability: 64 clients each write 1,000 lines as fast as they can (in random pieces that
   cut lines anywhere) while reading everything. Prints lines sent, lines in the log (and
   how many distinct), lines delivered per client, lost and duplicated (by content), and
   whether every client's stream is exactly the end of the log. Target: sent = logged =
   delivered on every client, zero lost, zero duplicated.
2. Delivery latency at 16 and 64 connections: each connection sends ``--rate`` lines per
   second for ``--seconds`` seconds, each line carrying its send time (monotonic clock);
   every connection timestamps every line it receives. Latency = receive time - send time,
   over every (line, receiving connection) pair; percentiles p50/p90/p99/p99.9/max.

The server runs on CPU 1 and this script (one thread, selectors) on CPU 0 when the machine
has two CPUs or more. Started as root, the servers run as ``nobody`` (--user).

    .venv/bin/python benchmarks/bench_chat.py [--repeat 3] [--rate 10] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.chat.chat_util import (  # noqa: E402
    BINARY_NAMES,
    IMPLS,
    build,
    force_stop,
    new_key,
    percentile,
    run_load,
    server_dir,
    start_server,
    toolchain_env,
    write_key_file,
)

QUANTILES = (50, 90, 99, 99.9)


def pin(pid: int, cpu: int) -> bool:
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return False
    os.sched_setaffinity(pid, {cpu})
    return True


def with_server(impl: str, binary: Path, scratch: Path, fn, extra: list[str] | None = None):
    key = new_key()
    key_file = write_key_file(scratch / "chat.key", key)
    with server_dir(scratch) as where:
        log = where / f"{impl}-{time.monotonic_ns()}.log"
        # The server inherits CPU 1 (every process and thread it creates), then this
        # script moves to CPU 0.
        pinned = pin(0, 1)
        try:
            srv = start_server(
                impl, binary, key=key, key_file=key_file, log_path=log, workdir=scratch, extra=extra
            )
        finally:
            if pinned:
                pin(0, 0)
        try:
            return fn(srv)
        finally:
            srv.close_clients()
            force_stop(srv.proc)


def reliability(srv) -> dict:
    r = run_load(srv, 64, 1000, timeout=120)
    return {
        "sent": r.sent,
        "logged": r.logged,
        "logged_distinct": r.logged_unique,
        "malformed_log_lines": r.malformed_log_lines,
        "delivered_min": min(r.delivered),
        "delivered_max": max(r.delivered),
        "delivered_total": sum(r.delivered),
        "lost_total": sum(r.lost),
        "duplicated_total": sum(r.duplicated),
        "streams_equal_log_suffix": all(r.suffix_ok),
        "seconds": round(r.duration_s, 2),
    }


def server_cpu_seconds(srv) -> float:
    """CPU seconds (user + system) of the server since it started, exited children included
    (the C server's per-client processes, once the clients have gone and it has reaped them).
    """
    import psutil

    proc = psutil.Process(srv.proc.pid)
    deadline = time.monotonic() + 3
    while proc.children() and time.monotonic() < deadline:
        time.sleep(0.02)
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def latency(srv, connections: int, rate: float, seconds: float) -> dict:
    lines = int(rate * seconds)
    r = run_load(srv, connections, lines, rate_per_writer=rate, timeout=seconds + 60)
    lat = sorted(r.latencies_ns)
    out = {
        "connections": connections,
        "rate_per_connection": rate,
        "seconds": seconds,
        "server_cpu_pct": round(100 * server_cpu_seconds(srv) / r.duration_s, 1),
        "samples": len(lat),
        "lost_total": sum(r.lost),
        "duplicated_total": sum(r.duplicated),
    }
    for q in QUANTILES:
        out[f"p{q:g}_ms"] = round(percentile(lat, q) / 1e6, 3)
    out["max_ms"] = round(lat[-1] / 1e6, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement")
    parser.add_argument("--rate", type=float, default=10.0, help="lines/s per connection")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency run length")
    parser.add_argument("--connections", default="16,64", help="latency connection counts")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    conns = [int(c) for c in args.connections.split(",")]

    results: dict = {
        "host": {
            "system": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "servers": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as tmp:
        scratch = Path(tmp)
        binaries = {}
        for impl in IMPLS:
            env = toolchain_env()
            env.pop("CC", None)
            binary, built = build(impl, scratch / f"build-{impl}", env=env)
            if built.returncode != 0:
                raise SystemExit(f"{impl} build failed:\n{built.stdout}{built.stderr}")
            binaries[impl] = binary

        for impl in IMPLS:
            name = BINARY_NAMES[impl]
            res = results["servers"][name] = {"reliability": [], "latency": []}
            for run in range(args.repeat):
                rel = with_server(impl, binaries[impl], scratch, reliability)
                res["reliability"].append(rel)
                print(
                    f"{name} 64x1000 run {run + 1}: sent {rel['sent']}, logged "
                    f"{rel['logged']} ({rel['logged_distinct']} distinct, "
                    f"{rel['malformed_log_lines']} malformed), delivered per client "
                    f"{rel['delivered_min']}..{rel['delivered_max']} (total "
                    f"{rel['delivered_total']}), lost {rel['lost_total']}, duplicated "
                    f"{rel['duplicated_total']}, streams = log suffix: "
                    f"{rel['streams_equal_log_suffix']}, {rel['seconds']} s",
                    flush=True,
                )
            for c in conns:
                for run in range(args.repeat):
                    lat = with_server(
                        impl,
                        binaries[impl],
                        scratch,
                        lambda srv, c=c: latency(srv, c, args.rate, args.seconds),
                    )
                    res["latency"].append(lat)
                    qs = ", ".join(f"p{q:g} {lat[f'p{q:g}_ms']} ms" for q in QUANTILES)
                    print(
                        f"{name} latency {c} conn x {args.rate:g}/s x {args.seconds:g} s "
                        f"run {run + 1}: {lat['samples']} samples; {qs}, max "
                        f"{lat['max_ms']} ms; lost {lat['lost_total']}, duplicated "
                        f"{lat['duplicated_total']}; server CPU {lat['server_cpu_pct']} % "
                        f"of one core",
                        flush=True,
                    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
