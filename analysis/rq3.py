"""RQ3 (portability) for the report and the paper, from the newest portability matrix
(``data/portability/<run-id>/matrix.json``, written by ``invoke portability``).

The table: target × compiler × mode × make → builds, warnings, tests passed. One row per
combination (its servers counted together); FreeBSD targets that no FreeBSD host ran say so.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from analysis.tables import Column, Table
from analysis.texescape import latex_escape

SCHEMA = "papaya-portability/1"
NOT_RUN_FREEBSD = "cross-compiled, not run: no FreeBSD host"
NO_MATRIX = ("No portability matrix has been measured yet: run invoke portability (as root "
             "on Linux, with a lab or an inventory for more hosts), then invoke report.")
KIND_ORDER = {"native": 0, "deployed-go": 1, "cross-zig": 2, "cross-go": 3}
CHECK_NAMES = {
    "smoke": "sink smoke test",
    "conformance": "chat conformance suite",
    "v6only": "IPv4 clients with IPv6 sockets v6-only",
    "sigchld": "SIGCHLD storm",
    "sigusr1": "SIGUSR1 storm",
    "biglog": "chat log past 2 GiB on 32-bit",
}


def find_matrix(data_dir: Path = Path("data"), path: Path | None = None) -> Path | None:
    """``path`` if given, else the newest data_dir/portability/*/matrix.json, else None."""
    if path is not None:
        return path
    found = sorted((data_dir / "portability").glob("*/matrix.json"))
    return found[-1] if found else None


def load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {data.get('schema')!r}, expected {SCHEMA!r}")
    return data


def _short_version(version: str, tool: str) -> str:
    """``gcc 12.2.0`` from ``gcc (Debian 12.2.0-14) 12.2.0``; zig and go keep their own."""
    if tool == "zig cc":
        match = re.search(r"zig (\S+)", version)
        return f"zig cc {match.group(1)}" if match else "zig cc"
    if tool == "go":
        match = re.search(r"go(\d+\.\d+(?:\.\d+)?)", version)
        return f"go {match.group(1)}" if match else "go"
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", version)
    return f"{tool} {match.group(1)}" if match else tool


def _target(row: dict[str, Any], hosts: dict[str, dict[str, Any]]) -> str:
    if row["kind"] in ("native", "deployed-go"):
        facts = hosts.get(row["host"], {}).get("facts", {})
        system = facts.get("os_release") or row["os"]
        if facts.get("os_id") and facts.get("os_version_id") and row["os"] != "FreeBSD":
            system = f"{str(facts['os_id']).capitalize()} {facts['os_version_id']}"
        label = f"{system} {row['arch']}"
        return f"{label} ({row['target']})" if row["kind"] == "deployed-go" else label
    return row["target"]


def _where(row: dict[str, Any]) -> str:
    return "cross, here" if row["kind"] in ("cross-zig", "cross-go") else row["host"]


def rq3_table(matrix: dict[str, Any]) -> Table:
    hosts = {h["name"]: h for h in matrix.get("hosts", [])}
    freebsd_native = any(r["kind"] == "native" and r["os"] == "FreeBSD"
                         for r in matrix["rows"])
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in matrix["rows"]:
        key = (KIND_ORDER.get(row["kind"], 9), _target(row, hosts), _where(row),
               _short_version(row["compiler_version"], row["compiler"]), row["mode"],
               row["make"])
        groups[key].append(row)
    table = Table("rq3", "Portability: builds, warnings and tests per target", [
        Column("Target", "Target", "l"), Column("Where", "Where", "l"),
        Column("Compiler", "Compiler", "l"), Column("Mode", "Mode", "l"),
        Column("Make", "Make", "l"), Column("Builds", "Builds"),
        Column("Warnings", "Warnings"), Column("Tests passed", "Tests passed", "l"),
    ])
    previous_kind = None
    for key in sorted(groups):
        rows = groups[key]
        kind, target, where, compiler, mode, make = key
        if previous_kind is not None and kind != previous_kind:
            table.breaks.append(len(table.rows))
        previous_kind = kind
        built = sum(1 for r in rows if r["builds"])
        warnings = sum(len(r["warnings"]) for r in rows)
        passed = sum(r["tests_passed"] for r in rows)
        total = sum(r["tests_total"] for r in rows)
        if total:
            tests = f"{passed}/{total}"
        elif any(r["os"].lower() == "freebsd" for r in rows) and not freebsd_native:
            tests = NOT_RUN_FREEBSD
        else:
            tests = "not run"
        table.rows.append([target, where, compiler, mode, make, f"{built}/{len(rows)}",
                           str(warnings), tests])
    table.notes = notes(matrix)
    return table


def check_totals(matrix: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """Per check: (passed, run, skipped) over every row."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in matrix["rows"]:
        for test in row["tests"]:
            entry = totals[test["name"]]
            if test["status"] == "skipped":
                entry[2] += 1
            else:
                entry[0] += test["passed"]
                entry[1] += test["total"]
    return {name: (v[0], v[1], v[2]) for name, v in totals.items()}


def notes(matrix: dict[str, Any]) -> list[str]:
    out = ["Builds: servers built of those tried (the C servers natively with -Wall -Wextra "
           "-Werror; strict = -std=c99 -D_POSIX_C_SOURCE=200809L -pedantic, gnu = "
           "-std=gnu11). Warnings: compiler warning lines. Tests: the smoke test, the chat "
           "conformance suite and the regressions, run on the strict-mode build of each host "
           "and on the 32-bit binaries here."]
    parts = []
    for name, (passed, run, skipped) in check_totals(matrix).items():
        text = f"{CHECK_NAMES.get(name, name)} {passed}/{run}"
        if skipped:
            text += f" ({skipped} skipped)"
        parts.append(text)
    signal = matrix.get("checks", {}).get("no_signal_calls")
    if signal is not None:
        files = len(signal.get("files_checked", []))
        parts.append(f"no signal() call in {files} C files: "
                     f"{'yes' if signal['passed'] else 'no, ' + str(len(signal['calls']))}")
    if parts:
        out.append("Checks passed: " + "; ".join(parts) + ".")
    out.append(f"Matrix {matrix['run_id']}.")
    return out


def failures(matrix: dict[str, Any]) -> list[str]:
    return [f"{r['host']} {r['target']} {r['server']} ({r['compiler']}, {r['mode']}, "
            f"{r['make']}): {t['name']}: {', '.join(t['failures'][:3])}"
            for r in matrix["rows"] for t in r["tests"] if t["status"] == "failed"]


def section_tex(matrix: dict[str, Any] | None, render: Any) -> str:
    """The paper's RQ3 text and table (``render``: latex_tables.render)."""
    if matrix is None:
        return ("% Generated by analysis/rq3.py; do not edit.\n"
                f"\\emph{{{latex_escape(NO_MATRIX)}}}\n")
    hosts = [h for h in matrix.get("hosts", []) if h.get("compilers") is not None]
    names = ", ".join(f"{h['name']} ({h['facts'].get('os_release') or h['facts'].get('os')}, "
                      f"{h['facts'].get('arch')})" for h in hosts)
    rows = matrix["rows"]
    built = sum(1 for r in rows if r["builds"])
    intro = latex_escape(
        f"The portability matrix built the servers {len(rows)} ways, {built} of them "
        f"successfully: natively on {names or 'no host'}, and cross-compiled here with Zig "
        "(C) and Go for other systems and architectures.")
    intro += " Table~\\ref{tab:rq3} lists each target, compiler, mode and make."
    failed = failures(matrix)
    tail = ""
    if failed:
        tail = "\\par Failed checks: " + latex_escape("; ".join(failed[:8])) + "."
    return "\n".join([
        "% Generated by analysis/rq3.py; do not edit.",
        intro,
        "\\begin{table*}[t]\\centering\\scriptsize",
        f"\\caption{{{latex_escape(rq3_table(matrix).title)}}}\\label{{tab:rq3}}",
        render(rq3_table(matrix)),
        "\\end{table*}",
        tail,
    ]) + "\n"


def write_rq3(generated_dir: Path, data_dir: Path = Path("data"),
              matrix_path: Path | None = None, render: Any = None) -> tuple[Path, Path | None]:
    """paper/generated/rq3.tex from the newest (or the given) matrix; (tex, matrix used)."""
    if render is None:
        from analysis.latex_tables import render as render_table

        render = render_table
    path = find_matrix(data_dir, matrix_path)
    matrix = load(path) if path is not None else None
    generated_dir.mkdir(parents=True, exist_ok=True)
    out = generated_dir / "rq3.tex"
    out.write_text(section_tex(matrix, render), encoding="utf-8")
    return out, path


def html_section(data_dir: Path = Path("data"), matrix_path: Path | None = None) -> str:
    from html import escape

    from analysis.html import render_table

    path = find_matrix(data_dir, matrix_path)
    if path is None:
        return f"<p>{escape(NO_MATRIX)}</p>"
    matrix = load(path)
    failed = failures(matrix)
    listing = "".join(f"<li>{escape(f)}</li>" for f in failed)
    return (f"<p>From <code>{escape(str(path))}</code>.</p>" + render_table(rq3_table(matrix))
            + (f"<p>Failed checks:</p><ul>{listing}</ul>" if failed else ""))
