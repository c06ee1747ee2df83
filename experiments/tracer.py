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
    cpu_s: float  # exact total where the source has it (cgroup), else user_s + system_s
    user_s: float
    system_s: float
    ctx_voluntary: int
    ctx_involuntary: int
    rss_bytes: int
    n_procs: int
    n_threads: int
    root_alive: bool = True


class CgroupCpu:
    """Cumulative CPU seconds of a cgroup: (exact total, user, system).

    v1's cpuacct.usage is exact (nanoseconds per scheduler event) while its user/sys split is
    counted in ticks; v2's cpu.stat is exact for all three.
    """

    def __init__(self, directory: Path, kind: str):
        self.directory = directory
        self.kind = kind

    def read(self) -> tuple[float, float, float]:
        if self.kind == "cgroup-v2":
            stat = dict(
                line.split() for line in (self.directory / "cpu.stat").read_text().splitlines()
            )
            return (int(stat["usage_usec"]) / 1e6, int(stat["user_usec"]) / 1e6,
                    int(stat["system_usec"]) / 1e6)
        total = int((self.directory / "cpuacct.usage").read_text()) / 1e9
        user = int((self.directory / "cpuacct.usage_user").read_text()) / 1e9
        system = int((self.directory / "cpuacct.usage_sys").read_text()) / 1e9
        return total, user, system

    def pids(self) -> list[int]:
        return [int(p) for p in (self.directory / "cgroup.procs").read_text().split()]


def thread_ctx_switches(pid: int) -> tuple[int, int] | None:
    """Context switches summed over a process's threads (Linux /proc/PID/task/*/status).

    /proc/PID/status counts the main thread only, which for a Go server is nearly idle while
    its goroutines run on other threads. Returns None where /proc has no task directory.
    """
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    voluntary = involuntary = 0
    for tid in tids:
        counts = status_ctx_switches(pid, int(tid))
        if counts is not None:  # None: the thread exited while we read
            voluntary += counts[0]
            involuntary += counts[1]
    return voluntary, involuntary


def linux_descendants(root_pid: int) -> list[int] | None:
    """The tree below ``root_pid`` from /proc/PID/task/TID/children, or None where absent.

    Far cheaper than psutil's children(), which reads the stat file of every process on the
    host to build a parent map; the tracer's own overhead is part of what it must keep small.
    """
    if not os.path.exists(f"/proc/{root_pid}/task/{root_pid}/children"):
        return None
    found: list[int] = []
    pending = [root_pid]
    while pending:
        pid = pending.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as handle:
                    children = [int(c) for c in handle.read().split()]
            except OSError:
                continue
            found.extend(children)
            pending.extend(children)
    return found


@dataclass(frozen=True)
class ProcessSample:
    key: tuple[int, float]  # (pid, start time): a reused pid is another process
    user_s: float  # the process's own CPU plus that of its reaped children
    system_s: float
    ctx_voluntary: int
    ctx_involuntary: int
    rss_bytes: int
    n_threads: int


LINUX_PROC = os.path.exists("/proc/self/stat") and sys.platform.startswith("linux")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_small(path: str) -> bytes | None:
    """A /proc file in one read, without a Python file object's buffering layers."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 8192)
    except OSError:
        return None
    finally:
        os.close(fd)


def linux_sample(pid: int) -> ProcessSample | None:
    """One process from /proc/PID/stat and status: two reads, where psutil needs four.

    The tracer samples up to hundreds of processes twice a second on the machine it measures;
    its own CPU is an error term of the experiment, so this hot path stays minimal.
    """
    stat = read_small(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()  # the command name may contain spaces
    if fields[0] == b"Z":
        return None
    utime, stime, cutime, cstime = (int(fields[i]) / CLOCK_TICKS for i in (11, 12, 13, 14))
    n_threads = int(fields[17])
    ctx = thread_ctx_switches(pid) if n_threads > 1 else status_ctx_switches(pid)
    if ctx is None:
        return None
    return ProcessSample(
        key=(pid, float(fields[19])), user_s=utime + cutime, system_s=stime + cstime,
        ctx_voluntary=ctx[0], ctx_involuntary=ctx[1],
        rss_bytes=int(fields[21]) * PAGE_SIZE, n_threads=n_threads,
    )


def _ctx_from_status(status: bytes) -> tuple[int, int]:
    start = status.find(b"\nvoluntary_ctxt_switches:")
    if start < 0:
        return 0, 0
    # The two lines are adjacent at the end of the file: "voluntary...: N\nnonvoluntary...: M"
    numbers = status[start:].split()
    return int(numbers[1]), int(numbers[3])


def status_ctx_switches(pid: int, tid: int | None = None) -> tuple[int, int] | None:
    status = read_small(f"/proc/{pid}/status" if tid is None else
                        f"/proc/{pid}/task/{tid}/status")
    return None if status is None else _ctx_from_status(status)


def psutil_sample(process: psutil.Process) -> ProcessSample | None:
    """The portable path (FreeBSD, macOS), where context switches are per process already."""
    try:
        with process.oneshot():
            times = process.cpu_times()
            ctx = process.num_ctx_switches()
            return ProcessSample(
                key=(process.pid, process.create_time()),
                user_s=times.user + times.children_user,
                system_s=times.system + times.children_system,
                ctx_voluntary=ctx.voluntary, ctx_involuntary=ctx.involuntary,
                rss_bytes=process.memory_info().rss, n_threads=process.num_threads(),
            )
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None


class TreeWalker:
    """Reads the tree rooted at ``root_pid`` (or the cgroup's members)."""

    def __init__(self, root_pid: int, cgroup: CgroupCpu | None):
        self.root = psutil.Process(root_pid)
        self.cgroup = cgroup
        self.known: dict[int, psutil.Process] = {root_pid: self.root}
        self.last_ctx: dict[tuple[int, float], tuple[int, int]] = {}
        self.exited_ctx = [0, 0]

    def pids(self) -> list[int]:
        if self.cgroup is not None:
            return self.cgroup.pids()
        descendants = linux_descendants(self.root.pid) if LINUX_PROC else None
        if descendants is not None:
            return [self.root.pid, *descendants]
        try:
            return [self.root.pid, *(c.pid for c in self.root.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def samples(self) -> list[ProcessSample]:
        if LINUX_PROC:
            found = [linux_sample(pid) for pid in self.pids()]
            return [sample for sample in found if sample is not None]
        current: dict[int, psutil.Process] = {}
        for pid in self.pids():  # Process objects are reused: building one costs a syscall
            try:
                current[pid] = self.known.get(pid) or psutil.Process(pid)
            except psutil.NoSuchProcess:
                continue
        self.known = current
        found = [psutil_sample(process) for process in current.values()]
        return [sample for sample in found if sample is not None]

    def read(self) -> TreeReading:
        wall = time.time()
        samples = self.samples()
        seen = {s.key: (s.ctx_voluntary, s.ctx_involuntary) for s in samples}
        for key, (voluntary, involuntary) in self.last_ctx.items():
            if key not in seen:
                self.exited_ctx[0] += voluntary
                self.exited_ctx[1] += involuntary
        self.last_ctx = seen
        user = sum(s.user_s for s in samples)
        system = sum(s.system_s for s in samples)
        total = user + system
        if self.cgroup is not None:
            total, user, system = self.cgroup.read()
        return TreeReading(
            wall=wall, cpu_s=total, user_s=user, system_s=system,
            ctx_voluntary=self.exited_ctx[0] + sum(v for v, _ in seen.values()),
            ctx_involuntary=self.exited_ctx[1] + sum(i for _, i in seen.values()),
            rss_bytes=sum(s.rss_bytes for s in samples), n_procs=len(samples),
            n_threads=sum(s.n_threads for s in samples),
            root_alive=any(s.key[0] == self.root.pid for s in samples),
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


def user_fraction(user_delta: float, system_delta: float, cumulative: TreeReading) -> float:
    """The user share of an interval's CPU.

    The split may be counted in ticks (cgroup v1, /proc) while the total is exact, so an
    interval can hold CPU but no tick; it then takes the share seen so far in the whole trace.
    """
    if user_delta + system_delta > 0:
        return max(0.0, min(1.0, user_delta / (user_delta + system_delta)))
    so_far = cumulative.user_s + cumulative.system_s
    return cumulative.user_s / so_far if so_far > 0 else 0.5


def sample_row(previous: TreeReading, current: TreeReading, t0: float, in_warmup: bool,
               host: dict[str, float]) -> dict[str, float | int]:
    elapsed = max(current.wall - previous.wall, 1e-9)
    cpu_pct = max(0.0, 100 * (current.cpu_s - previous.cpu_s) / elapsed)
    user_share = user_fraction(current.user_s - previous.user_s,
                               current.system_s - previous.system_s, current)
    user_pct, system_pct = cpu_pct * user_share, cpu_pct * (1 - user_share)
    t_rel = current.wall - t0
    return {
        "t_unix": round(current.wall, 4),
        "t_rel_s": round(t_rel, 4),
        "warmup": int(in_warmup),
        "cpu_pct": round(cpu_pct, 4),
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
            current, current_host = walker.read(), psutil.cpu_times()
            if not current.root_alive:
                target_exited = True
                break
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
