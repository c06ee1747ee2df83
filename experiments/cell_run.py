"""Run one cell: start the server, trace it, drive the load, stop everything, keep the files."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments import loadgens
from experiments.build import BuildResult
from experiments.cells import WORKLOAD_CHAT, Cell
from experiments.config import ExperimentConfig
from experiments.rawdata import RunDir, now_iso
from experiments.server_registry import ServerDescriptor
from infra.cgroups import Cgroup, create_cgroup
from infra.hosts import Process, wait_for_port
from infra.providers import Lab, Placement

TRACER_SCRIPT = Path(__file__).resolve().parent / "tracer.py"
SERVER_START_TIMEOUT_S = 5.0
TRACER_STARTUP_S = 0.6  # python + psutil import, before the tracer's baseline reading
STDERR_TAIL_LINES = 20


class RunAborted(RuntimeError):
    """A problem no later cell can escape (e.g. the port is taken); the run stops."""


@dataclass(frozen=True)
class CellContext:
    lab: Lab
    config: ExperimentConfig
    build: BuildResult
    servers: dict[str, ServerDescriptor]
    run_dir: RunDir
    chat_key: Path | None = None  # the run's shared key for chat cells (a private 0600 file)


# A chat server started as root must drop to an unprivileged user; "nobody" exists on every
# Linux and BSD. As any other user, the server runs as that user.
CHAT_USER_AS_ROOT = "nobody"


def chat_key_file(directory: Path) -> Path:
    """A fresh 128-character key, readable by its owner only (the servers refuse more)."""
    key = directory / "chat.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(64))
    return key


def chat_server_values(cell: Cell, work: Path) -> dict[str, Any]:
    """Placeholders of a chat server's command line; the log lives in the cell (it is data)."""
    log_file = work / "chat.log"
    log_file.touch(mode=0o644)
    user = CHAT_USER_AS_ROOT if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        # The per-client processes open the log after the server drops to ``user``.
        record = pwd.getpwnam(user)
        os.chown(log_file, record.pw_uid, record.pw_gid)
    return {"key_file": "", "log_file": log_file, "history": cell.factors["history"],
            "user": user}


def tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def check_port_free(port: int) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("0.0.0.0", port))
    except OSError as error:
        raise RunAborted(
            f"port {port} is in use ({error.strerror}): stop whatever listens there "
            f"(ss -ltnp 'sport = :{port}') or set experiment.port in the config"
        ) from error
    finally:
        probe.close()


def loadgen_argv(context: CellContext, cell: Cell) -> list[str]:
    config = context.config
    target = f"{context.lab.target_address}:{config.port}"
    if cell.factors["workload"] == WORKLOAD_CHAT:
        assert context.chat_key is not None
        return loadgens.chat_command(
            context.build.loadgen_binary, target, cell.connections, config.load_duration_s,
            cell.factors["message_rate"], context.chat_key, cell.factors["message_size"],
            connect_rate=config.connect_rate)
    if config.generator == "tcpkali":
        binary = loadgens.find_tcpkali()
        if binary is None:
            raise RunAborted("load.loadgen = 'tcpkali' but no tcpkali is on PATH: install "
                             "it, or use loadgen = 'native'")
        make = loadgens.tcpkali_command
    else:
        binary, make = context.build.loadgen_binary, loadgens.native_command
    return make(binary, target, cell.connections, config.load_duration_s, config.message,
                config.bandwidth_bps, connect_rate=config.connect_rate)


def read_loadgen_summary(context: CellContext, cell: Cell, stdout_text: str) -> dict[str, Any]:
    if context.config.generator == "tcpkali" and cell.factors["workload"] != WORKLOAD_CHAT:
        return loadgens.parse_tcpkali_output(
            stdout_text, target=f"{context.lab.target_address}:{context.config.port}",
            connections=cell.connections, bandwidth_bps=context.config.bandwidth_bps)
    return loadgens.parse_native_summary(stdout_text)


def run_cell(context: CellContext, cell: Cell, placement: Placement) -> tuple[Path, dict[str, Any]]:
    """Measure one cell; returns where it landed and its status. Never leaves a process behind."""
    config, lab = context.config, context.lab
    work = context.run_dir.work_dir(cell.id)
    status: dict[str, Any] = {
        "id": cell.id, "factors": cell.factors, "status": "failed", "reason": None,
        "started_at": now_iso(), "ended_at": None,
        "warmup_s": config.warmup_s, "measure_s": config.measure_s,
        "sample_interval_s": config.sample_interval_s,
        "server_cpus": placement.server_cpus, "aux_cpus": placement.aux_cpus,
        "cpu_isolation": placement.isolation,
        "tracer": None, "server": {"exit_code": None, "stderr_tail": ""},
    }
    check_port_free(config.port)
    descriptor = context.servers[cell.server]
    cgroup: Cgroup | None = create_cgroup(f"{context.run_dir.run_id}.{cell.id}",
                                          placement.server_cpus)
    started: list[Process] = []
    try:
        values: dict[str, Any] = {}
        if cell.factors["workload"] == WORKLOAD_CHAT:
            values = chat_server_values(cell, work) | {"key_file": context.chat_key}
        server_argv = descriptor.start_argv(context.build.server_build_dirs[cell.server],
                                            config.port, cell.factors, **values)
        server_env = descriptor.start_env(cell.factors)
        status["server"].update(argv=server_argv, env=server_env)
        server = lab.server.start(server_argv, cpus=placement.server_cpus, cgroup=cgroup,
                                  env=server_env, stderr=work / "server.stderr")
        started.append(server)
        if not wait_for_port(lab.target_address, config.port, SERVER_START_TIMEOUT_S, server):
            code = server.poll()
            status["reason"] = (
                f"{cell.server} exited with code {code} while starting"
                if code is not None else
                f"{cell.server} did not accept connections on port {config.port} within "
                f"{SERVER_START_TIMEOUT_S:g} s: check {work.name}/server.stderr")
            return _finish(context, cell, work, status, started, cgroup)

        t0 = time.time() + TRACER_STARTUP_S
        tracer_argv = [
            sys.executable, str(TRACER_SCRIPT), "--pid", str(server.pid),
            "--out", str(work / "trace.csv"), "--summary", str(work / "tracer.json"),
            "--interval", str(config.sample_interval_s), "--duration", str(config.load_duration_s),
            "--warmup", str(config.warmup_s), "--t0", f"{t0:.6f}",
        ]
        if cgroup is not None:
            tracer_argv += ["--cgroup-dir", str(cgroup.cpu_dir), "--cgroup-kind", cgroup.kind]
        tracer = lab.server.start(tracer_argv, cpus=placement.aux_cpus,
                                  stderr=work / "tracer.stderr")
        started.append(tracer)
        time.sleep(max(0.0, t0 - time.time()))
        loadgen = lab.loadgen.start(loadgen_argv(context, cell), cpus=placement.aux_cpus,
                                    stdout=work / "loadgen.out", stderr=work / "loadgen.stderr")
        started.append(loadgen)

        deadline = time.monotonic() + config.load_duration_s + 30
        loadgen_code = _wait(loadgen, deadline)
        tracer_code = _wait(tracer, deadline)
        server_code = server.poll()
        if server_code is not None:
            status["reason"] = f"{cell.server} exited with code {server_code} during the cell"
        elif loadgen_code != 0:
            status["reason"] = (f"load generator exited with {loadgen_code}: "
                                f"{tail(work / 'loadgen.stderr', 3) or 'no message'}")
        elif tracer_code != 0:
            status["reason"] = (f"tracer exited with {tracer_code}: "
                                f"{tail(work / 'tracer.stderr', 3) or 'no message'}")
        else:
            # tcpkali splits its summary over stdout and stderr; ours is all on stdout.
            output = (work / "loadgen.out").read_text()
            if config.generator == "tcpkali":
                output += (work / "loadgen.stderr").read_text()
            summary = read_loadgen_summary(context, cell, output)
            (work / "loadgen.json").write_text(json.dumps(summary, indent=2) + "\n")
            tracer_summary = json.loads((work / "tracer.json").read_text())
            status["tracer"] = {k: tracer_summary[k] for k in ("method", "cpu_seconds", "samples")}
            opened = summary["connections"]["opened"]
            if opened < cell.connections:
                status["reason"] = f"only {opened} of {cell.connections} connections opened"
            elif cell.factors["workload"] == WORKLOAD_CHAT and not summary.get("lines_received"):
                status["reason"] = ("no chat line came back: "
                                    + ("; ".join(summary["errors"]) or "the server sent nothing"))
            elif tracer_summary["samples"] == 0:
                status["reason"] = "the tracer recorded no sample"
            else:
                status["status"] = "ok"
        return _finish(context, cell, work, status, started, cgroup)
    except BaseException:
        _stop_all(started, cgroup)
        raise


def _wait(process: Process, deadline: float) -> int | None:
    try:
        return process.wait(max(0.1, deadline - time.monotonic()))
    except Exception:  # subprocess.TimeoutExpired; the caller reports the missing exit code
        return None


def _stop_all(started: list[Process], cgroup: Cgroup | None) -> list[int | None]:
    codes = [process.stop() for process in reversed(started)]
    if cgroup is not None:
        cgroup.remove()
    return codes


def _finish(context: CellContext, cell: Cell, work: Path, status: dict[str, Any],
            started: list[Process], cgroup: Cgroup | None) -> tuple[Path, dict[str, Any]]:
    server_was_running = bool(started) and started[0].poll() is None
    codes = _stop_all(started, cgroup)
    status["server"].update(
        exit_code=codes[-1] if started else None,
        stopped_by_runner=server_was_running,
        stderr_tail=tail(work / "server.stderr"),
    )
    status["ended_at"] = now_iso()
    return context.run_dir.commit_cell(work, cell.id, status), status
