"""paper/build/report.html: one self-contained page for people who will not build the PDF.

Figures are embedded as base64 PNG so the file can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

import pandas as pd

from analysis.formatting import NOT_AVAILABLE, fmt, fmt_bandwidth, fmt_levels
from analysis.rawdata import FACTOR_COLUMNS, RawRun
from analysis.runfacts import RunFacts
from analysis.summary import CONFIDENCE, Summary

_STYLE = """
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.4; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #999; padding: 0.2em 0.6em; text-align: right; }
th { background: #eee; } td.text { text-align: left; }
figure { margin: 1.5em 0; } img { max-width: 100%; }
code { background: #f4f4f4; }
"""


def _table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="text">{escape(v)}</td>' if i < text_columns else f"<td>{escape(v)}</td>"
            for i, v in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary_table(groups: pd.DataFrame) -> str:
    level = int(round(CONFIDENCE * 100))
    header = ["server", "CPUs", "connections", "mean CPU %", f"{level}% CI (t, over reps)",
              "CV (mean of reps)", "reps", "samples", "achieved / target load"]
    rows = []
    for row in groups.itertuples(index=False):
        ci = (NOT_AVAILABLE if pd.isna(row.cpu_pct_ci_low)
              else f"[{fmt(row.cpu_pct_ci_low, 'cpu')}, {fmt(row.cpu_pct_ci_high, 'cpu')}]")
        load = fmt(100 * row.load_ratio_mean, "pct")
        rows.append([row.server, str(int(row.cpus)), str(int(row.connections)),
                     fmt(row.cpu_pct_mean, "cpu"), ci, fmt(row.cv_mean_of_reps, "cv"),
                     str(int(row.n_reps)), str(int(row.n_samples)),
                     load if load == NOT_AVAILABLE else f"{load}%"])
    return _table(header, rows)


def _ratio_table(ratios: pd.DataFrame) -> str:
    rows = [[str(int(r.cpus)), str(int(r.connections)), fmt(r.c_cpu_pct_mean, "cpu"),
             fmt(r.go_cpu_pct_mean, "cpu"), fmt(r.go_over_c, "ratio")]
            for r in ratios.itertuples(index=False)]
    return _table(["CPUs", "connections", "c-fork mean CPU %", "go-goroutine mean CPU %",
                   "Go / C"], rows, text_columns=0)


def _reason(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _cell_list(frame: pd.DataFrame, empty: str) -> str:
    if frame.empty:
        return f"<p>{escape(empty)}</p>"
    factors = [c for c in FACTOR_COLUMNS if c != "message"]
    rows = [[str(r["cell_id"]), *(str(r[c]) for c in factors), _reason(r["reason"])]
            for _, r in frame.iterrows()]
    return _table(["cell", *factors, "reason"], rows, text_columns=len(factors) + 2)


def _facts(facts: RunFacts) -> str:
    host = facts.host
    memory = host.get("memory_bytes")
    items = [
        ("run id", facts.run_id),
        ("data source", facts.source),
        ("raw data", facts.raw_dir),
        ("manifest sha256", facts.manifest_sha256),
        ("config", f"{facts.config_name} ({facts.config_path}, sha256 {facts.config_sha256})"),
        ("git commit", f"{facts.git_commit} (dirty: {facts.git_dirty})"),
        ("started / ended", f"{facts.started_at} / {facts.ended_at}"),
        ("provider", facts.provider),
        ("host", f"{host.get('hostname', 'unknown')}: {host.get('os_release', 'unknown')}, "
                 f"kernel {host.get('kernel', 'unknown')}, {host.get('arch', 'unknown')}"),
        ("CPU", f"{host.get('cpu_model', 'unknown')}, {host.get('cores', '?')} logical cores"),
        ("memory", f"{memory / 2**30:.1f} GiB" if memory else NOT_AVAILABLE),
        ("C compiler", facts.cc),
        ("Go", facts.go),
        ("load generator", facts.loadgen),
        ("CPU isolation", facts.cpu_isolation),
        ("server CPUs", fmt_levels(facts.server_cpu_list, str)),
        ("load per connection", fmt_levels(facts.bandwidth_per_connection_bps, fmt_bandwidth)),
        ("warm-up / measured / sample interval (s)",
         f"{fmt_levels(facts.warmup_s)} / {fmt_levels(facts.measure_s)} / "
         f"{fmt_levels(facts.sample_interval_s)}"),
        ("cells", f"{facts.cells_ok} ok, {facts.cells_failed} failed, "
                  f"{facts.cells_pending} pending, of {facts.cells_planned} planned"),
        ("tracer", f"{fmt_levels(facts.tracer_methods, str)}; own CPU up to "
                   f"{fmt(facts.tracer_cpu_seconds_max, 'seconds')} s per cell"),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td class=\"text\">{escape(v)}</td></tr>"
                   for k, v in items)
    return f"<table>{rows}</table>"


def _figure(png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{escape(png.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(png.name)}</figcaption></figure>")


def render(run: RawRun, summary: Summary, facts: RunFacts, figures: list[Path]) -> str:
    pngs = [p for p in figures if p.suffix == ".png"]
    level = int(round(CONFIDENCE * 100))
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>papaya-bench report {escape(facts.run_id)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>papaya-bench report: run <code>{escape(facts.run_id)}</code></h1>",
        f"<p>Generated from <code>{escape(facts.raw_dir)}</code> by <code>invoke report</code>."
        " Statistics use only samples outside the warm-up window; intervals are "
        f"{level}% Student-t intervals over repetition means (n/a with one repetition).</p>",
        "<h2>Run</h2>", _facts(facts),
        "<h2>Summary</h2>", _summary_table(summary.groups),
        "<h2>Go / C ratio of mean CPU</h2>", _ratio_table(summary.ratios),
        "<h2>Failed cells</h2>", _cell_list(run.failed, "No cell failed."),
        "<h2>Pending cells</h2>", _cell_list(run.pending, "No cell is pending."),
        "<h2>Figures</h2>", *(_figure(p) for p in pngs),
        "</body></html>",
    ])


def write_report(run: RawRun, summary: Summary, facts: RunFacts, figures: list[Path],
                 html_path: Path) -> Path:
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render(run, summary, facts, figures), encoding="utf-8")
    return html_path
