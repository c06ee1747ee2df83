"""paper/generated/: macros.tex (every number the paper states) and the summary table.

The paper's prose contains no literal results; it refers to these macros, so rebuilding
from another run can never leave a stale number in the text.
"""

from __future__ import annotations

import math
import re
import unicodedata
from pathlib import Path

import pandas as pd

from analysis.errors import AnalysisError
from analysis.formatting import NOT_AVAILABLE, fmt, fmt_bandwidth, fmt_levels, fmt_plain
from analysis.runfacts import RunFacts
from analysis.summary import C_SERVER, CONFIDENCE, GO_SERVER, Summary

# Macro prefixes per server; macro names may only contain letters.
SERVER_PREFIX = {C_SERVER: "CFork", GO_SERVER: "Go"}

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_UNICODE = {"®": r"\textregistered{}", "™": r"\texttrademark{}", "©": r"\textcopyright{}"}
_NAME = re.compile(r"^[A-Za-z]+$")


def latex_escape(text: str) -> str:
    """Plain text safe for LaTeX; characters pdflatex may lack are reduced to ASCII."""
    out = []
    for char in str(text):
        if char in _SPECIAL:
            out.append(_SPECIAL[char])
        elif char in _UNICODE:
            out.append(_UNICODE[char])
        elif ord(char) < 128:
            out.append(char if char.isprintable() else " ")
        else:
            ascii_form = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(latex_escape(ascii_form) if ascii_form else "?")
    return "".join(out)


def _headline_groups(groups: pd.DataFrame) -> pd.DataFrame:
    """The conditions the prose talks about: the smallest CPU allotment (the paper's 1 vCPU).

    Several workloads or bandwidths in one run would make "the CPU at N connections"
    ambiguous, so that is refused rather than silently averaged.
    """
    if groups.empty:
        return groups
    loads = groups[["workload", "bandwidth_bps"]].drop_duplicates()
    if len(loads) > 1:
        raise AnalysisError(
            "the paper's macros assume one workload and bandwidth per run; this run has "
            + "; ".join(f"{w} at {b} bit/s" for w, b in loads.itertuples(index=False))
        )
    return groups[groups["cpus"] == groups["cpus"].min()]


def _at(groups: pd.DataFrame, server: str, connections: int | None, column: str) -> float:
    rows = groups[(groups["server"] == server) & (groups["connections"] == connections)]
    return float(rows[column].iloc[0]) if not rows.empty else math.nan


def _server_macros(groups: pd.DataFrame, cells: pd.DataFrame, planned: dict[str, int],
                   server: str, prefix: str, lo: int | None, hi: int | None) -> dict[str, str]:
    mine = groups[groups["server"] == server]
    cv = mine["cv_mean_of_reps"].dropna()
    low = _at(groups, server, hi, "cpu_pct_ci_low")
    high = _at(groups, server, hi, "cpu_pct_ci_high")
    level = int(round(CONFIDENCE * 100))
    # Prose-ready, so the paper reads naturally whether or not an interval exists.
    interval = (
        f"{level}% CI [{fmt(low, 'cpu')}, {fmt(high, 'cpu')}]"
        if not math.isnan(low)
        else "no interval"
    )
    return {
        f"{prefix}CpuIntervalAtMaxConn": interval,
        f"{prefix}CpuAtMaxConn": fmt(_at(groups, server, hi, "cpu_pct_mean"), "cpu"),
        f"{prefix}CpuCIAtMaxConn": fmt(_at(groups, server, hi, "cpu_pct_ci_half"), "cpu"),
        f"{prefix}CpuLowAtMaxConn": fmt(_at(groups, server, hi, "cpu_pct_ci_low"), "cpu"),
        f"{prefix}CpuHighAtMaxConn": fmt(_at(groups, server, hi, "cpu_pct_ci_high"), "cpu"),
        f"{prefix}CpuAtMinConn": fmt(_at(groups, server, lo, "cpu_pct_mean"), "cpu"),
        f"{prefix}RepsAtMaxConn": fmt_plain(_at(groups, server, hi, "n_reps")),
        f"{prefix}CvAtMaxConn": fmt(_at(groups, server, hi, "cv_mean_of_reps"), "cv"),
        f"{prefix}CvMin": fmt(cv.min() if not cv.empty else math.nan, "cv"),
        f"{prefix}CvMax": fmt(cv.max() if not cv.empty else math.nan, "cv"),
        f"{prefix}CellsOk": str(int((cells["server"] == server).sum()) if not cells.empty else 0),
        f"{prefix}CellsPlanned": str(planned.get(server, 0)),
    }


def _ratio_at(ratios: pd.DataFrame, connections: int | None) -> float:
    rows = ratios[ratios["connections"] == connections]
    return float(rows["go_over_c"].iloc[0]) if not rows.empty else math.nan


def build_macros(summary: Summary, facts: RunFacts) -> dict[str, str]:
    """Macro name -> LaTeX-ready value (already escaped)."""
    groups = _headline_groups(summary.groups)
    levels = sorted(int(c) for c in groups["connections"].unique()) if not groups.empty else []
    lo, hi = (levels[0], levels[-1]) if levels else (None, None)
    ratios = summary.ratios
    if not groups.empty and not ratios.empty:
        ratios = ratios[ratios["cpus"] == groups["cpus"].min()]
    host = facts.host
    memory = host.get("memory_bytes")
    level = int(round(CONFIDENCE * 100))
    reps = int(groups["n_reps"].min()) if not groups.empty else 0
    band_note = f"Shaded bands: {level}\\% t-intervals over repetitions" + (
        "." if reps >= 2 else "; none where a condition has a single repetition."
    )

    text = {
        "RunId": facts.run_id,
        "ConfigName": facts.config_name,
        "DataSource": facts.source,
        "GitCommit": facts.git_commit,
        "GitDirty": facts.git_dirty,
        "RunStartedAt": facts.started_at,
        "HostOS": host.get("os_release") or host.get("os") or "unknown",
        "HostOSFamily": host.get("os") or "unknown",
        "HostKernel": host.get("kernel") or "unknown",
        "HostArch": host.get("arch") or "unknown",
        "HostCPU": host.get("cpu_model") or "unknown",
        "CcVersion": facts.cc,
        "GoVersion": facts.go,
        "LoadgenVersion": facts.loadgen,
        "CpuIsolation": facts.cpu_isolation,
        "ServerCpuList": fmt_levels(facts.server_cpu_list, str),
        "TracerMethod": fmt_levels(facts.tracer_methods, str),
        "BandwidthPerConnection": fmt_levels(facts.bandwidth_per_connection_bps, fmt_bandwidth),
        "ConnectionLevels": fmt_levels(facts.connection_levels, str),
    }
    numbers = {
        "HostCores": fmt_plain(host.get("cores") if host.get("cores") is not None else math.nan),
        "HostMemoryGiB": fmt(memory / 2**30, "gib") if memory else NOT_AVAILABLE,
        "ServerCpus": fmt_levels(facts.cpus_levels, str),
        "Repetitions": str(facts.repetitions_planned),
        "RepetitionsMin": str(reps),
        "CellsPlanned": str(facts.cells_planned),
        "CellsOk": str(facts.cells_ok),
        "CellsFailed": str(facts.cells_failed),
        "CellsPending": str(facts.cells_pending),
        "WarmupSeconds": fmt_levels(facts.warmup_s),
        "MeasureSeconds": fmt_levels(facts.measure_s),
        "SampleIntervalMs": fmt_levels(tuple(1000 * s for s in facts.sample_interval_s)),
        "MinConnections": str(lo) if lo is not None else NOT_AVAILABLE,
        "MaxConnections": str(hi) if hi is not None else NOT_AVAILABLE,
        "ConnectionLevelCount": str(len(facts.connection_levels)),
        "ConfidenceLevel": str(level),
        "LoadAccuracyMinPct": fmt(100 * facts.load_ratio_min, "pct"),
        "LoadAccuracyMeanPct": fmt(100 * facts.load_ratio_mean, "pct"),
        "LoadAccuracyMaxPct": fmt(100 * facts.load_ratio_max, "pct"),
        "ConnectionsFailedTotal": str(facts.connections_failed_total),
        "TracerCpuSecondsMean": fmt(facts.tracer_cpu_seconds_mean, "seconds"),
        "TracerCpuSecondsMax": fmt(facts.tracer_cpu_seconds_max, "seconds"),
        "TracerCpuPctMax": fmt(facts.tracer_cpu_pct_max, "cpu"),
        "GoOverCRatioAtMaxConn": fmt(_ratio_at(ratios, hi), "ratio"),
        "GoOverCRatioAtMinConn": fmt(_ratio_at(ratios, lo), "ratio"),
        "GoOverCRatioMin": fmt(ratios["go_over_c"].min() if not ratios.empty else None, "ratio"),
        "GoOverCRatioMax": fmt(ratios["go_over_c"].max() if not ratios.empty else None, "ratio"),
    }
    macros = {name: latex_escape(value) for name, value in text.items()}
    macros.update({name: latex_escape(value) for name, value in numbers.items()})
    for server, prefix in SERVER_PREFIX.items():
        server_macros = _server_macros(groups, summary.cells, facts.cells_planned_per_server,
                                       server, prefix, lo, hi)
        macros.update({name: latex_escape(value) for name, value in server_macros.items()})
    macros["BandNote"] = band_note  # already LaTeX
    return macros


def render_macros(macros: dict[str, str]) -> str:
    lines = ["% Generated by analysis/latex.py from one raw run; do not edit."]
    for name, value in macros.items():
        if not _NAME.match(name):
            raise ValueError(f"macro name {name!r} must contain letters only")
        lines.append(f"\\newcommand{{\\{name}}}{{{value}}}")
    return "\n".join(lines) + "\n"


def render_table(summary: Summary) -> str:
    """A plain tabular (no booktabs) of every condition: mean CPU +- CI, CV, counts."""
    groups = summary.groups
    several_cpus = not groups.empty and groups["cpus"].nunique() > 1
    level = int(round(CONFIDENCE * 100))
    header = ["Server", *(["CPUs"] if several_cpus else []), "Conn.", r"CPU (\%)",
              rf"$\pm${level}\% CI", "CV", "Reps", "Samples"]
    spec = "l" + ("r" if several_cpus else "") + "rrrrrr"
    lines = [
        "% Generated by analysis/latex.py; do not edit.",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\hline",
        " & ".join(header) + r" \\",
        "\\hline",
    ]
    previous = None
    for row in groups.itertuples(index=False):
        if previous is not None and row.server != previous:
            lines.append("\\hline")
        previous = row.server
        cells = [
            latex_escape(row.server),
            *([str(int(row.cpus))] if several_cpus else []),
            str(int(row.connections)),
            fmt(row.cpu_pct_mean, "cpu"),
            fmt(row.cpu_pct_ci_half, "cpu"),
            fmt(row.cv_mean_of_reps, "cv"),
            str(int(row.n_reps)),
            str(int(row.n_samples)),
        ]
        lines.append(" & ".join(cells) + r" \\")
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def render_traces(servers: list[str]) -> str:
    """The trace panels for whichever servers this run has, for the paper's trace figure."""
    lines = ["% Generated by analysis/latex.py; do not edit."]
    # Stacked in one column; the trace figures are drawn flat so the stack stays short.
    for server in servers:
        lines += [f"\\includegraphics[width=\\columnwidth]{{generated/figures/trace_{server}.pdf}}",
                  ""]
    if not servers:
        lines.append("(no completed cell to show)")
    return "\n".join(lines) + "\n"


def write_generated(summary: Summary, facts: RunFacts, generated_dir: Path) -> list[Path]:
    generated_dir.mkdir(parents=True, exist_ok=True)
    outputs = {
        "macros.tex": render_macros(build_macros(summary, facts)),
        "table_summary.tex": render_table(summary),
        "traces.tex": render_traces(sorted(summary.cells["server"].unique())
                                    if not summary.cells.empty else []),
    }
    paths = []
    for name, content in outputs.items():
        path = generated_dir / name
        path.write_text(content, encoding="utf-8")
        paths.append(path)
    return paths
