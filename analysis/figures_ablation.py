"""The ablation figure: a paired dot plot of Go/C ratios, baseline against ablated.

One row per ablation (factor = level), one panel per connection level. The open circle is
the ratio at the paper-faithful baseline, the filled square the ratio with that one factor
changed, each with its 95% interval, joined by a line: a line moving towards the dashed
parity line at 1 is a confound explaining part of the gap. Shapes, not colours, carry the
meaning, so the figure reads in grayscale.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.factors import label
from analysis.plotstyle import FIGSIZE, save

STEM = "ablation"


def row_label(factor: str, level: object) -> str:
    return f"{label(factor)} = {level}"


def _errors(mid: pd.Series, low: pd.Series, high: pd.Series) -> np.ndarray:
    lower = (mid - low).to_numpy(dtype=float)
    upper = (high - mid).to_numpy(dtype=float)
    return np.nan_to_num(np.vstack([lower, upper]), nan=0.0).clip(min=0)


def draw(ablation: pd.DataFrame, figures_dir: Path) -> list[Path]:
    levels = sorted(int(c) for c in ablation["connections"].unique())
    labels = list(dict.fromkeys(row_label(f, lv) for f, lv in
                                zip(ablation["factor"], ablation["level"], strict=True)))
    height = 0.9 + 0.32 * len(labels)
    fig, axes = plt.subplots(len(levels), 1, figsize=(FIGSIZE[0], height * len(levels)),
                             sharex=True, squeeze=False)
    for conn, ax in zip(levels, axes[:, 0], strict=True):
        rows = ablation[ablation["connections"] == conn].copy()
        rows["y"] = [labels.index(row_label(f, lv)) for f, lv in
                     zip(rows["factor"], rows["level"], strict=True)]
        y = rows["y"].to_numpy(dtype=float)
        for yy, base, ratio in zip(y, rows["base_ratio"], rows["ratio"], strict=True):
            ax.plot([base, ratio], [yy + 0.15, yy - 0.15], color="0.5", linewidth=0.8)
        ax.errorbar(rows["base_ratio"], y + 0.15,
                    xerr=_errors(rows["base_ratio"], rows["base_ci_low"], rows["base_ci_high"]),
                    fmt="o", mfc="white", mec="black", ecolor="black", capsize=2, markersize=4,
                    label="baseline (paper setting)")
        ax.errorbar(rows["ratio"], y - 0.15,
                    xerr=_errors(rows["ratio"], rows["ci_low"], rows["ci_high"]),
                    fmt="s", color="black", capsize=2, markersize=4, label="ablated")
        ax.axvline(1.0, color="0.3", linestyle="--", linewidth=0.8, label="parity (Go = C)")
        ax.set_yticks(range(len(labels)), labels, fontsize="x-small")
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.set_title(f"{conn} connections", fontsize="small")
        ax.grid(True, axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("Go/C ratio of mean CPU (unitless), 95% CI")
    # Below the panels, where it cannot hide a point.
    handles, texts = axes[0, 0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.3 / (height * len(levels)), 1, 1))
    fig.legend(handles, texts, loc="lower center", ncol=3, fontsize="x-small", frameon=False)
    return save(fig, figures_dir, STEM)
