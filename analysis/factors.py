"""Which factors a run varies, how conditions are keyed, and which setting is the baseline.

A condition is every factor of a cell except the repetition. Besides the core factors every
run has, a run may carry ablation factors (output, read_buffer, gogc, gomaxprocs, or any
key a future config adds); they are discovered from the manifest rather than listed, so a
new factor is grouped on without touching the analysis. Ablation factors are kept as text
("default" where the manifest has null, "n/a" where the factor does not apply to a server,
e.g. GOGC for the C server), so mixed values never break sorting or grouping.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

CORE_FACTORS = ("server", "workload", "connections", "bandwidth_bps", "message", "cpus",
                "repetition")
NOT_APPLICABLE = "n/a"
DEFAULT = "default"

# The paper-faithful setting of each known ablation factor; anything else is an ablation.
BASELINES = {"output": "paper", "read_buffer": DEFAULT, "gogc": DEFAULT, "gomaxprocs": "cpus"}
# What "default" means per server where the servers differ (experiments/servers/README.md:
# the C server reads 4096 bytes at a time, the Go server 1024). A run that sets the size
# explicitly for both servers (ablation.toml: 1024 and 4096) has no "default" cells; its
# paper setting is then each server at its own size.
SERVER_DEFAULT_LEVELS = {"read_buffer": {"c-fork": "4096", "go-goroutine": "1024"}}
# The workload the paper is about; other workloads (e.g. chat) are reported, not compared.
PAPER_WORKLOAD = "sink"
LABELS = {
    "server": "server", "workload": "workload", "connections": "connections",
    "bandwidth_bps": "bandwidth (bit/s)", "message": "message", "cpus": "CPUs",
    "repetition": "repetition", "output": "output", "read_buffer": "read buffer (B)",
    "gogc": "GOGC", "gomaxprocs": "GOMAXPROCS",
}


def label(column: str) -> str:
    return LABELS.get(column, column.replace("_", " "))


def extra_factor_names(factor_dicts: Iterable[dict[str, Any]]) -> list[str]:
    """Factor keys beyond the core ones, in order of first appearance."""
    seen: list[str] = []
    for factors in factor_dicts:
        for key in factors:
            if key not in CORE_FACTORS and key not in seen:
                seen.append(key)
    return seen


def extra_value(value: Any) -> str:
    """An ablation factor's value as text: null means the server's default."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return DEFAULT
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def condition_keys(frame: pd.DataFrame, extras: list[str]) -> list[str]:
    """Grouping keys of a condition: all factors but the repetition, connections last."""
    keys = ["server", "workload", "bandwidth_bps", "message", "cpus", *extras, "connections"]
    return [k for k in keys if k in frame.columns]


def varying(frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The columns that take more than one value in ``frame``: what a table must show."""
    return [c for c in columns if c in frame.columns and frame[c].nunique(dropna=False) > 1]


def server_specific(frame: pd.DataFrame, server: str, extras: list[str]) -> list[str]:
    """Ablation factors that do not apply to ``server`` (all its cells say "n/a")."""
    mine = frame[frame["server"] == server]
    return [c for c in extras
            if not mine.empty and (mine[c] == NOT_APPLICABLE).all()]


def baseline_level(frame: pd.DataFrame, column: str) -> Any:
    """The paper-faithful level of a factor: the known baseline, the fewest CPUs, or else
    the most common level (ties: first in sorted order)."""
    if column == "cpus":
        return frame["cpus"].min()
    if column in BASELINES:
        return BASELINES[column]
    counts = frame[column].value_counts()
    counts = counts[counts.index != NOT_APPLICABLE]
    if counts.empty:
        return NOT_APPLICABLE
    return sorted(counts[counts == counts.max()].index)[0]


def at_baseline(frame: pd.DataFrame, reference: pd.DataFrame, extras: list[str], *,
                except_for: str | None = None, include_cpus: bool = False) -> pd.Series:
    """Rows whose ablation factors (and CPUs if asked) are at their baseline, except one.

    "n/a" counts as baseline: GOGC=n/a is simply the C server at its only setting.
    ``reference`` supplies the baselines (e.g. the full cell table), so a slice of rows is
    judged against the whole run.
    """
    mask = pd.Series(True, index=frame.index)
    columns = [c for c in extras if c in frame.columns]
    if include_cpus and "cpus" in frame.columns:
        columns.append("cpus")
    for column in columns:
        if column == except_for:
            continue
        base = baseline_level(reference, column)
        ok = (frame[column] == base) | (frame[column] == NOT_APPLICABLE)
        if uses_server_defaults(reference, column) and "server" in frame.columns:
            own = frame["server"].map(SERVER_DEFAULT_LEVELS[column])
            ok |= frame[column] == own
        mask &= ok
    return mask


def uses_server_defaults(reference: pd.DataFrame, column: str) -> bool:
    """True when the run sets ``column`` explicitly and never at "default", so its paper
    setting is each server at its own default (see SERVER_DEFAULT_LEVELS)."""
    return (column in SERVER_DEFAULT_LEVELS and column in reference.columns
            and not (reference[column] == DEFAULT).any())


def paper_workload(frame: pd.DataFrame) -> object:
    """The workload the paper's comparisons use: "sink" if the run has it, else the most
    common one (an imported or future run may name another)."""
    if "workload" not in frame.columns or frame["workload"].isna().all():
        return None
    if (frame["workload"] == PAPER_WORKLOAD).any():
        return PAPER_WORKLOAD
    return frame["workload"].value_counts().index[0]


def ablation_factors(frame: pd.DataFrame, extras: list[str]) -> list[str]:
    """Factors the run varies away from the baseline: ablation columns and CPUs."""
    names = []
    for column in [*extras, "cpus"]:
        if column not in frame.columns:
            continue
        base = baseline_level(frame, column)
        levels = set(frame[column].dropna().unique()) - {base, NOT_APPLICABLE}
        if levels:
            names.append(column)
    return names

