"""Which Go condition is compared with which C condition.

Two conditions form a pair when they agree on every factor except the server. Factors that
apply to one server only (GOGC and GOMAXPROCS are "n/a" for the C server) are not matched:
the C server at its only setting is the reference for the Go server at each of its
settings. The pair keeps the value of such a factor from the server it applies to.
"""

from __future__ import annotations

import pandas as pd

from analysis.factors import DEFAULT, SERVER_DEFAULT_LEVELS, server_specific, uses_server_defaults
from analysis.summary import C_SERVER, GO_SERVER, Summary

PAIR_ID = "pair_id"


def pair_keys(summary: Summary) -> list[str]:
    """The columns that identify a pair: the condition keys without the server."""
    return [k for k in summary.keys if k != "server"]


def family_keys(summary: Summary) -> list[str]:
    """The columns that identify a family of tests: a pair's keys without connections.

    Holm's correction runs over the connection levels of one family, as the issue asks.
    """
    return [k for k in pair_keys(summary) if k != "connections"]


def _default_pairs(left: pd.DataFrame, right: pd.DataFrame, match: list[str],
                   column: str) -> pd.DataFrame:
    """Pairs of each server at its own default of ``column`` (C 4096 B against Go 1024 B
    for the read buffer), labelled "default": the paper's setting, in a run that only sets
    the factor explicitly."""
    own = SERVER_DEFAULT_LEVELS[column]
    c_side = left[left[column] == own[C_SERVER]].assign(**{column: DEFAULT})
    go_side = right[right[column] == own[GO_SERVER]].assign(**{column: DEFAULT})
    return c_side.merge(go_side, on=match, how="inner")


def pairs(summary: Summary) -> pd.DataFrame:
    """One row per (C condition, Go condition) pair: the pair keys, and each side's
    ``condition_id`` as ``c_condition`` and ``go_condition``."""
    groups = summary.groups
    keys = pair_keys(summary)
    empty = pd.DataFrame(columns=[PAIR_ID, *keys, "c_condition", "go_condition"])
    if groups.empty:
        return empty
    c = groups[groups["server"] == C_SERVER]
    go = groups[groups["server"] == GO_SERVER]
    if c.empty or go.empty:
        return empty
    c_only = server_specific(groups, GO_SERVER, summary.extras)  # n/a for Go
    go_only = server_specific(groups, C_SERVER, summary.extras)  # n/a for C
    match = [k for k in keys if k not in c_only and k not in go_only]
    left = c[[*match, *c_only, "condition_id"]].rename(columns={"condition_id": "c_condition"})
    right = go[[*match, *go_only, "condition_id"]].rename(
        columns={"condition_id": "go_condition"})
    # pandas matches missing keys (an imported run's unknown bandwidth) to each other.
    merged = left.merge(right, on=match, how="inner")
    for column in match:
        if uses_server_defaults(groups, column):
            merged = pd.concat([merged, _default_pairs(left, right, match, column)],
                               ignore_index=True)
    if merged.empty:
        return empty
    merged[PAIR_ID] = merged["c_condition"] + " vs " + merged["go_condition"]
    merged = merged.sort_values(keys, na_position="first", ignore_index=True)
    return merged[[PAIR_ID, *keys, "c_condition", "go_condition"]]
