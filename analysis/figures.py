"""Figures for the paper (PDF) and for people (PNG), drawn from the summary frames.

Servers differ in marker and line style as well as colour so the figures survive
grayscale printing.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI and remote hosts have no display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402

from analysis.rawdata import RawRun  # noqa: E402
from analysis.summary import CONFIDENCE, Summary, measured_samples  # noqa: E402

FORMATS = ("pdf", "png")
# Single-column IEEE width is about 3.5 in; drawing at that size keeps fonts legible.
FIGSIZE = (3.5, 2.6)
TRACE_FIGSIZE = (3.5, 1.9)  # flat, because the paper stacks one per server in a column
_MARKERS = ["o", "s", "^", "D", "v"]
_DASHES = ["", (4, 2), (1, 1), (6, 2, 1, 2), (3, 3)]
_HATCHES = ["", "///", "\\\\\\", "xx", ".."]


def _styles(servers: list[str]) -> dict[str, dict[str, object]]:
    palette = sns.color_palette("colorblind", n_colors=max(len(servers), 1))
    return {
        server: {
            "color": palette[i],
            "marker": _MARKERS[i % len(_MARKERS)],
            "dashes": _DASHES[i % len(_DASHES)],
            "hatch": _HATCHES[i % len(_HATCHES)],
        }
        for i, server in enumerate(servers)
    }


def _save(fig: Figure, figures_dir: Path, stem: str) -> list[Path]:
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = figures_dir / f"{stem}.{fmt}"
        # A fixed creation date keeps the PDF byte-stable across rebuilds of the same run.
        metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
        fig.savefig(path, dpi=200, bbox_inches="tight", metadata=metadata)
        paths.append(path)
    plt.close(fig)
    return paths


def _log2_connections_axis(ax: Axes, levels: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(levels))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(level) for level in levels])
    ax.set_xlabel("Concurrent connections (log$_2$ scale)")


def _panels(groups: pd.DataFrame) -> tuple[Figure, list[tuple[int, Axes]]]:
    """One panel per CPU allotment, sharing the y axis so panels compare directly."""
    cpus_levels = sorted(groups["cpus"].unique())
    width = FIGSIZE[0] * len(cpus_levels)
    fig, axes = plt.subplots(1, len(cpus_levels), figsize=(width, FIGSIZE[1]), sharey=True,
                             squeeze=False)
    return fig, list(zip(cpus_levels, axes[0], strict=True))


def _line_with_band(groups: pd.DataFrame, y: str, low: str, high: str, ylabel: str,
                    figures_dir: Path, stem: str) -> list[Path]:
    servers = sorted(groups["server"].unique())
    styles = _styles(servers)
    fig, panels = _panels(groups)
    for cpus, ax in panels:
        panel = groups[groups["cpus"] == cpus].sort_values("connections")
        sns.lineplot(
            data=panel, x="connections", y=y, hue="server", style="server",
            hue_order=servers, style_order=servers,
            palette={s: styles[s]["color"] for s in servers},
            markers={s: styles[s]["marker"] for s in servers},
            dashes={s: styles[s]["dashes"] for s in servers},
            errorbar=None, ax=ax,
        )
        for server in servers:
            rows = panel[panel["server"] == server]
            # The band is the t-interval over repetition means from the summary, so the
            # figure and the table show the same interval; NaN (one repetition) draws none.
            ax.fill_between(rows["connections"], rows[low], rows[high], alpha=0.2,
                            color=styles[server]["color"], hatch=styles[server]["hatch"],
                            linewidth=0)
        _log2_connections_axis(ax, sorted(int(c) for c in groups["connections"].unique()))
        ax.set_ylabel(ylabel)
        # Start at zero so ratios between lines read true, but leave headroom: a flat line
        # at the data maximum would otherwise sit on the frame.
        top = pd.concat([panel[y], panel[high]]).max()
        if pd.notna(top) and top > 0:
            ax.set_ylim(0, top * 1.15)
        if len(panels) > 1:
            ax.set_title(f"{cpus} CPU(s) for the server")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(title=None, fontsize="small")
    fig.tight_layout()
    return _save(fig, figures_dir, stem)


def cpu_vs_connections(summary: Summary, figures_dir: Path) -> list[Path]:
    level = int(CONFIDENCE * 100)
    return _line_with_band(
        summary.groups, "cpu_pct_mean", "cpu_pct_ci_low", "cpu_pct_ci_high",
        f"Mean server CPU (% of one CPU)\nband: {level}% t-interval", figures_dir,
        "cpu_vs_connections",
    )


def cv_vs_connections(summary: Summary, figures_dir: Path) -> list[Path]:
    return _line_with_band(
        summary.groups, "cv_mean_of_reps", "cv_mean_of_reps_ci_low", "cv_mean_of_reps_ci_high",
        "CV of CPU (sd/mean, unitless)\nmean over repetitions", figures_dir,
        "cv_vs_connections",
    )


def trace_cell(cells: pd.DataFrame, server: str) -> pd.Series:
    """The cell whose trace represents ``server``: highest load, fewest CPUs, first repetition."""
    candidates = cells[cells["server"] == server]
    ordered = candidates.assign(_neg_conn=-candidates["connections"]).sort_values(
        ["_neg_conn", "cpus", "repetition"]
    )
    return ordered.iloc[0]


def trace_figure(run: RawRun, summary: Summary, server: str, figures_dir: Path) -> list[Path]:
    cell = trace_cell(summary.cells, server)
    style = _styles(sorted(summary.cells["server"].unique()))[server]
    trace = run.samples[run.samples["cell_id"] == cell["cell_id"]].sort_values("t_rel_s")
    fig, ax = plt.subplots(figsize=TRACE_FIGSIZE)
    ax.plot(trace["t_rel_s"], trace["cpu_pct"], color=style["color"], marker=style["marker"],
            markersize=3, linewidth=1, label="CPU (user+system)")
    warm = trace[pd.to_numeric(trace["warmup"]) == 1]
    warmup_end = float(cell["warmup_s"]) if pd.notna(cell["warmup_s"]) else (
        float(warm["t_rel_s"].max()) if not warm.empty else 0.0
    )
    if warmup_end > 0:
        ax.axvspan(min(0.0, float(trace["t_rel_s"].min())), warmup_end, facecolor="0.85",
                   linewidth=0, label="warm-up (excluded)")
    mean = measured_samples(trace)["cpu_pct"].mean()
    ax.axhline(mean, color="0.2", linestyle="--", linewidth=1, label="measured mean")
    ax.set_xlabel("Time since load start (s)")
    ax.set_ylabel("Server CPU (% of one CPU)")
    ax.set_title(f"{server}, {int(cell['connections'])} connections, "
                 f"repetition {int(cell['repetition'])}", fontsize="small")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", loc="best")
    fig.tight_layout()
    return _save(fig, figures_dir, f"trace_{server}")


def clear_figures(figures_dir: Path) -> None:
    """Drop figures of an earlier report so a server absent from this run leaves none behind."""
    if figures_dir.is_dir():
        for path in figures_dir.iterdir():
            if path.suffix.lstrip(".") in FORMATS:
                path.unlink()


def draw_all(run: RawRun, summary: Summary, figures_dir: Path) -> list[Path]:
    sns.set_theme(style="ticks", context="paper")
    clear_figures(figures_dir)
    paths = cpu_vs_connections(summary, figures_dir)
    paths += cv_vs_connections(summary, figures_dir)
    for server in sorted(summary.cells["server"].unique()):
        paths += trace_figure(run, summary, server, figures_dir)
    return paths
