"""paper/build/report.html: one self-contained page for people who will not build the PDF.

It shows the same tables as the paper (built once in ``analysis.tables``), over every
condition rather than only the baseline, plus every repetition on its own. Figures are
embedded as base64 PNG so the file can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

import pandas as pd

from analysis import chat, cleaning, tables
from analysis.formatting import NOT_AVAILABLE, fmt, fmt_bandwidth, fmt_levels
from analysis.inference import Inference
from analysis.rawdata import RawRun
from analysis.resampling import CONFIDENCE, N_RESAMPLES_BLOCKS, N_RESAMPLES_REPS, SEED
from analysis.runfacts import RunFacts

_STYLE = """
body { font-family: sans-serif; max-width: 72em; margin: 2em auto; line-height: 1.4; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #999; padding: 0.2em 0.5em; text-align: right; }
th { background: #eee; } td.text, th.text { text-align: left; }
p.note { font-size: 0.85em; color: #333; margin-top: -0.5em; }
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


def render_table(table: tables.Table, empty: str = "Not available for this run.") -> str:
    """A ``tables.Table`` as HTML, with its notes under it."""
    if table.empty:
        return f"<p>{escape(empty)}</p>"
    head = "".join(f'<th class="{"text" if c.align == "l" else ""}">{escape(c.text)}</th>'
                   for c in table.columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="text">{escape(v)}</td>' if c.align == "l" else f"<td>{escape(v)}</td>"
            for c, v in zip(table.columns, row, strict=True)
        ) + "</tr>"
        for row in table.rows
    )
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in table.notes)
    return (f'<table id="{escape(table.name)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>{notes}")


def _reason(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _cell_list(run: RawRun, frame: pd.DataFrame, empty: str) -> str:
    if frame.empty:
        return f"<p>{escape(empty)}</p>"
    factors = [c for c in run.factor_columns if c != "message"]
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
        *((f"host {name}", f"{h.get('hostname') or 'unknown'}: "
           f"{h.get('os_release') or h.get('os') or 'unknown'}, kernel "
           f"{h.get('kernel') or 'unknown'}, {h.get('arch') or 'unknown'}; CPU "
           f"{h.get('cpu_model') or 'unknown'}, {h.get('cores') or '?'} logical cores")
          for name, h in facts.hosts.items()),
        ("memory", f"{memory / 2**30:.1f} GiB" if memory else NOT_AVAILABLE),
        ("C compiler", facts.cc),
        ("Go", facts.go),
        ("load generator", facts.loadgen),
        ("network path", f"{facts.network_path} ({', '.join(facts.load_targets) or 'no target'})"),
        ("CPU isolation", facts.cpu_isolation),
        ("server CPUs", fmt_levels(tuple(c for c in facts.server_cpu_list if c), str)),
        ("load per connection", fmt_levels(facts.bandwidth_per_connection_bps, fmt_bandwidth)),
        ("warm-up / measured / sample interval (s)",
         f"{fmt_levels(facts.warmup_s)} / {fmt_levels(facts.measure_s)} / "
         f"{fmt_levels(facts.sample_interval_s)}"),
        ("cells", f"{facts.cells_ok} ok, {facts.cells_failed} failed, "
                  f"{facts.cells_pending} pending, of {facts.cells_planned} planned"),
        ("tracer", f"{fmt_levels(facts.tracer_methods, str)}; own CPU up to "
                   f"{fmt(facts.tracer_cpu_seconds_max, 'seconds')} s per cell "
                   f"({fmt(facts.tracer_cpu_pct_max, 'cpu')}% of one CPU)"),
        ("achieved load", f"{fmt(100 * facts.load_ratio_min, 'pct')}% to "
                          f"{fmt(100 * facts.load_ratio_max, 'pct')}% of target"),
        ("cleaning rule", f"{facts.cleaning_rule}: {cleaning.MEANING[facts.cleaning_rule]}"),
        *(("imported file", f"{path} (sha256 {sha})") for path, sha in facts.imported_files),
    ]
    rows = "".join(f"<tr><th class=\"text\">{escape(k)}</th><td class=\"text\">{escape(v)}</td>"
                   "</tr>" for k, v in items)
    return f"<table>{rows}</table>"


def _figure(png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{escape(png.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(png.name)}</figcaption></figure>")


def _figures(pngs: list[Path], stems: tuple[str, ...]) -> list[str]:
    return [_figure(p) for p in pngs if p.stem in stems or any(
        p.stem.startswith(s) for s in stems if s.endswith("_"))]


def _methods_text() -> str:
    level = int(round(CONFIDENCE * 100))
    return (
        "<p>Statistics use only samples outside the warm-up window. The repetition is the unit "
        f"of replication: per condition, the mean of repetition means with a {level}% BCa "
        f"bootstrap interval ({N_RESAMPLES_REPS} resamples, seed {SEED}) and the Student-t "
        "interval beside it. A single repetition (e.g. a legacy log) gets a studentized "
        f"moving-block bootstrap interval within the run ({N_RESAMPLES_BLOCKS} resamples; block "
        "length: the larger of the Politis-White and the AR(1) plug-in rules), never an i.i.d. "
        "bootstrap of autocorrelated samples. Tests are Holm-corrected over connection levels."
        "</p>")


def _chat(run: RawRun, pngs: list[Path]) -> list[str]:
    summary = chat.summarize(run)
    if summary.empty:
        return ["<p>This run has no chat cells.</p>"]
    return [render_table(chat.table(summary)), *_figures(pngs, (chat.STEM,))]


def render(run: RawRun, inference: Inference, facts: RunFacts, figures: list[Path],
           rq3_html: str | None = None) -> str:
    pngs = [p for p in figures if p.suffix == ".png"]
    no_pair = "This run has no pair of c-fork and go-goroutine conditions to compare."
    ablation = (
        [render_table(tables.ablation_table(inference)), *_figures(pngs, ("ablation",))]
        if not inference.ablation.empty else
        ["<p>This run varies no ablation factor (output, read buffer, GOGC, GOMAXPROCS, "
         "CPUs) away from the paper's setting.</p>"]
    )
    rules = inference.rules
    cleaning_section = (
        [f"<p>Both rules ({escape(', '.join(rules))}); the main analysis uses "
         f"<b>{escape(inference.summary.rule)}</b>. {facts.no_match_screens} measured "
         "screen(s) showed no row of the server.</p>",
         render_table(tables.cleaning_table(inference))]
        if len(rules) > 1 else
        [f"<p>Rule <b>{escape(inference.summary.rule)}</b>: "
         f"{escape(cleaning.MEANING[inference.summary.rule])}.</p>"]
    )
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>papaya-bench report {escape(facts.run_id)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>papaya-bench report: run <code>{escape(facts.run_id)}</code></h1>",
        f"<p>Generated from <code>{escape(facts.raw_dir)}</code> by <code>invoke report</code>."
        "</p>", _methods_text(),
        "<h2>Run</h2>", _facts(facts),
        "<h2>Cleaning rule</h2>", *cleaning_section,
        "<h2>RQ1: mean CPU</h2>",
        render_table(tables.summary_table(inference, full=True)),
        *_figures(pngs, ("cpu_vs_connections",)),
        "<h3>Go / C ratio and tests</h3>",
        render_table(tables.rq1_table(inference, full=True), no_pair),
        "<h3>CPU against connections</h3>",
        render_table(tables.scaling_table(inference, full=True)),
        "<h3>User/system split and context switches</h3>",
        render_table(tables.split_table(inference, full=True)),
        *_figures(pngs, ("cpu_split",)),
        "<h2>RQ2: stability of CPU</h2>",
        render_table(tables.rq2_table(inference, full=True), no_pair),
        *_figures(pngs, ("cv_vs_connections", "acf", "trace_")),
        "<h3>Every repetition</h3>", render_table(tables.cells_table(inference)),
        "<h2>Ablations</h2>", *ablation,
        "<h2>Chat service</h2>", *_chat(run, pngs),
        *(["<h2>RQ3: portability</h2>", rq3_html] if rq3_html is not None else []),
        "<h2>Failed cells</h2>", _cell_list(run, run.failed, "No cell failed."),
        "<h2>Pending cells</h2>", _cell_list(run, run.pending, "No cell is pending."),
        "</body></html>",
    ])


def write_report(run: RawRun, inference: Inference, facts: RunFacts, figures: list[Path],
                 html_path: Path, rq3_html: str | None = None) -> Path:
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render(run, inference, facts, figures, rq3_html), encoding="utf-8")
    return html_path
