"""Run one cell: start the server, trace it, drive the load, stop everything, keep the files."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
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
from infra.cgroups import Cgroup
from infra.hosts import Host, HostError, Process, wait_for_port
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
    # Where that key is on the server and load-generator hosts (the same file locally).
    chat_key_on_server: Path | None = None
    chat_key_on_loadgen: Path | None = None


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


def stage_chat_key(host: Host, key: Path, run_id: str) -> Path:
    """Copy the run's key to ``host`` (same file on this machine), readable by its owner only."""
    on_host = Path(host.workdir(f"keys/{run_id}", local=key.parent)) / key.name
    host.put(key, on_host)
    host.run(["chmod", "600", str(on_host)])
    return on_host


# Creates the chat log on the host; as root it belongs to CHAT_USER_AS_ROOT, because the
# per-client processes open it after the server drops to that user. Prints the user.
_PREPARE_CHAT_LOG = (
    'touch "$1" && chmod 644 "$1" && if [ "$(id -u)" = 0 ]; then chown "$2" "$1" && '
    'echo "$2"; else id -un; fi'
)


def chat_server_values(cell: Cell, host: Host, server_dir: Path) -> dict[str, Any]:
    """Placeholders of a chat server's command line; the log lives in the cell (it is data)."""
    log_file = server_dir / "chat.log"
    user = host.run(["sh", "-c", _PREPARE_CHAT_LOG, "papaya", str(log_file),
                     CHAT_USER_AS_ROOT], timeout=30).stdout.strip()
    return {"key_file": "", "log_file": log_file, "history": cell.factors["history"],
            "user": user}


def tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# Binds the port on the server host the way the servers do, to tell a taken port early.
_PORT_CHECK = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "try:\n    s.bind(('0.0.0.0', int(sys.argv[1])))\n"
    "except OSError as e:\n    print(e.strerror); sys.exit(1)\n"
)


def check_port_free(host: Host, port: int) -> None:
    result = host.run([host.python, "-c", _PORT_CHECK, str(port)], check=False, timeout=30)
    if result.returncode != 0:
        raise RunAborted(
            f"port {port} is in use on {host.name} ({result.stdout.strip() or result.stderr}): "
            f"stop whatever listens there (ss -ltnp 'sport = :{port}') or set experiment.port "
            "in the config")


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


def check_tracer_runs(host: Host) -> None:
    """The tracer needs python3 with psutil on the server host; say so before building."""
    result = host.run([host.python, "-c", "import psutil"], check=False, timeout=60)
    if result.returncode != 0:
        raise RunAborted(
            f"{host.name}: {host.python} cannot import psutil, which the tracer needs "
            f"({_last_line(result.stderr or result.stdout)}): "
            "run `invoke provision --bootstrap` for that provider, or install python3-psutil")


def stage_tracer(host: Host) -> Path:
    """The tracer script on ``host`` (this machine: the script itself)."""
    on_host = Path(host.workdir("tools", local=TRACER_SCRIPT.parent)) / TRACER_SCRIPT.name
    host.put(TRACER_SCRIPT, on_host)
    return on_host


def fetch(host: Host, host_dir: Path, names: list[str], local_dir: Path) -> None:
    """Bring files a host wrote back into the cell (a no-op on this machine)."""
    for name in names:
        try:
            host.get(host_dir / name, local_dir / name)
        except (HostError, OSError):
            pass  # a missing file is judged by whoever reads it


def loadgen_argv(context: CellContext, cell: Cell) -> list[str]:
    config = context.config
    target = f"{context.lab.target_address}:{config.port}"
    if cell.factors["workload"] == WORKLOAD_CHAT:
        assert context.chat_key_on_loadgen is not None
        return loadgens.chat_command(
            context.build.loadgen_binary, target, cell.connections, config.load_duration_s,
            cell.factors["message_rate"], context.chat_key_on_loadgen,
            cell.factors["message_size"],
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
    descriptor = context.servers[cell.server]
    run_id = context.run_dir.run_id
    cgroup: Cgroup | None = None
    started: list[Process] = []
    server_dir = work
    try:
        check_port_free(lab.server, config.port)
        cgroup = lab.server.create_cgroup(f"{run_id}.{cell.id}", placement.server_cpus)
        server_dir = Path(lab.server.workdir(f"cells/{run_id}/{cell.id}", local=work))
        values: dict[str, Any] = {}
        if cell.factors["workload"] == WORKLOAD_CHAT:
            values = (chat_server_values(cell, lab.server, server_dir)
                      | {"key_file": context.chat_key_on_server})
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
            return _finish(context, cell, work, status, started, cgroup, server_dir)

        tracer_script = stage_tracer(lab.server)
        t0 = time.time() + TRACER_STARTUP_S
        tracer_argv = [
            lab.server.python, str(tracer_script), "--pid", str(server.pid),
            "--out", str(server_dir / "trace.csv"), "--summary", str(server_dir / "tracer.json"),
            "--interval", str(config.sample_interval_s), "--duration", str(config.load_duration_s),
            "--warmup", str(config.warmup_s), "--t0", f"{t0 + lab.server.clock_offset_s:.6f}",
        ]
        if cgroup is not None:
            tracer_argv += ["--cgroup-dir", str(cgroup.cpu_dir), "--cgroup-kind", cgroup.kind]
        # The tracer lives on the server host; the load generator's CPUs are only its own
        # when both share a host (a lab host's cpuset refuses any other CPU).
        tracer_cpus = placement.aux_cpus if lab.server is lab.loadgen else None
        status["tracer_cpus"] = tracer_cpus
        tracer = lab.server.start(tracer_argv, cpus=tracer_cpus, stderr=work / "tracer.stderr")
        started.append(tracer)
        time.sleep(max(0.0, t0 - time.time()))
        loadgen = lab.loadgen.start(loadgen_argv(context, cell), cpus=placement.aux_cpus,
                                    stdout=work / "loadgen.out", stderr=work / "loadgen.stderr")
        started.append(loadgen)

        deadline = time.monotonic() + config.load_duration_s + 30
        loadgen_code = _wait(loadgen, deadline)
        tracer_code = _wait(tracer, deadline)
        fetch(lab.server, server_dir, ["trace.csv", "tracer.json"], work)
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
        return _finish(context, cell, work, status, started, cgroup, server_dir)
    except HostError as error:
        # A dropped SSH connection (or a host that stopped answering) fails this cell only.
        status["reason"] = f"host error: {error}"
        return _finish(context, cell, work, status, started, cgroup, server_dir)
    except BaseException:
        _stop_all(started, cgroup)
        raise


def _wait(process: Process, deadline: float) -> int | None:
    try:
        return process.wait(max(0.1, deadline - time.monotonic()))
    except (subprocess.TimeoutExpired, TimeoutError):  # the caller reports the missing code
        return None


def _stop_all(started: list[Process], cgroup: Cgroup | None) -> list[int | None]:
    codes = [process.stop() for process in reversed(started)]
    if cgroup is not None:
        cgroup.remove()
    return codes


def _finish(context: CellContext, cell: Cell, work: Path, status: dict[str, Any],
            started: list[Process], cgroup: Cgroup | None, server_dir: Path
            ) -> tuple[Path, dict[str, Any]]:
    try:
        server_was_running = bool(started) and started[0].poll() is None
    except HostError:
        server_was_running = False
    codes = _stop_all(started, cgroup)
    if cell.factors["workload"] == WORKLOAD_CHAT:
        fetch(context.lab.server, server_dir, ["chat.log"], work)
    try:
        if server_dir != work:  # a remote host: its copy of the cell is no longer needed
            context.lab.server.run(["rm", "-rf", str(server_dir)], check=False, timeout=60)
    except HostError:
        pass
    status["server"].update(
        exit_code=codes[-1] if started else None,
        stopped_by_runner=server_was_running,
        stderr_tail=tail(work / "server.stderr"),
    )
    status["ended_at"] = now_iso()
    return context.run_dir.commit_cell(work, cell.id, status), status
