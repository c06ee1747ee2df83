"""What driving a host over SSH costs the runner, next to doing the same on this machine.

Against a throwaway sshd on 127.0.0.1 (tests/ssh_util.py), side by side with LocalHost in the
same run, so the figures are ratios on the same machine:

1. one short command (``true``): median and p90 round trip, ``--runs`` times;
2. starting a background process and stopping it (the runner does this for the server, the
   tracer and the load generator of every cell);
3. polling a running process (the runner polls every 0.2 s while a cell measures);
4. uploading a 1 MiB file and a source tree (c-fork's sources, as a remote build does);
5. gathering a host's facts (what provision and every run record).

    .venv/bin/python benchmarks/bench_remote.py [--runs 50] [--lab-host server-amd64]

``--lab-host`` measures a provisioned lab host too (`invoke provision --provider lab` first):
a clean Debian root, where a command's cost is sshd and sh, not a login shell's start-up
files (this machine's root ~/.bashrc, with pyenv, costs ~100 ms per SSH command).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.hosts import Host, LocalHost  # noqa: E402
from infra.remote import RemoteHost  # noqa: E402
from infra.remote_facts import gather_facts  # noqa: E402
from tests.ssh_util import loopback_sshd  # noqa: E402

C_FORK_SOURCES = Path(__file__).resolve().parent.parent / "experiments" / "servers" / "c-fork"


def timed(action: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def describe(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {statistics.median(samples) * 1000:7.1f} ms, p90 {p90 * 1000:7.1f} ms"


def measure(host: Host, work: Path, runs: int) -> dict[str, list[float]]:
    blob = work / "blob.bin"
    blob.write_bytes(os.urandom(1 << 20))
    target = Path(host.workdir("bench", local=work / "here"))
    figures = {"command (true)": timed(lambda: host.run(["true"]), runs)}

    def start_stop() -> None:
        host.start(["sleep", "30"]).stop(grace_s=2)

    figures["start + stop a process"] = timed(start_stop, max(5, runs // 5))
    process = host.start(["sleep", "60"])
    figures["poll a running process"] = timed(process.poll, runs)
    process.stop(grace_s=2)
    figures["upload 1 MiB"] = timed(lambda: host.put(blob, target / "blob.bin"),
                                    max(5, runs // 5))
    figures["upload c-fork sources"] = timed(
        lambda: host.put_tree(C_FORK_SOURCES, target / "c-fork"), max(5, runs // 5))
    figures["gather facts"] = timed(lambda: gather_facts(host), 3)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="repetitions of the fast steps")
    parser.add_argument("--lab-host", help="also measure this host of the provisioned lab")
    args = parser.parse_args()
    lab: dict[str, list[float]] | None = None
    if args.lab_host:
        from infra.providers.lab import LabProvider

        (entry,) = [e for e in LabProvider(None).hosts() if e.name == args.lab_host]
        with tempfile.TemporaryDirectory(prefix="papaya-bench-lab-") as scratch:
            try:
                lab = measure(entry.host, Path(scratch), args.runs)
            finally:
                entry.host.close()
    with tempfile.TemporaryDirectory(prefix="papaya-bench-remote-") as scratch:
        work = Path(scratch)
        local = measure(LocalHost(), work, args.runs)
        with loopback_sshd(work / "sshd") as sshd:
            remote_host = RemoteHost("loopback", "127.0.0.1", port=sshd.port, user=sshd.user,
                                     key_file=sshd.key_file, known_hosts=sshd.known_hosts)
            remote_host.connect()
            try:
                remote = measure(remote_host, work, args.runs)
            finally:
                remote_host.close()
    columns = {"local": local, "SSH, loopback (this machine)": remote}
    if lab is not None:
        columns[f"SSH, lab host {args.lab_host}"] = lab
    print(f"{'step':24s} " + " ".join(f"{name:36s}" for name in columns))
    for step in local:
        print(f"{step:24s} " + " ".join(f"{describe(figures[step]):36s}"
                                        for figures in columns.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
