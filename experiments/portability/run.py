"""``invoke portability``: the RQ3 matrix, from native builds on every server host to the
regression checks, into ``data/portability/<run-id>/matrix.json``.

Per server host (this machine always included): upload the C sources, build every C server
with every compiler × mode × make the host has, then run on the host's own binaries (the
strict-mode build; Go servers cross-compiled here for its OS and arch) the sink smoke test,
the chat conformance suite and the regressions. Here: Zig cross builds of every C server, Go
cross builds of every Go program, and the 32-bit checks on the x86-linux-gnu and linux/386
binaries. A host that fails is recorded with the step and the run goes on.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from experiments.portability import builds, checks, i386, toolchains
from experiments.portability.matrix import NOT_APPLICABLE, Matrix, Row, TestResult
from experiments.portability.signal_check import _NOISE, check_sources
from experiments.server_registry import ServerDescriptor, discover_servers
from infra.facts import parse_os_release
from infra.hosts import Host, HostError, LocalHost

PARTS = ("native", "zig", "go", "smoke", "conformance", "regressions")
REGRESSIONS = ("v6only", "sigchld", "sigusr1", "biglog")
Remote = Path | PurePosixPath


@dataclass
class HostPlan:
    """One host of the matrix: who it is, what it has, where it works."""

    name: str
    host: Host
    facts: dict[str, Any]
    roles: list[str]
    compilers: list[toolchains.Tool] = field(default_factory=list)
    makes: list[toolchains.Tool] = field(default_factory=list)
    work: Remote | None = None
    local_work: Path | None = None  # a temporary folder to remove (this machine only)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.facts.get('os_release') or self.facts.get('os', '?')}, " \
               f"{self.facts.get('arch', '?')})"


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def _facts(entry: Any) -> dict[str, Any]:
    facts = dict(entry.facts or {})
    if isinstance(entry.host, LocalHost):
        uname = os.uname()
        facts.setdefault("os", uname.sysname)
        facts.setdefault("arch", uname.machine)
        facts.setdefault("is_root", os.geteuid() == 0)
        if "os_release" not in facts and Path("/etc/os-release").is_file():
            release = parse_os_release(Path("/etc/os-release").read_text())
            facts["os_release"] = release.get("PRETTY_NAME", uname.sysname)
            facts.setdefault("os_id", release.get("ID"))
            facts.setdefault("os_version_id", release.get("VERSION_ID"))
    return facts


def _work_dir(plan: HostPlan, run_id: str) -> Remote:
    scratch = getattr(plan.host, "scratch", None)
    if scratch is None:  # this machine, before LocalHost has a scratch folder
        plan.local_work = Path(tempfile.mkdtemp(prefix=f"papaya-portability-{run_id}-"))
        return plan.local_work
    work = scratch / "portability" / run_id
    plan.host.run(["mkdir", "-p", str(work)], timeout=60)
    return work


def uses_sigusr1(server: ServerDescriptor) -> bool:
    """Whether the server's code (comments aside) mentions SIGUSR1: then it must survive a
    storm of it; otherwise the default action (termination) is right."""
    for path in sorted(server.source_dir.glob("*.[ch]")):
        if "SIGUSR1" in _NOISE.sub(" ", path.read_text(errors="replace")):
            return True
    return False


def server_spec(server: ServerDescriptor, binary: str, prefix: Sequence[str] = ()) -> dict:
    """How hostcheck.py starts ``server``: sink argv are complete (port 0); chat argv are
    templates it fills ({port}, {key_file}, {log_file}, {history}, {user})."""
    if server.workload == "chat":
        argv = [*prefix, binary, *server.run_args]
        return {"name": server.name, "workload": "chat", "argv": argv,
                "ipv6_argv": [*argv, "--ipv6"], "uses_sigusr1": uses_sigusr1(server)}
    argv = [*prefix, binary, *(a.format(port=0) for a in server.run_args)]
    return {"name": server.name, "workload": server.workload, "argv": argv,
            "uses_sigusr1": uses_sigusr1(server)}


class PortabilityRun:
    def __init__(self, run_dir: Path, console: Console, parts: Collection[str],
                 conformance_files: tuple[str, ...], conformance_select: str | None,
                 storm: int) -> None:
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.console = console
        self.parts = set(parts)
        self.conformance_files = conformance_files
        self.conformance_select = conformance_select
        self.storm = storm
        self.servers = list(discover_servers().values())
        self.c_servers = [s for s in self.servers if builds.is_make_built(s)]
        self.go_servers = [s for s in self.servers if s.language == "go"]
        self.go_binaries: dict[tuple[str, str], dict[str, Path]] = {}
        self.go_rows: dict[tuple[str, str], dict[str, Row]] = {}
        self.matrix = Matrix(run_dir.name, datetime.now(UTC).isoformat(timespec="seconds"))
        self.local = LocalHost()
        self.gnu_make_here = next((m for m in toolchains.makes(self.local) if m.kind == "gnu"),
                                  None)
        self.progress: Progress | None = None
        self.task: Any = None

    # ------------------------------------------------------------------ progress

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=text)

    def step(self, text: str, n: int = 1) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=text, advance=n)

    # ------------------------------------------------------------------ Go builds here

    def go_build(self, goos: str, goarch: str) -> dict[str, Row]:
        """Every Go program for (goos, goarch), once per run."""
        key = (goos, goarch)
        if key not in self.go_rows:
            out = self.run_dir / "bin" / f"{goos}-{goarch}"
            rows, binaries = {}, {}
            for name, source, argv, binary in builds.go_programs(self.servers, out):
                self.step(f"go build {goos}/{goarch}: {name}")
                rows[name] = builds.go_build(self.local, name, source, argv, binary, goos,
                                             goarch, self.logs)
                binaries[name] = binary
            self.go_rows[key], self.go_binaries[key] = rows, binaries
            self.matrix.rows += rows.values()
        return self.go_rows[key]

    # ------------------------------------------------------------------ one host

    def plan_host(self, entry: Any) -> HostPlan:
        plan = HostPlan(entry.name, entry.host, _facts(entry), list(entry.roles or []))
        plan.compilers = toolchains.compilers(plan.host)
        plan.makes = toolchains.makes(plan.host)
        return plan

    def run_host(self, plan: HostPlan) -> None:
        record: dict[str, Any] = {"name": plan.name, "roles": plan.roles, "facts": plan.facts,
                                  "compilers": [vars(c) for c in plan.compilers],
                                  "makes": [vars(m) for m in plan.makes], "notes": []}
        self.matrix.hosts.append(record)
        step = "preparing the work folder"
        try:
            plan.work = _work_dir(plan, self.run_dir.name)
            step = "uploading sources"
            sources = self.upload_sources(plan)
            rows: list[Row] = []
            if "native" in self.parts:
                step = "native builds"
                if not plan.compilers or not plan.makes:
                    record["notes"].append("no C compiler or no make: no native builds")
                rows = builds.native_rows(plan.name, plan.host, plan.facts, self.c_servers,
                                          sources, plan.work, plan.compilers, plan.makes,
                                          self.logs, jobs=2, say=self.step)
                self.matrix.rows += rows
            step = "checks"
            self.run_host_checks(plan, rows, record)
        except HostError as error:
            record["notes"].append(f"{plan.name}: {step} failed: {error}")
            self.console.print(f"[red]{plan.name}: {step} failed:[/red] {error}")
        finally:
            self.clean_host(plan)

    def upload_sources(self, plan: HostPlan) -> dict[str, Remote]:
        assert plan.work is not None
        sources: dict[str, Remote] = {}
        for server in self.c_servers:
            target = plan.work / "src" / server.name
            plan.host.put_tree(server.source_dir, target)  # type: ignore[arg-type]
            sources[server.name] = target
        plan.host.put(checks.HOSTCHECK, plan.work / "hostcheck.py")  # type: ignore[arg-type]
        return sources

    def clean_host(self, plan: HostPlan) -> None:
        if plan.local_work is not None:
            shutil.rmtree(plan.local_work, ignore_errors=True)
        elif plan.work is not None:
            try:
                plan.host.run(["rm", "-rf", str(plan.work)], check=False, timeout=300)
            except HostError as error:
                self.console.print(f"[yellow]{plan.name}: could not remove {plan.work}: "
                                   f"{error}[/yellow]")

    def deployed_go(self, plan: HostPlan) -> tuple[dict[str, Row], dict[str, Remote]]:
        """The Go servers cross-compiled here for the host, uploaded; rows to attach tests to."""
        target = toolchains.go_target(str(plan.facts.get("os", "")),
                                      str(plan.facts.get("arch", "")))
        if target is None or not self.go_servers:
            return {}, {}
        cross = self.go_build(*target)
        assert plan.work is not None
        rows, paths = {}, {}
        for server in self.go_servers:
            built = cross[server.name]
            row = Row("deployed-go", built.target, plan.name, str(plan.facts.get("os", "?")),
                      str(plan.facts.get("arch", "?")), server.name, "go", "go",
                      built.compiler_version, NOT_APPLICABLE, NOT_APPLICABLE, NOT_APPLICABLE,
                      builds=built.builds, log=built.log, binary=built.binary,
                      notes=[f"cross-compiled here for {built.target}, run on {plan.name}"])
            self.matrix.rows.append(row)
            rows[server.name] = row
            if built.builds:
                remote = plan.work / "go" / server.name
                plan.host.run(["mkdir", "-p", str(plan.work / "go")], timeout=60)
                plan.host.put(self.go_binaries[target][server.name], remote)  # type: ignore
                plan.host.run(["chmod", "755", str(remote)], timeout=60)
                paths[server.name] = remote
        return rows, paths

    def run_host_checks(self, plan: HostPlan, rows: list[Row], record: dict[str, Any]) -> None:
        assert plan.work is not None
        binaries: dict[str, tuple[Row, Remote]] = {}
        for server in self.c_servers:
            ref = builds.reference_row(rows, server.name)
            if ref is not None and ref.binary:
                binaries[server.name] = (ref, PurePosixPath(ref.binary["path"]))
            elif "native" in self.parts:
                record["notes"].append(f"{server.name}: no strict-mode build: not tested")
        go_rows, go_paths = self.deployed_go(plan)
        for name, path in go_paths.items():
            binaries[name] = (go_rows[name], path)
        by_name = {s.name: s for s in self.servers}

        def spec_for(names: list[str]) -> list[dict]:
            return [server_spec(by_name[n], str(binaries[n][1])) for n in names
                    if n in binaries]

        def attach(results: list[TestResult], specs: list[dict]) -> None:
            for result, spec in zip(results, specs, strict=False):
                binaries[spec["name"]][0].tests.append(result)

        def hostcheck(check: str, names: list[str], prefix: list[str] | None = None,
                      **extra: Any) -> None:
            specs = spec_for(names)
            if not specs:
                return
            self.step(f"{plan.name}: {check}")
            spec = {"check": check, "servers": specs, **extra}
            results = checks.run_hostcheck(
                plan.host, plan.work / "hostcheck.py",  # type: ignore[operator]
                plan.work / f"{check}.json",  # type: ignore[operator]
                spec, self.logs / plan.name / f"{check}.spec.json", prefix)
            attach(results, specs)

        sink = [s.name for s in self.servers if s.workload == "sink"]
        chat = [s.name for s in self.servers if s.workload == "chat"]
        c_names = [s.name for s in self.c_servers]
        if "smoke" in self.parts:
            hostcheck("smoke", sink)
        if "conformance" in self.parts:
            self.conformance(plan, binaries, chat)
        if "regressions" not in self.parts:
            return
        wrapper, why = checks.v6only_wrapper(plan.host, plan.facts,
                                             f"{self.run_dir.name[-4:]}{secrets.token_hex(2)}")
        if wrapper is None:
            for name in sink + chat:
                if name in binaries:
                    binaries[name][0].tests.append(checks.skipped("v6only", why, plan.name))
        else:
            try:
                hostcheck("v6only", sink + chat, wrapper.prefix, how=wrapper.how)
            finally:
                wrapper.cleanup()
        hostcheck("sigchld", c_names, connections=self.storm)
        hostcheck("sigusr1", c_names, signals=self.storm)
        if plan.facts.get("long_bit") == 32 or plan.facts.get("arch") in ("i386", "i686"):
            hostcheck("biglog", chat)

    def conformance(self, plan: HostPlan, binaries: dict[str, tuple[Row, Remote]],
                    chat: list[str]) -> None:
        by_language = {}
        for name in chat:
            server = next(s for s in self.servers if s.name == name)
            if name in binaries:
                by_language[server.language] = name
        if not by_language:
            return
        self.step(f"{plan.name}: chat conformance suite")
        assert plan.work is not None
        stage = checks.stage_suite()
        try:
            suite = plan.work / "suite"
            plan.host.put_tree(stage, suite)  # type: ignore[arg-type]
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        results = checks.run_conformance(
            plan.host, suite, {lang: binaries[n][1] for lang, n in by_language.items()},
            self.logs / plan.name / "conformance-junit.xml", self.conformance_files,
            self.conformance_select)
        for lang, name in by_language.items():
            binaries[name][0].tests.append(results[lang])

    # ------------------------------------------------------------------ here only

    def cross(self) -> None:
        if "zig" in self.parts:
            if self.gnu_make_here is None:
                self.matrix.notes.append("no GNU make here: no Zig cross builds")
            else:
                work = self.run_dir / "bin" / "zig"
                self.matrix.rows += builds.zig_rows(self.local, self.c_servers, work, self.logs,
                                                    self.gnu_make_here, 2, self.step)
        if "go" in self.parts:
            for goos, goarch in builds.GO_TARGETS:
                self.go_build(goos, goarch)

    def local_32bit(self) -> None:
        """The 32-bit checks here: zig's x86-linux-gnu C servers (through an i386 C library)
        and the linux/386 Go servers (static; the kernel runs them as they are)."""
        if "regressions" not in self.parts and "smoke" not in self.parts:
            return
        by_name = {s.name: s for s in self.servers}
        targets: list[tuple[Row, ServerDescriptor, list[str]]] = []
        runtime, why = i386.find_runtime()
        for row in self.matrix.rows:
            if row.kind == "cross-zig" and row.target == "x86-linux-gnu" and row.builds:
                if runtime is None:
                    row.notes.append(f"not run here: {why}")
                    continue
                row.notes.append(f"run here through the i386 C library ({runtime.source})")
                targets.append((row, by_name[row.server], runtime.prefix))
            elif row.kind == "cross-go" and row.target == "linux/386" and row.builds \
                    and row.server in by_name:
                targets.append((row, by_name[row.server], []))
        workdir = Path(tempfile.mkdtemp(prefix="papaya-portability-32-"))
        try:
            script = workdir / "hostcheck.py"
            shutil.copy2(checks.HOSTCHECK, script)
            for check in ("smoke", "sigchld", "sigusr1", "biglog"):
                if check == "smoke" and "smoke" not in self.parts or \
                        check != "smoke" and "regressions" not in self.parts:
                    continue
                for row, server, prefix in targets:
                    wanted = {"smoke": server.workload == "sink",
                              "sigchld": server.language == "c",
                              "sigusr1": server.language == "c",
                              "biglog": server.workload == "chat"}[check]
                    if not wanted or not row.binary:
                        continue
                    self.step(f"32-bit here ({row.target}): {check} {server.name}")
                    spec = {"check": check, "connections": self.storm, "signals": self.storm,
                            "servers": [server_spec(server, row.binary["path"], prefix)]}
                    row.tests += checks.run_hostcheck(
                        self.local, script, workdir / f"{check}-{server.name}.json", spec,
                        self.logs / "local-32bit" / f"{check}-{server.name}.spec.json")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def run_portability(hosts: list[Any], *, out_root: Path = Path("data/portability"),
                    console: Console, parts: Collection[str] = PARTS,
                    conformance_files: tuple[str, ...] = checks.CONFORMANCE_FILES,
                    conformance_select: str | None = None, storm: int = 1000) -> Path:
    """Build and check everything; returns ``out_root/<run-id>`` holding matrix.json and logs.

    ``hosts``: HostEntry-like objects (name, roles, host, facts); the server hosts and this
    machine are built on and tested, others are listed only. ``parts`` (a subset of PARTS),
    ``conformance_*`` and ``storm`` (connections and signals of the storms) narrow the run for
    tests; the defaults are the full matrix.
    """
    started = time.monotonic()
    # Absolute: builds run with the sources' folder as their working directory.
    run_dir = out_root.resolve() / new_run_id()
    (run_dir / "logs").mkdir(parents=True)
    run = PortabilityRun(run_dir, console, parts, conformance_files, conformance_select, storm)
    matrix = run.matrix
    sources = [s.source_dir for s in run.c_servers]
    root = checks.REPO_ROOT
    matrix.checks["no_signal_calls"] = check_sources(sources, root).as_dict()
    plans = []
    for entry in hosts:
        if isinstance(entry.host, LocalHost) or "server" in (entry.roles or []):
            try:
                plans.append(run.plan_host(entry))
            except HostError as error:
                matrix.hosts.append({"name": entry.name, "roles": entry.roles,
                                     "facts": entry.facts, "notes": [
                                         f"{entry.name}: probing compilers failed: {error}"]})
        else:
            matrix.hosts.append({"name": entry.name, "roles": entry.roles, "facts": entry.facts,
                                 "notes": ["not a server host: nothing built or run"]})
    local_cc = toolchains.compilers(run.local)
    matrix.tools = {
        "zig": builds.zig_version(run.local) if "zig" in run.parts else None,
        "go": builds.go_version(run.local) if run.parts & {"go", "smoke", "conformance"}
        else None,
        "make_here": run.gnu_make_here.version if run.gnu_make_here else None,
        "cc_here": [c.version for c in local_cc],
    }
    total = _planned_steps(run, plans)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        run.progress = progress
        run.task = progress.add_task("portability", total=total)
        for plan in plans:
            console.log(f"portability: {plan.label}: {len(plan.compilers)} compiler(s), "
                        f"{len(plan.makes)} make(s)")
            run.run_host(plan)
        run.cross()
        run.local_32bit()
        progress.update(run.task, completed=total, description="portability: done")
    matrix.duration_s = time.monotonic() - started
    for row in matrix.rows:  # paths inside the run folder are kept relative to it
        if row.log.startswith(str(run_dir)):
            row.log = str(Path(row.log).relative_to(run_dir))
    # The cross-compiled binaries are recorded (ELF header); not kept, they are large.
    shutil.rmtree(run_dir / "bin", ignore_errors=True)
    matrix.write(run_dir / "matrix.json")
    _summary(console, matrix, run_dir)
    return run_dir


def _planned_steps(run: PortabilityRun, plans: list[HostPlan]) -> int:
    steps = 0
    for plan in plans:
        if "native" in run.parts:
            steps += len(run.c_servers) * len(plan.compilers) * len(toolchains.MODES) \
                * len(plan.makes)
        steps += 6
    if "zig" in run.parts:
        steps += len(builds.ZIG_TARGETS) * len(run.c_servers)
    go_targets = len(builds.GO_TARGETS) + len(plans)
    steps += go_targets * (len(run.go_servers) + 1)
    return steps + 8


def _summary(console: Console, matrix: Matrix, run_dir: Path) -> None:
    rows = matrix.rows
    built = sum(r.builds for r in rows)
    passed = sum(r.tests_passed for r in rows)
    total = sum(r.tests_total for r in rows)
    failing = [f"{r.host} {r.target} {r.server} {t.name}: {', '.join(t.failures[:2])}"
               for r in rows for t in r.tests if t.status == "failed"]
    signal_ok = matrix.checks["no_signal_calls"]["passed"]
    console.print(f"portability: {built}/{len(rows)} builds, tests {passed}/{total} passed, "
                  f"signal() check {'passed' if signal_ok else 'FAILED'}; {run_dir}/matrix.json")
    for line in failing[:12]:
        console.print(f"  [red]failed:[/red] {_short(line)}")


def _short(text: str, width: int = 160) -> str:
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= width else text[:width - 1] + "…"
