"""Sample the CPU usage of a server's whole process tree, one CSV row per sample.

Runs as its own process (``python3 tracer.py --pid ...``) next to the server, pinned away
from the server's CPUs, and depends only on the standard library and psutil so that it can be
copied to any host that has python3 and psutil, FreeBSD included.

CPU comes from the server's cgroup when one is given (exact, and O(1) per sample: exited
children are already included); otherwise from psutil, as the sum over live processes of
their own and their reaped children's CPU times. Context switches have no cgroup counter, so
they always come from the live processes, plus the last value seen of each one that exited.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

COLUMNS = [
    "t_unix", "t_rel_s", "warmup", "cpu_pct", "user_pct", "system_pct",
    "ctx_voluntary", "ctx_involuntary", "ctx_voluntary_per_s", "ctx_involuntary_per_s",
    "rss_bytes", "n_procs", "n_threads",
    "host_user_pct", "host_system_pct", "host_softirq_pct", "host_idle_pct",
]


@dataclass
class TreeReading:
    wall: float
    user_s: float
    system_s: float
    ctx_voluntary: int
    ctx_involuntary: int
    rss_bytes: int
    n_procs: int
    n_threads: int


class CgroupCpu:
    """Cumulative user and system seconds of a cgroup (v1 cpuacct or v2 cpu.stat)."""

    def __init__(self, directory: Path, kind: str):
        self.directory = directory
        self.kind = kind

    def read(self) -> tuple[float, float]:
        if self.kind == "cgroup-v2":
            stat = dict(
                line.split() for line in (self.directory / "cpu.stat").read_text().splitlines()
            )
            return int(stat["user_usec"]) / 1e6, int(stat["system_usec"]) / 1e6
        # v1: the user/sys split is charged per tick, the total per scheduler event; scale
        # the split to the exact total so that user + system == total.
        total = int((self.directory / "cpuacct.usage").read_text()) / 1e9
        user = int((self.directory / "cpuacct.usage_user").read_text())
        system = int((self.directory / "cpuacct.usage_sys").read_text())
        if user + system == 0:
            return total, 0.0
        return total * user / (user + system), total * system / (user + system)

    def pids(self) -> list[int]:
        return [int(p) for p in (self.directory / "cgroup.procs").read_text().split()]


class TreeWalker:
    """Reads the tree rooted at ``root_pid`` (or the cgroup's members) with psutil."""

    def __init__(self, root_pid: int, cgroup: CgroupCpu | None):
        self.root = psutil.Process(root_pid)
        self.cgroup = cgroup
        self.last_ctx: dict[tuple[int, float], tuple[int, int]] = {}
        self.exited_ctx = [0, 0]

    def processes(self) -> list[psutil.Process]:
        if self.cgroup is not None:
            found = []
            for pid in self.cgroup.pids():
                try:
                    found.append(psutil.Process(pid))
                except psutil.NoSuchProcess:
                    continue
            return found
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def read(self) -> TreeReading:
        wall = time.time()
        user = system = 0.0
        rss = threads = 0
        seen: dict[tuple[int, float], tuple[int, int]] = {}
        for process in self.processes():
            try:
                with process.oneshot():
                    key = (process.pid, process.create_time())
                    ctx = process.num_ctx_switches()
                    rss += process.memory_info().rss
                    threads += process.num_threads()
                    if self.cgroup is None:
                        times = process.cpu_times()
                        user += times.user + times.children_user
                        system += times.system + times.children_system
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            seen[key] = (ctx.voluntary, ctx.involuntary)
        for key, (voluntary, involuntary) in self.last_ctx.items():
            if key not in seen:
                self.exited_ctx[0] += voluntary
                self.exited_ctx[1] += involuntary
        self.last_ctx = seen
        if self.cgroup is not None:
            user, system = self.cgroup.read()
        return TreeReading(
            wall=wall, user_s=user, system_s=system,
            ctx_voluntary=self.exited_ctx[0] + sum(v for v, _ in seen.values()),
            ctx_involuntary=self.exited_ctx[1] + sum(i for _, i in seen.values()),
            rss_bytes=rss, n_procs=len(seen), n_threads=threads,
        )


def host_cpu_split(before: psutil._common.scputimes, after: psutil._common.scputimes
                   ) -> dict[str, float]:
    deltas = {f: getattr(after, f) - getattr(before, f) for f in after._fields}
    total = sum(deltas.values()) or 1.0
    return {
        "host_user_pct": 100 * (deltas["user"] + deltas.get("nice", 0.0)) / total,
        "host_system_pct": 100 * deltas["system"] / total,
        "host_softirq_pct": 100 * deltas.get("softirq", 0.0) / total,
        "host_idle_pct": 100 * (deltas["idle"] + deltas.get("iowait", 0.0)) / total,
    }


def sample_row(previous: TreeReading, current: TreeReading, t0: float, in_warmup: bool,
               host: dict[str, float]) -> dict[str, float | int]:
    elapsed = max(current.wall - previous.wall, 1e-9)
    user_pct = 100 * (current.user_s - previous.user_s) / elapsed
    system_pct = 100 * (current.system_s - previous.system_s) / elapsed
    t_rel = current.wall - t0
    return {
        "t_unix": round(current.wall, 4),
        "t_rel_s": round(t_rel, 4),
        "warmup": int(in_warmup),
        "cpu_pct": round(user_pct + system_pct, 4),
        "user_pct": round(user_pct, 4),
        "system_pct": round(system_pct, 4),
        "ctx_voluntary": current.ctx_voluntary,
        "ctx_involuntary": current.ctx_involuntary,
        "ctx_voluntary_per_s": round((current.ctx_voluntary - previous.ctx_voluntary) / elapsed, 3),
        "ctx_involuntary_per_s": round(
            (current.ctx_involuntary - previous.ctx_involuntary) / elapsed, 3),
        "rss_bytes": current.rss_bytes,
        "n_procs": current.n_procs,
        "n_threads": current.n_threads,
        **{k: round(v, 3) for k, v in host.items()},
    }


def trace(pid: int, out: Path, *, interval_s: float, duration_s: float, warmup_s: float,
          t0: float, cgroup: CgroupCpu | None) -> dict[str, object]:
    """Sample at t0 + k·interval until t0 + duration, the target's exit, or SIGTERM."""
    stop = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    walker = TreeWalker(pid, cgroup)
    samples = 0
    target_exited = False
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        handle.flush()
        time.sleep(max(0.0, t0 - time.time()))
        previous, previous_host = walker.read(), psutil.cpu_times()
        k = 1
        while not stop and k * interval_s <= duration_s + 1e-9:
            time.sleep(max(0.0, t0 + k * interval_s - time.time()))
            if stop:
                break
            if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                target_exited = True
                break
            current, current_host = walker.read(), psutil.cpu_times()
            # Flagged by schedule, not by the measured time, which jitters by milliseconds.
            in_warmup = k * interval_s <= warmup_s + 1e-9
            writer.writerow(sample_row(previous, current, t0, in_warmup,
                                       host_cpu_split(previous_host, current_host)))
            handle.flush()
            previous, previous_host = current, current_host
            samples += 1
            k += 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "method": cgroup.kind if cgroup else "psutil",
        "samples": samples,
        "interval_s": interval_s,
        "target_exited": target_exited,
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 4),
        "tracer_pid": os.getpid(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, required=True, help="root of the server's tree")
    parser.add_argument("--out", type=Path, required=True, help="trace CSV to write")
    parser.add_argument("--summary", type=Path, required=True, help="tracer JSON to write")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--duration", type=float, required=True, help="seconds to sample")
    parser.add_argument("--warmup", type=float, default=0.0, help="warm-up seconds (flagged)")
    parser.add_argument("--t0", type=float, default=None, help="epoch time the load starts")
    parser.add_argument("--cgroup-dir", type=Path, help="cgroup to read CPU from")
    parser.add_argument("--cgroup-kind", choices=["cgroup-v1", "cgroup-v2"])
    args = parser.parse_args(argv)
    if args.interval <= 0 or args.duration <= 0:
        parser.error("--interval and --duration must be positive")
    if bool(args.cgroup_dir) != bool(args.cgroup_kind):
        parser.error("--cgroup-dir and --cgroup-kind go together")
    cgroup = CgroupCpu(args.cgroup_dir, args.cgroup_kind) if args.cgroup_dir else None
    try:
        summary = trace(
            args.pid, args.out, interval_s=args.interval, duration_s=args.duration,
            warmup_s=args.warmup, t0=args.t0 if args.t0 is not None else time.time(),
            cgroup=cgroup,
        )
    except psutil.NoSuchProcess:
        print(f"tracer: process {args.pid} does not exist", file=sys.stderr)
        return 1
    args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
