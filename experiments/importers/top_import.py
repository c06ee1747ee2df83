"""`invoke import-top`: legacy `top` logs become cells of an imported run under data/raw/.

Each file is one repetition (cell) of (server, connections, cpus). Everything is read, hashed
and parsed before anything is written, and any problem in any file (a malformed screen, an
empty or wrong-format file, a refused run) fails the whole import with every problem listed
by file and line: a half-imported set of repetitions would silently bias the statistics.

Writing reuses experiments/rawdata.RunDir: each cell is assembled under ``.work/`` and
committed by one rename. A new run is built whole under ``data/raw/.staging/`` and renamed
into ``data/raw/`` at the end, so it appears complete or not at all; cells appended to an
existing imported run are committed together and the manifest is rewritten last.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from experiments.cells import WORKLOAD_SINK, cell_id
from experiments.importers.toplog import FREEBSD, HOST_KEYS, TopLog, parse_top_text
from experiments.rawdata import RAW_DIR, RunDir, RunDirError, now_iso
from experiments.server_registry import DescriptorError, discover_servers
from experiments.tracer import COLUMNS

IMPORTER_VERSION = "1.0.0"
SOURCE = "imported"
ZERO_FILL = "zero-fill"  # a screen without the server's row is a 0 % sample
PAPER_COMPATIBLE = "paper-compatible"  # such screens are dropped by the analysis
CLEANING_RULES = {
    ZERO_FILL: "a screen with no row of the server is a 0 % sample (top hides idle processes)",
    PAPER_COMPATIBLE: "screens with no row of the server are dropped, as the original study's "
                      "cleaning did (inflates the mean at low load)",
}
EXTRA_COLUMNS = ["top_no_match"]
TRACE_COLUMNS = [*COLUMNS, *EXTRA_COLUMNS]
TOP_LOG = "top.log"  # the imported file, byte for byte, kept in its cell
STAGING = ".staging"
METHOD = {FREEBSD: "top-freebsd", "procps": "top-procps"}
OS_OF_FORMAT = {FREEBSD: "FreeBSD", "procps": "Linux"}
HOST_FACTS = ("os", "os_release", "kernel", "arch", "cpu_model", "cores", "memory_bytes", "cc",
              "go", "hostname")
HOSTS_NOTE = ("unknown: top logs do not record the host; every fact is null except os, which "
              "is inferred from the top output format")
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class TopImportError(RuntimeError):
    """An import that cannot be done; the message lists every problem, nothing was written."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"import-top: {len(problems)} problem{'s' if len(problems) != 1 else ''}, "
            "nothing was written:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass
class ImportedFile:
    given: str  # the path as given
    path: Path  # resolved
    data: bytes
    sha256: str
    log: TopLog
    cell_id: str = ""
    factors: dict[str, Any] = field(default_factory=dict)

    def mean_cpu(self, rule: str, warmup_s: float, interval_s: float) -> float | None:
        kept = [s for s in self.log.screens if s.index * interval_s > warmup_s + 1e-9
                and (rule == ZERO_FILL or s.matched > 0)]
        return float(sum(s.cpu_pct for s in kept) / len(kept)) if kept else None


@dataclass
class ImportResult:
    run_dir: RunDir
    created: bool
    cleaning_rule: str
    command: str
    interval_s: float
    warmup_s: float
    files: list[ImportedFile]
    warnings: list[str]

    def describe(self) -> str:
        lines = [f"{'created' if self.created else 'appended to'} imported run "
                 f"{self.run_dir.run_id} ({self.run_dir.path}); cleaning rule "
                 f"{self.cleaning_rule}; command {self.command!r}"]
        for item in self.files:
            zero = item.mean_cpu(ZERO_FILL, self.warmup_s, self.interval_s)
            paper = item.mean_cpu(PAPER_COMPATIBLE, self.warmup_s, self.interval_s)
            lines.append(
                f"  {item.given}: {item.log.format}, {len(item.log.screens)} screens, "
                f"{item.log.no_match} without {self.command!r}; mean CPU "
                f"{_fmt(zero)} % (zero-fill), {_fmt(paper)} % (paper-compatible) -> "
                f"{item.cell_id}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{SOURCE}-{secrets.token_hex(2)}"


def _known_servers() -> dict[str, Any]:
    try:
        return dict(discover_servers())
    except DescriptorError:
        return {}


def default_command(server: str) -> str:
    """The server's binary name from its descriptor; the server's name if it has none."""
    descriptor = _known_servers().get(server)
    if descriptor is None:
        return server
    return Path(descriptor.binary_template.format(build_dir="")).name or server


def resolve(given: str, base_dirs: list[Path]) -> Path:
    """A relative path against the first base where it exists (the directory invoke was
    called from comes first: tasks.py changes to the project root before the task runs)."""
    path = Path(given).expanduser()
    if path.is_absolute():
        return path
    for base in base_dirs:
        if (base / path).exists():
            return (base / path).resolve()
    return (base_dirs[0] / path) if base_dirs else path.resolve()


def caller_dirs() -> list[Path]:
    bases = []
    pwd = os.environ.get("PWD")
    if pwd and Path(pwd).is_dir():
        bases.append(Path(pwd))
    if Path.cwd() not in bases:
        bases.append(Path.cwd())
    return bases


def _check_options(server: str, connections: Any, cpus: Any, interval_s: float,
                   warmup_s: float, files: list[str]) -> list[str]:
    problems = []
    if not server:
        problems.append("--server is required: the server the logs measured (c-fork, "
                        "go-goroutine, ...)")
    elif not SERVER_NAME.match(server):
        problems.append(f"--server {server!r}: expected a server name such as c-fork or "
                        "go-goroutine (letters, digits, '.', '_', '-')")
    for flag, value in (("--connections", connections), ("--cpus", cpus)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{flag} {value!r}: expected a whole number of at least 1")
    if not interval_s > 0:
        problems.append(f"--interval {interval_s!r}: expected seconds between screens, > 0")
    if not warmup_s >= 0:
        problems.append(f"--warmup {warmup_s!r}: expected seconds, >= 0")
    if not files:
        problems.append("no FILE given: name at least one top log")
    return problems


def _existing_run(run_id: str, raw_dir: Path, fmt: str | None, rule: str,
                  problems: list[str]) -> tuple[RunDir, dict[str, Any]] | None:
    try:
        run_dir = RunDir.open(run_id, raw_dir)
        manifest = run_dir.read_manifest()
    except RunDirError as error:  # names the runs that exist, or the corrupt manifest
        problems.append(f"--run-id: {error}")
        return None
    if manifest.get("source") != SOURCE:
        problems.append(
            f"run {run_id} is a {manifest.get('source', 'measured')} run: imported top logs "
            "are only appended to imported runs (omit --run-id to start one)")
        return None
    if fmt is not None and manifest.get("top_format") not in (None, fmt):
        problems.append(f"run {run_id} holds {manifest['top_format']} top logs and these are "
                        f"{fmt}: one run is one host; import them into a new run")
    if manifest.get("cleaning_rule") != rule:
        flag = "with" if manifest.get("cleaning_rule") == PAPER_COMPATIBLE else "without"
        problems.append(f"run {run_id} uses the {manifest.get('cleaning_rule')} cleaning rule "
                        f"and this import the {rule} rule: repeat it {flag} --paper-compatible")
    return run_dir, manifest


def _trace_rows(log: TopLog, interval_s: float, warmup_s: float) -> list[dict[str, Any]]:
    rows = []
    for screen in log.screens:
        t_rel = screen.index * interval_s  # the interval that ends with this screen
        row: dict[str, Any] = dict.fromkeys(TRACE_COLUMNS, "")
        row.update({
            "t_unix": "",  # neither format prints a date
            "t_rel_s": round(t_rel, 4),
            "warmup": int(t_rel <= warmup_s + 1e-9),  # the tracer's rule
            "cpu_pct": format(screen.cpu_pct, "f"),
            "rss_bytes": "" if screen.rss_bytes is None else screen.rss_bytes,
            "n_procs": screen.matched,
            "n_threads": "" if screen.n_threads is None else screen.n_threads,
            "top_no_match": int(screen.matched == 0),
        })
        row.update({k: "" if screen.host[k] is None else screen.host[k] for k in HOST_KEYS})
        rows.append(row)
    return rows


def _write_work(run_dir: RunDir, item: ImportedFile, interval_s: float, warmup_s: float) -> Path:
    work = run_dir.work_dir(item.cell_id)
    with open(work / "trace.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TRACE_COLUMNS)
        writer.writeheader()
        writer.writerows(_trace_rows(item.log, interval_s, warmup_s))
    (work / TOP_LOG).write_bytes(item.data)  # the bytes that were hashed and parsed
    return work


def _file_record(item: ImportedFile, interval_s: float) -> dict[str, Any]:
    return {
        "path": item.given,
        "absolute_path": str(item.path),
        "size_bytes": len(item.data),
        "sha256": item.sha256,
        "format": item.log.format,
        "cpu_column": item.log.cpu_column,
        "screens": len(item.log.screens),
        "screens_no_match": item.log.no_match,
        "clock_first": item.log.screens[0].clock,
        "clock_last": item.log.screens[-1].clock,
        "clock_elapsed_s": item.log.clock_elapsed_s(),
        "nominal_elapsed_s": round((len(item.log.screens) - 1) * interval_s, 4),
        "cell_id": item.cell_id,
        "copy": f"{item.cell_id}/{TOP_LOG}",
    }


def _status(item: ImportedFile, command: str, rule: str, interval_s: float, warmup_s: float,
            imported_at: str) -> dict[str, Any]:
    measured = sum(1 for s in item.log.screens if s.index * interval_s > warmup_s + 1e-9)
    return {
        "id": item.cell_id, "factors": item.factors, "status": "ok", "reason": None,
        "source": SOURCE, "sha256": item.sha256,
        "started_at": None, "ended_at": None, "imported_at": imported_at,
        "warmup_s": warmup_s, "measure_s": round(measured * interval_s, 4),
        "sample_interval_s": interval_s,
        "server_cpus": None, "aux_cpus": None, "cpu_isolation": None,
        "tracer": {"method": METHOD[item.log.format or FREEBSD], "cpu_seconds": None,
                   "samples": len(item.log.screens)},
        "server": None,
        "loadgen": None,
        "loadgen_note": "no loadgen.json: a top log carries no load data (achieved load unknown)",
        "top": {**_file_record(item, interval_s), "command": command, "cleaning_rule": rule,
                "importer_version": IMPORTER_VERSION},
    }


def _new_manifest(run_id: str, fmt: str, rule: str, git: dict[str, Any]) -> dict[str, Any]:
    host = dict.fromkeys(HOST_FACTS)
    host["os"] = OS_OF_FORMAT[fmt]
    return {
        "schema": 1,
        "run_id": run_id,
        "source": SOURCE,
        "config_name": SOURCE,
        "config_path": None,
        "config": None,
        "config_sha256": None,
        "seed": None,
        "git": git,
        "provider": None,
        "hosts": {"unknown": host},
        "hosts_note": HOSTS_NOTE,
        "cpu_isolation": None,
        "tools": None,
        "started_at": None,  # when the logs were recorded is unknown
        "ended_at": None,
        "imported_at": now_iso(),
        "top_format": fmt,
        "cleaning_rule": rule,
        "cleaning_rule_meaning": CLEANING_RULES[rule],
        "imports": [],
        "cells": [],
    }


def import_top(
    files: list[str], *, server: str, connections: int, cpus: int, run_id: str | None = None,
    command: str | None = None, paper_compatible: bool = False, interval_s: float = 0.5,
    warmup_s: float = 0.0, raw_dir: Path = RAW_DIR, base_dirs: list[Path] | None = None,
) -> ImportResult:
    """Import ``files`` as repetitions of one cell, or raise TopImportError having written
    nothing."""
    rule = PAPER_COMPATIBLE if paper_compatible else ZERO_FILL
    problems = _check_options(server, connections, cpus, interval_s, warmup_s, files)
    if problems:
        raise TopImportError(problems)
    command = command or default_command(server)
    bases = base_dirs if base_dirs is not None else caller_dirs()

    items: list[ImportedFile] = []
    seen: dict[str, str] = {}
    for given in files:
        path = resolve(given, bases)
        try:
            data = path.read_bytes()
        except OSError as error:
            problems.append(f"{given}: cannot read: {error.strerror or error}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            problems.append(f"{given}: same content (sha256 {digest[:12]}) as {seen[digest]}; "
                            "a repetition is imported once")
            continue
        seen[digest] = given
        log = parse_top_text(data.decode("utf-8", errors="replace"), command, given)
        problems += [str(p) for p in log.problems]
        if not log.problems and log.screens and all(
                s.index * interval_s <= warmup_s + 1e-9 for s in log.screens):
            problems.append(f"{given}: all {len(log.screens)} screens fall in the "
                            f"{warmup_s:g} s warm-up; nothing would be measured")
        items.append(ImportedFile(given, path, data, digest, log))
    formats = sorted({i.log.format for i in items if i.log.format})
    if len(formats) > 1:
        problems.append(f"the files mix top formats ({', '.join(formats)}): one run is one "
                        "host; import each format into its own run")
    fmt = formats[0] if len(formats) == 1 else None

    existing = None
    if run_id is not None:
        existing = _existing_run(run_id, raw_dir, fmt, rule, problems)
    manifest = existing[1] if existing else None
    if manifest is not None:
        known = {f["sha256"]: f["path"] for imp in manifest.get("imports", [])
                 for f in imp.get("files", [])}
        problems += [f"{i.given}: already imported into run {run_id} (as {known[i.sha256]})"
                     for i in items if i.sha256 in known]
    if problems:
        raise TopImportError(problems)
    assert fmt is not None  # no problem means every file parsed, all in one format

    # Repetitions continue after those the run has for this (server, connections, cpus).
    base = {"server": server, "workload": WORKLOAD_SINK, "connections": connections,
            "bandwidth_bps": None, "message": None, "cpus": cpus}
    taken = [c["factors"].get("repetition") or 0 for c in (manifest or {}).get("cells", [])
             if all(c["factors"].get(k) == v for k, v in base.items())]
    next_repetition = max(taken, default=0) + 1
    for offset, item in enumerate(items):
        item.factors = {**base, "repetition": next_repetition + offset}
        item.cell_id = cell_id(item.factors)

    warnings = []
    if server not in _known_servers():
        warnings.append(f"{server!r} is not a server of experiments/servers/; the Go/C "
                        "comparison only pairs c-fork with go-goroutine")
    for item in items:
        if item.log.no_match == len(item.log.screens):
            warnings.append(f"{item.given}: no screen has a {command!r} row (wrong --command? "
                            "the original study's binary was server.bin)")
    if existing is None:
        run_dir = _write_new_run(items, fmt, rule, command, interval_s, warmup_s, raw_dir,
                                 server, connections, cpus)
    else:
        run_dir = _append(existing[0], items, rule, command, interval_s, warmup_s, server,
                          connections, cpus)
    return ImportResult(run_dir, existing is None, rule, command, interval_s, warmup_s, items,
                        warnings)


def _import_record(items: list[ImportedFile], rule: str, command: str, interval_s: float,
                   warmup_s: float, at: str, git: dict[str, Any], server: str,
                   connections: int, cpus: int) -> dict[str, Any]:
    return {
        "at": at, "importer_version": IMPORTER_VERSION, "git": git,
        "server": server, "connections": connections, "cpus": cpus,
        "command": command, "cleaning_rule": rule, "interval_s": interval_s,
        "warmup_s": warmup_s, "files": [_file_record(i, interval_s) for i in items],
    }


def _commit_cells(run_dir: RunDir, items: list[ImportedFile], rule: str, command: str,
                  interval_s: float, warmup_s: float, at: str) -> list[dict[str, Any]]:
    works = [_write_work(run_dir, item, interval_s, warmup_s) for item in items]
    entries = []
    for item, work in zip(items, works, strict=True):
        run_dir.commit_cell(work, item.cell_id,
                            _status(item, command, rule, interval_s, warmup_s, at))
        entries.append({"id": item.cell_id, "order": 0, "factors": item.factors,
                        "status": "ok", "reason": None, "sha256": item.sha256})
    try:
        (run_dir.path / ".work").rmdir()  # only if no other import is assembling cells
    except OSError:
        pass
    return entries


def _git() -> dict[str, Any]:
    from experiments.runner import git_state

    return git_state()


def _write_new_run(items: list[ImportedFile], fmt: str, rule: str, command: str,
                   interval_s: float, warmup_s: float, raw_dir: Path, server: str,
                   connections: int, cpus: int) -> RunDir:
    run_id = new_run_id()
    final = raw_dir / run_id
    staging = RunDir.create(run_id, raw_dir / STAGING)
    try:
        git = _git()
        manifest = _new_manifest(run_id, fmt, rule, git)
        at = manifest["imported_at"]
        entries = _commit_cells(staging, items, rule, command, interval_s, warmup_s, at)
        for order, entry in enumerate(entries):
            entry["order"] = order
        manifest["cells"] = entries
        manifest["imports"].append(_import_record(items, rule, command, interval_s, warmup_s,
                                                  at, git, server, connections, cpus))
        staging.write_manifest(manifest)
        if final.exists():
            raise FileExistsError(f"{final} appeared during the import")
        os.rename(staging.path, final)
    except BaseException:
        shutil.rmtree(staging.path, ignore_errors=True)
        raise
    finally:
        try:
            (raw_dir / STAGING).rmdir()
        except OSError:
            pass  # another import is staging too
    return RunDir(final)


def _append(run_dir: RunDir, items: list[ImportedFile], rule: str, command: str,
            interval_s: float, warmup_s: float, server: str, connections: int,
            cpus: int) -> RunDir:
    manifest = run_dir.read_manifest()
    taken = [i.cell_id for i in items if run_dir.cell_dir(i.cell_id).exists()]
    if taken:
        raise TopImportError([f"cell {c} exists already in run {run_dir.run_id} (raw data is "
                              "append-only; it is not in the manifest, so an earlier import "
                              "was interrupted: move it away and retry)" for c in taken])
    at, git = now_iso(), _git()
    try:
        entries = _commit_cells(run_dir, items, rule, command, interval_s, warmup_s, at)
    except BaseException:
        for item in items:
            shutil.rmtree(run_dir.path / ".work" / item.cell_id, ignore_errors=True)
        raise
    first = len(manifest["cells"])
    for order, entry in enumerate(entries, start=first):
        entry["order"] = order
    manifest["cells"] += entries
    manifest["imports"].append(_import_record(items, rule, command, interval_s, warmup_s, at,
                                              git, server, connections, cpus))
    run_dir.write_manifest(manifest)
    return run_dir
