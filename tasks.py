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
    "provider": "where to run: local (this machine; the default), lab (hosts in network "
                "namespaces on this machine, as root), ssh (the hosts of --inventory)",
    "inventory": "the ssh provider's inventory TOML (default: inventory.toml)",
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


def _config_path(config: str) -> Path:
    from experiments.config import resolve_config_path

    # A file path is relative to where invoke was called; a profile name is looked up.
    candidate = Path(CALLER_DIR, config)
    return resolve_config_path(candidate if candidate.is_file() else config)


def _provider(name: str, config: str, inventory: str | None) -> Any:
    """The provider, given the config (lab hosts come from it) and the inventory (ssh)."""
    from infra.providers import get_provider

    return get_provider(name, config=_config_path(config),
                        inventory=Path(CALLER_DIR, inventory) if inventory else None)


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


@task(help={**COMMON_HELP,
            "bootstrap": "ssh and cloud providers: install python3 with psutil, a C compiler "
                         "and make with the host's package manager, and create the service "
                         "user",
            "dry_run": "print what would be made (cloud: the priced plan) and exit",
            "yes": "cloud provider: create the VMs without asking for confirmation"})
@_clear_errors
def provision(c, provider="local", config="quick", resume=None, dry_run=False, inventory=None,
              bootstrap=False, yes=False):
    """Make the hosts ready and record their facts (OS, kernel, arch, CPU, memory, compilers)."""
    chosen = _provider(provider, config, inventory)
    if provider == "cloud":
        # The cloud provider prints its priced plan, and asks before spending money.
        state = chosen.provision(bootstrap=bootstrap, dry_run=dry_run, yes=yes)
        if dry_run or not state:
            return
    elif dry_run:
        console.print(f"provision --dry-run: would make the {provider} hosts ready and record "
                      "their facts; nothing is changed")
        return
    elif yes:
        raise Exit("error: --yes is for the cloud provider", code=1)
    else:
        state = chosen.provision(bootstrap=bootstrap)
    for name, host in state["hosts"].items():
        table = Table(title=f"{provider} host {name} ({', '.join(host['roles'])})")
        table.add_column("fact")
        table.add_column("value")
        for key, value in host["facts"].items():
            table.add_row(key, str(value))
        console.print(table)
        for tool in ("cc", "make") if "server" in host["roles"] else ():
            if not host["facts"].get(tool):
                console.print(f"[yellow]warning:[/yellow] {name} has no {tool}; "
                              "`invoke build` will say how to install it")


@task(help=COMMON_HELP)
@_clear_errors
def build(c, provider="local", config="quick", resume=None, dry_run=False, inventory=None):
    """Build the servers on the server host and the load generator for the loadgen host."""
    from experiments.build import build_all
    from experiments.runner import plan_run
    from experiments.server_registry import discover_servers

    plan = plan_run(config, resume)
    servers = discover_servers()
    lab = _provider(provider, config, inventory).lab()
    needed = dict.fromkeys(cell.server for cell in plan.cells)
    try:
        result = build_all(lab.server, [servers[name] for name in needed],
                           loadgen_host=lab.loadgen)
    finally:
        lab.server.close()
        lab.loadgen.close()
    for name, binary in result.server_binaries.items():
        console.print(f"{name}: {lab.server.name}:{binary}")
    console.print(f"load generator: {lab.loadgen.name}:{result.loadgen_binary}")
    for tool, version in result.tools.items():
        console.print(f"  {tool}: {version}")


@task(help={**COMMON_HELP,
            "teardown": "cloud provider: destroy the VMs when the run ends, also when it "
                        "fails or is interrupted",
            "keep": "with --teardown: keep the VMs after all (e.g. to look at a failure)"})
@_clear_errors
def run_experiment(c, provider="local", config="quick", resume=None, dry_run=False,
                   inventory=None, teardown=False, keep=False):
    """Build, start each server, drive the load, trace CPU; write data/raw/<run-id>/."""
    from experiments.runner import dry_run as show_plan
    from experiments.runner import run_experiment as run

    where = Path(CALLER_DIR, inventory) if inventory else None
    if dry_run:
        show_plan(provider, config, resume, console=console, inventory=where)
        return
    run(provider, config, resume, console=console, inventory=where,
        teardown=teardown and not keep)


@task(help={**{k: v for k, v in COMMON_HELP.items() if k != "inventory"},
            "run_id": "the run to report on (default: the newest)",
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
def status(c, provider="local", config="quick", resume=None, dry_run=False, inventory=None):
    """List the provider's hosts (and whether they answer) and the runs under data/raw."""
    from experiments.status import print_status

    print_status(_provider(provider, config, inventory), console)


@task(help={**COMMON_HELP,
            "expired": "cloud provider: delete only labs past their time-to-live",
            "orphans": "cloud provider: also delete papaya-tagged VMs and keys that no state "
                       "file knows"})
@_clear_errors
def destroy(c, provider="local", config="quick", resume=None, dry_run=False, inventory=None,
            expired=False, orphans=False):
    """Tear down what provision made (lab: every namespace, process, mount; cloud: every VM
    and key, confirmed through the API); data stays."""
    chosen = _provider(provider, config, inventory)
    if provider == "cloud":
        removed = chosen.destroy(expired=expired, orphans=orphans)
    elif expired or orphans:
        raise Exit("error: --expired and --orphans are for the cloud provider", code=1)
    else:
        removed = chosen.destroy()
    console.print("removed: " + (", ".join(removed) if removed else "nothing to remove"))


@task(help={**COMMON_HELP,
            "provider": "hosts besides this machine: lab, ssh, or all (every provider "
                        "with provisioned hosts; the default)"})
@_clear_errors
def portability(c, provider="all", config="quick", resume=None, dry_run=False,
                inventory=None):
    """RQ3: native and cross builds plus smoke, conformance and regression tests per host.

    Writes data/portability/<run-id>/matrix.json; `invoke report` turns it into the RQ3 table.
    """
    from experiments.portability import run_portability
    from infra.providers import portability_hosts

    entries = portability_hosts(provider, config=_config_path(config),
                                inventory=Path(CALLER_DIR, inventory) if inventory else None)
    if dry_run:
        for entry in entries:
            console.print(f"host {entry.name} ({', '.join(entry.roles)}): {entry.address}")
        return
    try:
        run_dir = run_portability(entries, console=console)
    finally:
        for entry in entries:
            entry.host.close()
    console.print(f"portability matrix: {run_dir / 'matrix.json'}")


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
