"""Shared look of every figure: sizes, per-server styles, saving as PDF and PNG.

Servers differ in marker, line style and hatch as well as colour, so every figure survives
grayscale printing.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI and remote hosts have no display

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402

FORMATS = ("pdf", "png")
# Single-column IEEE width is about 3.5 in; drawing at that size keeps fonts legible.
FIGSIZE = (3.5, 2.6)
TRACE_FIGSIZE = (3.5, 1.9)  # flat, because the paper stacks one per server in a column
_MARKERS = ["o", "s", "^", "D", "v"]
_DASHES = ["", (4, 2), (1, 1), (6, 2, 1, 2), (3, 3)]
_HATCHES = ["", "///", "\\\\\\", "xx", ".."]
_SYSTEM_HATCHES = ["////", "\\\\\\\\", "xxxx", "....", "++++"]


def theme() -> None:
    sns.set_theme(style="ticks", context="paper")


def styles(servers: list[str]) -> dict[str, dict[str, object]]:
    palette = sns.color_palette("colorblind", n_colors=max(len(servers), 1))
    return {
        server: {
            "color": palette[i],
            "marker": _MARKERS[i % len(_MARKERS)],
            "dashes": _DASHES[i % len(_DASHES)],
            "linestyle": (0, _DASHES[i % len(_DASHES)]) if _DASHES[i % len(_DASHES)] else "-",
            "hatch": _HATCHES[i % len(_HATCHES)],
            "system_hatch": _SYSTEM_HATCHES[i % len(_SYSTEM_HATCHES)],
        }
        for i, server in enumerate(servers)
    }


def save(fig: Figure, figures_dir: Path, stem: str) -> list[Path]:
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


def log2_connections_axis(ax: Axes, levels: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(levels))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(level) for level in levels])
    ax.set_xlabel("Concurrent connections (log$_2$ scale)")


def clear_figures(figures_dir: Path) -> None:
    """Drop figures of an earlier report so a server absent from this run leaves none behind."""
    if figures_dir.is_dir():
        for path in figures_dir.iterdir():
            if path.suffix.lstrip(".") in FORMATS:
                path.unlink()
