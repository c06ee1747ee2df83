"""Helpers for the end-to-end tests: small configs, free ports, leftover-process checks."""

from __future__ import annotations

import socket
import textwrap
import time
from pathlib import Path

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(path: Path, *, servers: list[str], connections: list[int], repetitions: int = 1,
                 warmup: str = "500ms", duration: str = "1500ms", interval: str = "250ms",
                 bandwidth: str = "1Mbps", seed: int = 11) -> Path:
    path.write_text(textwrap.dedent(f"""
        [experiment]
        name = "{path.stem}"
        seed = {seed}
        repetitions = {repetitions}
        warmup = "{warmup}"
        duration = "{duration}"
        sample_interval = "{interval}"
        port = {free_port()}

        [load]
        message = "message\\n"
        bandwidth = "{bandwidth}"

        [matrix]
        servers = {servers!r}
        connections = {connections!r}
        cpus = [1]
        """).replace("'", '"'))
    return path


def processes_running(build_root: Path) -> list[str]:
    """Processes whose executable lives under ``build_root`` (servers, load generator)."""
    found = []
    for process in psutil.process_iter(["exe", "cmdline", "status"]):
        exe = process.info["exe"] or ""
        if exe.startswith(str(build_root)) and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(f"{process.pid} {exe}")
    return found


def wait_until_gone(build_root: Path, timeout_s: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while (left := processes_running(build_root)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
