"""Figures for the paper (PDF) and for people (PNG), drawn from the computed statistics.

RQ1 and RQ2 figures show the baseline conditions (ablation factors at their paper-faithful
setting), one panel per CPU allotment; the ablations have their own figure
(``analysis.figures_ablation``).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from analysis import chat, cleaning, figures_ablation
from analysis.inference import Inference
from analysis.plotstyle import (
    FIGSIZE,
    TRACE_FIGSIZE,
    clear_figures,
    log2_connections_axis,
    save,
    styles,
    theme,
)
from analysis.rawdata import RawRun
from analysis.summary import Summary, measured_samples
from analysis.timeseries import acf
from analysis.withinrun import MAX_LAG

__all__ = ["clear_figures", "draw_all", "trace_cell"]


def _panels(groups: pd.DataFrame) -> tuple[Figure, list[tuple[int, Axes]]]:
    """One panel per CPU allotment, stacked so the figure keeps a column's width, sharing
    both axes so panels compare directly."""
    cpus_levels = sorted(groups["cpus"].dropna().unique()) or [math.nan]
    height = FIGSIZE[1] * (1 if len(cpus_levels) == 1 else 0.8 * len(cpus_levels))
    fig, axes = plt.subplots(len(cpus_levels), 1, figsize=(FIGSIZE[0], height), sharex=True,
                             sharey=True, squeeze=False)
    return fig, list(zip(cpus_levels, axes[:, 0], strict=True))


def _levels(frame: pd.DataFrame) -> list[int]:
    return sorted(int(c) for c in frame["connections"].dropna().unique())


def _line_with_band(groups: pd.DataFrame, y: str, low: str, high: str, ylabel: str,
                    figures_dir: Path, stem: str) -> list[Path]:
    servers = sorted(groups["server"].unique())
    style = styles(servers)
    fig, panels = _panels(groups)
    for cpus, ax in panels:
        panel = groups[(groups["cpus"] == cpus) | pd.isna(cpus)].sort_values("connections")
        sns.lineplot(
            data=panel, x="connections", y=y, hue="server", style="server",
            hue_order=servers, style_order=servers,
            palette={s: style[s]["color"] for s in servers},
            markers={s: style[s]["marker"] for s in servers},
            dashes={s: style[s]["dashes"] for s in servers},
            errorbar=None, ax=ax,
        )
        for server in servers:
            rows = panel[panel["server"] == server]
            # The band is the interval the tables call primary, so figure and table agree;
            # where a condition has no interval the band has a gap.
            ax.fill_between(rows["connections"], rows[low], rows[high], alpha=0.2,
                            color=style[server]["color"], hatch=style[server]["hatch"],
                            linewidth=0)
        log2_connections_axis(ax, _levels(groups))
        # Stacked panels share one y label; per-panel labels would overlap.
        ax.set_ylabel(ylabel if len(panels) == 1 else "")
        # Start at zero so ratios between lines read true, but leave headroom: a flat line
        # at the data maximum would otherwise sit on the frame.
        top = pd.concat([panel[y], panel[high]]).max()
        if pd.notna(top) and top > 0:
            ax.set_ylim(0, top * 1.15)
        if len(panels) > 1:
            ax.set_title(f"{int(cpus)} CPU(s) for the server", fontsize="small")
            if ax is not panels[-1][1]:
                ax.set_xlabel("")
        ax.grid(True, which="major", alpha=0.3)
        if ax is panels[0][1]:
            ax.legend(title=None, fontsize="small")
        elif ax.get_legend() is not None:
            ax.get_legend().remove()
    if len(panels) > 1:
        fig.supylabel(ylabel, fontsize="medium")
    fig.tight_layout()
    return save(fig, figures_dir, stem)


def cpu_vs_connections(summary: Summary, figures_dir: Path) -> list[Path]:
    return _line_with_band(
        summary.baseline(summary.groups), "cpu_pct_mean", "cpu_pct_ci_low", "cpu_pct_ci_high",
        "Mean server CPU (% of one CPU)", figures_dir, "cpu_vs_connections",
    )


def cv_vs_connections(summary: Summary, figures_dir: Path) -> list[Path]:
    return _line_with_band(
        summary.baseline(summary.groups), "cv_mean_of_reps", "cv_ci_low", "cv_ci_high",
        "CV of CPU (sd/mean, unitless)", figures_dir, "cv_vs_connections",
    )


def cpu_split(summary: Summary, figures_dir: Path) -> list[Path]:
    """(a) user and system CPU, stacked, per server and level; (b) context switches per
    second per connection. Fewest CPUs only: the split is about the model, not the cores."""
    groups = summary.baseline(summary.groups)
    groups = groups[groups["cpus"] == groups["cpus"].min()] if groups["cpus"].notna().any() \
        else groups
    servers = sorted(groups["server"].unique())
    style = styles(servers)
    levels = _levels(groups)
    fig, (bars, ctx) = plt.subplots(2, 1, figsize=(FIGSIZE[0], FIGSIZE[1] * 1.7))
    width = 0.8 / max(len(servers), 1)
    handles = []
    for i, server in enumerate(servers):
        rows = groups[groups["server"] == server].set_index("connections")
        x = np.arange(len(levels)) + (i - (len(servers) - 1) / 2) * width
        user = np.array([rows["user_pct_mean"].get(c, np.nan) if "user_pct_mean" in rows
                         else np.nan for c in levels], dtype=float)
        system = np.array([rows["system_pct_mean"].get(c, np.nan) if "system_pct_mean" in rows
                           else np.nan for c in levels], dtype=float)
        color = style[server]["color"]
        bars.bar(x, user, width, color=color, edgecolor="black", linewidth=0.5)
        bars.bar(x, system, width, bottom=np.nan_to_num(user), facecolor="white",
                 edgecolor=color, hatch=style[server]["system_hatch"], linewidth=0.8)
        handles += [Patch(facecolor=color, edgecolor="black", label=f"{server} user"),
                    Patch(facecolor="white", edgecolor=color, hatch=style[server]["system_hatch"],
                          label=f"{server} system")]
        per_conn = rows.reindex(levels)
        ctx.errorbar(levels, per_conn["ctx_per_s_per_conn"],
                     yerr=_yerr(per_conn, "ctx_per_s_per_conn", "ctx_per_s_per_conn_t_low",
                                "ctx_per_s_per_conn_t_high"),
                     color=color, marker=style[server]["marker"],
                     linestyle=style[server]["linestyle"], capsize=2, label=server)
    bars.set_xticks(np.arange(len(levels)), [str(c) for c in levels])
    bars.set_xlabel("Concurrent connections")
    bars.set_ylabel("Mean CPU (% of one CPU)")
    bars.axhline(0, color="black", linewidth=0.5)
    stacked = groups[["user_pct_mean", "system_pct_mean"]].clip(lower=0).sum(axis=1) \
        if {"user_pct_mean", "system_pct_mean"} <= set(groups.columns) else pd.Series()
    if not stacked.empty and stacked.max() > 0:
        bars.set_ylim(top=stacked.max() * (1.25 + 0.12 * len(servers)))  # room for the legend
    bars.legend(handles=handles, fontsize="x-small", ncol=2, loc="upper left")
    bars.set_title("(a) user and system time", fontsize="small")
    log2_connections_axis(ctx, levels)
    ctx.set_ylabel("Context switches\n(1/s per connection)")
    ctx.set_ylim(bottom=0)
    ctx.grid(True, alpha=0.3)
    ctx.legend(fontsize="x-small")
    ctx.set_title("(b) voluntary + involuntary context switches", fontsize="small")
    fig.tight_layout()
    return save(fig, figures_dir, "cpu_split")


def _yerr(frame: pd.DataFrame, mid: str, low: str, high: str) -> np.ndarray:
    """Error bar lengths from interval bounds; zero (no bar) where there is no interval."""
    lower = (frame[mid] - frame[low]).to_numpy(dtype=float)
    upper = (frame[high] - frame[mid]).to_numpy(dtype=float)
    return np.nan_to_num(np.vstack([lower, upper]), nan=0.0).clip(min=0)


def trace_cell(summary: Summary, server: str) -> pd.Series:
    """The cell whose trace represents ``server``: baseline factors, highest load, fewest
    CPUs, first repetition."""
    cells = summary.cells
    candidates = summary.baseline(cells[cells["server"] == server], include_cpus=True)
    if candidates.empty:
        candidates = cells[cells["server"] == server]
    ordered = candidates.assign(_neg_conn=-candidates["connections"]).sort_values(
        ["_neg_conn", "cpus", "repetition"], na_position="last"
    )
    return ordered.iloc[0]


def trace_figure(run: RawRun, summary: Summary, server: str, figures_dir: Path) -> list[Path]:
    cell = trace_cell(summary, server)
    style = styles(summary.paper_servers())[server]
    trace = run.samples[run.samples["cell_id"] == cell["cell_id"]].sort_values("t_rel_s")
    fig, ax = plt.subplots(figsize=TRACE_FIGSIZE)
    ax.plot(trace["t_rel_s"], trace["cpu_pct"], color=style["color"], marker=style["marker"],
            markersize=3, linewidth=1, label="CPU (user+system)")
    if cleaning.has_top_screens(trace):
        no_match = trace[pd.to_numeric(trace[cleaning.NO_MATCH], errors="coerce") == 1]
        if not no_match.empty:
            ax.plot(no_match["t_rel_s"], no_match["cpu_pct"], linestyle="none", marker="x",
                    color="black", markersize=4, label="no server row in top")
    warm = trace[pd.to_numeric(trace["warmup"]) == 1]
    warmup_end = float(cell["warmup_s"]) if pd.notna(cell["warmup_s"]) else (
        float(warm["t_rel_s"].max()) if not warm.empty else 0.0
    )
    if warmup_end > 0:
        ax.axvspan(min(0.0, float(trace["t_rel_s"].min())), warmup_end, facecolor="0.85",
                   linewidth=0, label="warm-up (excluded)")
    mean = cleaning.apply(measured_samples(trace), summary.rule)["cpu_pct"].mean()
    ax.axhline(mean, color="0.2", linestyle="--", linewidth=1, label="measured mean")
    ax.set_xlabel("Time since load start (s)")
    ax.set_ylabel("Server CPU (% of one CPU)")
    ax.set_title(f"{server}, {int(cell['connections'])} connections, "
                 f"repetition {int(cell['repetition'])}", fontsize="small")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", loc="best")
    fig.tight_layout()
    return save(fig, figures_dir, f"trace_{server}")


def acf_figure(summary: Summary, figures_dir: Path) -> list[Path]:
    """Autocorrelation of each server's representative trace (the one the trace figure
    shows), with the +-1.96/sqrt(n) band of white noise."""
    servers = summary.paper_servers()
    style = styles(servers)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    widest = 0
    band = math.nan
    for i, server in enumerate(servers):
        cell = trace_cell(summary, server)
        values = summary.values.get(cell["cell_id"], np.array([]))
        if values.size < 4:
            continue
        interval = float(cell["sample_interval_s"]) if pd.notna(cell["sample_interval_s"]) \
            else 1.0
        rho = acf(values, min(MAX_LAG, values.size - 2))
        lags = np.arange(1, rho.size) * interval
        offset = (i - (len(servers) - 1) / 2) * 0.12 * interval
        ax.vlines(lags + offset, 0, rho[1:], color=style[server]["color"], linewidth=1.2,
                  linestyle=style[server]["linestyle"])
        ax.plot(lags + offset, rho[1:], linestyle="none", marker=style[server]["marker"],
                markersize=3, color=style[server]["color"],
                label=f"{server} ({int(cell['connections'])} conn.)")
        widest = max(widest, int(lags[-1] / interval) if lags.size else 0)
        band = 1.96 / math.sqrt(values.size)
    if math.isfinite(band):
        ax.axhspan(-band, band, facecolor="0.85", linewidth=0, label="white-noise 95% band")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel("Lag (s)")
    ax.set_ylabel("Autocorrelation of CPU (unitless)")
    ax.set_ylim(-1, 1)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper right")
    fig.tight_layout()
    return save(fig, figures_dir, "acf")


def draw_all(run: RawRun, inference: Inference, figures_dir: Path) -> list[Path]:
    theme()
    summary = inference.summary
    clear_figures(figures_dir)
    paths = cpu_vs_connections(summary, figures_dir)
    paths += cv_vs_connections(summary, figures_dir)
    paths += cpu_split(summary, figures_dir)
    for server in summary.paper_servers():
        paths += trace_figure(run, summary, server, figures_dir)
    paths += acf_figure(summary, figures_dir)
    if not inference.ablation.empty:
        paths += figures_ablation.draw(inference.ablation, figures_dir)
    paths += chat.figure(chat.summarize(run), figures_dir)
    return paths
