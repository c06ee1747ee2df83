"""Invoke tasks: the entry points. Each delegates to infra/, experiments/ or analysis/.

    invoke provision run-experiment report      # the whole pipeline on this machine
    invoke --help run-experiment                # options of one task
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Exit, task
from rich.console import Console
from rich.table import Table

console = Console()

# data/, build/ and paper/ are relative to the project root wherever invoke is called from;
# tests point PAPAYA_WORKDIR elsewhere to keep their runs out of the project's data/.
CALLER_DIR = os.getcwd()  # where invoke was called from (`invoke chat` resolves paths there)
os.chdir(os.environ.get("PAPAYA_WORKDIR", Path(__file__).resolve().parent))

COMMON_HELP = {
    "provider": "where to run: local (this machine; the default)",
    "config": "a profile name in experiments/configs/ (quick, paper) or a TOML file path",
    "resume": "continue the run RUN_ID: keep its completed cells, redo the rest",
    "dry_run": "print the plan (hosts, cells in order, estimated duration) and exit",
}


def _known_errors() -> tuple[type[BaseException], ...]:
    from analysis.errors import AnalysisError
    from experiments.build import BuildError
    from experiments.cell_run import RunAborted
    from experiments.config import ConfigError
    from experiments.rawdata import RunDirError
    from experiments.server_registry import DescriptorError
    from infra.hosts import HostError
    from infra.providers import ProviderError

    return (AnalysisError, BuildError, RunAborted, ConfigError, RunDirError, DescriptorError,
            HostError, ProviderError)


def _clear_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Known failures end as one line naming the problem, not a traceback."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except KeyboardInterrupt as error:
            raise Exit("interrupted", code=130) from error
        except Exception as error:
            if isinstance(error, _known_errors()):
                raise Exit(f"error: {error}", code=1) from error
            raise

    return wrapper


@task(help=COMMON_HELP)
@_clear_errors
def provision(c, provider="local", config="quick", resume=None, dry_run=False):
    """Check and record what the hosts have (OS, kernel, CPU, memory, cc and Go versions)."""
    from infra.providers import get_provider

    chosen = get_provider(provider)
    if dry_run:
        hosts = ", ".join(chosen.lab().facts)
        console.print(f"provision --dry-run: would check and record the facts of {provider} "
                      f"host(s) {hosts}; nothing is built or changed")
        return
    state = chosen.provision()
    for name, host in state["hosts"].items():
        table = Table(title=f"{provider} host {name} ({', '.join(host['roles'])})")
        table.add_column("fact")
        table.add_column("value")
        for key, value in host["facts"].items():
            table.add_row(key, str(value))
        console.print(table)
        for tool in ("cc", "go", "make"):
            if not host["facts"].get(tool):
                console.print(f"[yellow]warning:[/yellow] {name} has no {tool}; "
                              "`invoke build` will say how to install it")


@task(help=COMMON_HELP)
@_clear_errors
def build(c, provider="local", config="quick", resume=None, dry_run=False):
    """Build the servers under test and the load generator on the hosts."""
    from experiments.build import build_all
    from experiments.runner import plan_run
    from experiments.server_registry import discover_servers
    from infra.providers import get_provider

    plan = plan_run(config, resume)
    servers = discover_servers()
    lab = get_provider(provider).lab()
    needed = dict.fromkeys(cell.server for cell in plan.cells)
    result = build_all(lab.server, [servers[name] for name in needed])
    for name, binary in result.server_binaries.items():
        console.print(f"{name}: {binary}")
    console.print(f"load generator: {result.loadgen_binary}")
    for tool, version in result.tools.items():
        console.print(f"  {tool}: {version}")


@task(help=COMMON_HELP)
@_clear_errors
def run_experiment(c, provider="local", config="quick", resume=None, dry_run=False):
    """Build, start each server, drive the load, trace CPU; write data/raw/<run-id>/."""
    from experiments.runner import dry_run as show_plan
    from experiments.runner import run_experiment as run

    if dry_run:
        show_plan(provider, config, resume, console=console)
        return
    run(provider, config, resume, console=console)


@task(help={**COMMON_HELP, "run_id": "the run to report on (default: the newest)",
            "no_pdf": "skip the LaTeX build (the HTML report is still written)"})
@_clear_errors
def report(c, provider="local", config="quick", resume=None, dry_run=False, run_id=None,
           no_pdf=False):
    """Statistics, figures, the HTML report and the paper PDF from data/raw/<run-id>/."""
    from analysis.report import build_report

    outputs = build_report(run_id, build_pdf=not no_pdf)
    console.print(outputs.describe())


@task(help=COMMON_HELP)
@_clear_errors
def status(c, provider="local", config="quick", resume=None, dry_run=False):
    """List the provider's hosts and the runs under data/raw."""
    from experiments.status import print_status

    print_status(provider, console)


@task(help=COMMON_HELP)
@_clear_errors
def destroy(c, provider="local", config="quick", resume=None, dry_run=False):
    """Tear down what provision made (local: recorded facts, leftover cgroups); data stays."""
    from infra.providers import get_provider

    removed = get_provider(provider).destroy()
    console.print("removed: " + (", ".join(removed) if removed else "nothing to remove"))


@task(help={
    "host": "chat server host (default: client.toml's host, else 127.0.0.1)",
    "port": "chat server port (default: client.toml's port)",
    "user": "your name in the chat (default: client.toml's username, else your login)",
    "key_file": "the shared key file, mode 600 (default: ~/.config/papaya/chat.key)",
    "config": "client settings file (default: ~/.config/papaya/client.toml)",
    "send": "send this one message and exit instead of opening the chat window",
})
def chat(c, host=None, port=None, user=None, key_file=None, config=None, send=None):
    """Open the chat client (papaya-chat): messages above, input below, /quit or Ctrl-D leaves."""
    from experiments.chat.client.__main__ import main

    argv = []
    for option, value in (("--host", host), ("--port", port), ("--user", user),
                          ("--key-file", key_file), ("--config", config), ("--send", send)):
        if value is not None:
            if option in ("--key-file", "--config"):
                value = os.path.join(CALLER_DIR, os.path.expanduser(str(value)))
            argv += [option, str(value)]
    code = main(argv)
    if code:
        raise Exit(code=code)


@task(
    iterable=["file"],
    help={
        "file": "a top batch log (FreeBSD `top -CIbtu -s 0.5` or procps `top -b -d 0.5`); "
                "repeat --file per log, each becomes one repetition",
        "server": "the server the logs measured (c-fork, go-goroutine, ...); required",
        "connections": "client connections during the logs; required, >= 1",
        "cpus": "CPUs the server had; required, >= 1",
        "run_id": "append to this imported run (never to a measured one); default: a new run",
        "command": "COMMAND name of the server's rows in top (default: the server's binary "
                   "name); the original study's binary was server.bin, so usually needed",
        "paper_compatible": "record the original cleaning rule: the analysis drops screens "
                            "without the server (default: such a screen is a 0% sample)",
        "interval": "seconds between screens (top's -s / -d)",
        "warmup": "seconds at the start flagged as warm-up (left out of the statistics)",
    },
)
@_clear_errors
def import_top(c, file=None, server=None, connections=0, cpus=0, run_id=None, command=None,
               paper_compatible=False, interval=0.5, warmup=0.0):
    """Turn legacy `top` logs into cells of an imported run under data/raw/ (all or nothing)."""
    from experiments.importers import TopImportError
    from experiments.importers import import_top as run_import

    try:
        result = run_import(list(file or []), server=server or "", connections=connections,
                            cpus=cpus, run_id=run_id, command=command,
                            paper_compatible=paper_compatible, interval_s=interval,
                            warmup_s=warmup, base_dirs=[Path(CALLER_DIR)])
    except TopImportError as error:
        raise Exit(str(error), code=1) from error
    console.print(result.describe(), markup=False, highlight=False, soft_wrap=True)
