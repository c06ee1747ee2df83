r"""The paper's macros: every number and fact its prose states, as \newcommand values.

The prose talks about the headline conditions: ablation factors at their paper setting and
the fewest CPUs (the original study's 1 vCPU); "at max/min connections" means the highest/
lowest connection level of those. Values are LaTeX-ready (escaped) strings.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from analysis.errors import AnalysisError
from analysis.factors import NOT_APPLICABLE
from analysis.figures import trace_cell
from analysis.formatting import (
    NOT_AVAILABLE,
    fmt,
    fmt_bandwidth,
    fmt_interval,
    fmt_levels,
    fmt_p,
    fmt_plain,
)
from analysis.inference import Inference
from analysis.resampling import CONFIDENCE, N_RESAMPLES_BLOCKS, N_RESAMPLES_REPS, SEED
from analysis.runfacts import RunFacts
from analysis.summary import BCA, C_SERVER, GO_SERVER, MBB
from analysis.tables import FEW_REPS
from analysis.texescape import latex_escape

# Macro prefixes per server; macro names may only contain letters.
SERVER_PREFIX = {C_SERVER: "CFork", GO_SERVER: "Go"}
ALPHA = 1 - CONFIDENCE
LEVEL = int(round(CONFIDENCE * 100))


def _check_single_load(groups: pd.DataFrame) -> None:
    """Several workloads or bandwidths in one run would make "the CPU at N connections"
    ambiguous, so that is refused rather than silently averaged."""
    if groups.empty:
        return
    loads = groups[["workload", "bandwidth_bps"]].drop_duplicates()
    if len(loads) > 1:
        raise AnalysisError(
            "the paper's macros assume one workload and bandwidth per run; this run has "
            + "; ".join(f"{w} at {b} bit/s" for w, b in loads.itertuples(index=False))
        )


def headline(inference: Inference, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``frame`` the prose talks about: baseline factors, fewest CPUs."""
    rows = inference.summary.baseline(frame)
    if rows.empty or "cpus" not in rows or rows["cpus"].isna().all():
        return rows
    return rows[rows["cpus"] == rows["cpus"].min()]


def _value(frame: pd.DataFrame, column: str, **where: Any) -> float:
    rows = frame
    for key, value in where.items():
        rows = rows[rows[key] == value]
    if rows.empty or column not in rows:
        return math.nan
    value = rows[column].iloc[0]
    return float(value) if value is not None and not pd.isna(value) else math.nan


def _interval(low: float, high: float, kind: str) -> str:
    """Prose-ready "95% CI [a, b]", or "no interval" (one repetition, degenerate data)."""
    text = fmt_interval(low, high, kind)
    return f"{LEVEL}% CI {text}" if text != NOT_AVAILABLE else "no interval"


def _levels_phrase(levels: list[int]) -> str:
    return ", ".join(str(v) for v in levels) if levels else "none"


def _server_macros(inference: Inference, facts: RunFacts, server: str, prefix: str,
                   lo: int | None, hi: int | None) -> dict[str, str]:
    groups = headline(inference, inference.summary.groups)
    scaling = headline(inference, inference.rq1.scaling)
    mine = groups[groups["server"] == server]
    cv = mine["cv_mean_of_reps"].dropna()
    at_hi = {"server": server, "connections": hi}
    at_lo = {"server": server, "connections": lo}
    macros = {
        f"{prefix}CpuAtMaxConn": fmt(_value(groups, "cpu_pct_mean", **at_hi), "cpu"),
        f"{prefix}CpuIntervalAtMaxConn": _interval(_value(groups, "cpu_pct_ci_low", **at_hi),
                                                   _value(groups, "cpu_pct_ci_high", **at_hi),
                                                   "cpu"),
        f"{prefix}CpuTIntervalAtMaxConn": _interval(_value(groups, "cpu_pct_t_low", **at_hi),
                                                    _value(groups, "cpu_pct_t_high", **at_hi),
                                                    "cpu"),
        f"{prefix}CpuCIAtMaxConn": fmt(_value(groups, "cpu_pct_t_half", **at_hi), "cpu"),
        f"{prefix}CpuLowAtMaxConn": fmt(_value(groups, "cpu_pct_ci_low", **at_hi), "cpu"),
        f"{prefix}CpuHighAtMaxConn": fmt(_value(groups, "cpu_pct_ci_high", **at_hi), "cpu"),
        f"{prefix}CpuAtMinConn": fmt(_value(groups, "cpu_pct_mean", **at_lo), "cpu"),
        f"{prefix}RepsAtMaxConn": fmt_plain(_value(groups, "n_reps", **at_hi)),
        f"{prefix}CvAtMaxConn": fmt(_value(groups, "cv_mean_of_reps", **at_hi), "cv"),
        f"{prefix}CvIntervalAtMaxConn": _interval(_value(groups, "cv_ci_low", **at_hi),
                                                  _value(groups, "cv_ci_high", **at_hi), "cv"),
        f"{prefix}CvMin": fmt(cv.min() if not cv.empty else math.nan, "cv"),
        f"{prefix}CvMax": fmt(cv.max() if not cv.empty else math.nan, "cv"),
        f"{prefix}CellsOk": str(int((inference.summary.cells["server"] == server).sum())),
        f"{prefix}CellsPlanned": str(facts.cells_planned_per_server.get(server, 0)),
        f"{prefix}Slope": fmt(_value(scaling, "slope_cpu_pct_per_conn", server=server), "slope"),
        f"{prefix}SlopeInterval": _interval(_value(scaling, "slope_ci_low", server=server),
                                            _value(scaling, "slope_ci_high", server=server),
                                            "slope"),
        f"{prefix}Exponent": fmt(_value(scaling, "exponent", server=server), "exponent"),
        f"{prefix}ExponentInterval": _interval(_value(scaling, "exponent_ci_low", server=server),
                                               _value(scaling, "exponent_ci_high",
                                                      server=server), "exponent"),
        f"{prefix}UserAtMaxConn": fmt(_value(groups, "user_pct_mean", **at_hi), "cpu"),
        f"{prefix}SystemAtMaxConn": fmt(_value(groups, "system_pct_mean", **at_hi), "cpu"),
        f"{prefix}SystemSharePctAtMaxConn": fmt(100 * _value(groups, "system_share", **at_hi),
                                                "pct"),
        f"{prefix}CtxPerConnAtMaxConn": fmt(_value(groups, "ctx_per_s_per_conn", **at_hi),
                                            "ctx"),
        f"{prefix}CtxPerConnAtMinConn": fmt(_value(groups, "ctx_per_s_per_conn", **at_lo),
                                            "ctx"),
    }
    return {name: latex_escape(value) for name, value in macros.items()}


def _count_rejections(frame: pd.DataFrame, column: str) -> tuple[int, list[int], int]:
    """(rejections at alpha, their connection levels, tests that could be computed)."""
    if frame.empty or column not in frame:
        return 0, [], 0
    values = pd.to_numeric(frame[column], errors="coerce")
    rejected = frame[values < ALPHA]
    return len(rejected), sorted(int(c) for c in rejected["connections"]), int(
        values.notna().sum())


def _min_mwu_p(comparisons: pd.DataFrame) -> float:
    """The smallest two-sided exact Mann-Whitney p-value the repetitions allow."""
    if comparisons.empty:
        return math.nan
    n1 = int(comparisons["n_reps_go"].min())
    n2 = int(comparisons["n_reps_c"].min())
    return 2 / math.comb(n1 + n2, n1) if n1 >= 1 and n2 >= 1 else math.nan


def _rq1_sentence(comparisons: pd.DataFrame) -> str:
    if comparisons.empty:
        return ("This run has no pair of c-fork and go-goroutine conditions, so no comparison "
                "or test was made.")
    levels = len(comparisons)
    k_w, at_w, n_w = _count_rejections(comparisons, "welch_p_holm")
    k_u, _, n_u = _count_rejections(comparisons, "mwu_p_holm")
    if n_w == 0 and n_u == 0:
        return ("With a single repetition per condition there are no repetition means to "
                "test; the intervals of the ratios come from the within-run block bootstrap.")
    text = (f"Over the {levels} connection level(s), Welch's test on repetition means rejects "
            f"equal means at the {fmt_plain(100 * ALPHA)}% level after Holm's correction at "
            f"{k_w} of {n_w} level(s)")
    text += f" (connections: {_levels_phrase(at_w)})" if k_w else ""
    text += f", the Mann-Whitney test at {k_u} of {n_u}."
    p_min = _min_mwu_p(comparisons)
    if math.isfinite(p_min) and p_min >= ALPHA:
        text += (f" With so few repetitions the Mann-Whitney test cannot reach a p-value "
                 f"below {fmt(p_min, 'p')}, so it cannot reject at all; it is reported for "
                 "completeness.")
    return text


def _rq2_sentence(rq2: pd.DataFrame) -> str:
    if rq2.empty:
        return "This run has no pair of servers whose CVs could be compared."
    k_b, at_b, n_b = _count_rejections(rq2, "boot_p_holm")
    k_f, at_f, n_f = _count_rejections(rq2, "fm_p_holm")
    k_l, _, n_l = _count_rejections(rq2, "levene_p_holm")
    text = (f"After Holm's correction, the bootstrap test on the CV ratio rejects equal CVs at "
            f"{k_b} of {n_b} connection level(s)")
    text += f" ({_levels_phrase(at_b)})" if k_b else ""
    text += f", the Feltz-Miller test at {k_f} of {n_f}"
    text += f" ({_levels_phrase(at_f)})" if k_f else ""
    text += f" and Levene's test at {k_l} of {n_l}."
    few = rq2[rq2["cv_ratio_ci_method"] == BCA]
    if not few.empty and int(few[["n_reps_c", "n_reps_go"]].min().min()) < FEW_REPS:
        text += (f" With fewer than {FEW_REPS} repetitions per server the bootstrap over "
                 "repetitions has too few distinct resamples for its p-values to be trusted "
                 "(marked with a dagger in the table); read it together with the other two.")
    return text


def _periodicity_macros(inference: Inference) -> dict[str, str]:
    summary = inference.summary
    sentences = []
    macros: dict[str, str] = {}
    for prefix in SERVER_PREFIX.values():  # defined even when the run lacks the server
        for name in ("TraceAcfLagOne", "TracePeriod", "TraceFisherP"):
            macros[f"{prefix}{name}"] = NOT_AVAILABLE
    for server in summary.paper_servers():
        cell = trace_cell(summary, server)
        acf1, period, p = cell["acf_lag1"], cell["dominant_period_s"], cell["fisher_p"]
        prefix = SERVER_PREFIX.get(server)
        if prefix:
            macros[f"{prefix}TraceAcfLagOne"] = fmt(acf1, "acf")
            macros[f"{prefix}TracePeriod"] = fmt(period, "period")
            macros[f"{prefix}TraceFisherP"] = fmt_p(p)
        if pd.isna(period):
            sentences.append(f"the {server} trace is too short or flat for a periodogram")
            continue
        verdict = ("a periodic component" if not pd.isna(p) and p < ALPHA
                   else "no periodic component distinguishable from noise")
        sentences.append(
            f"the {server} trace has lag-1 autocorrelation {fmt(acf1, 'acf')} and its largest "
            f"periodogram peak at a period of {fmt(period, 'period')} s (Fisher's g test "
            f"p = {fmt_p(p)}: {verdict})")
    text = "In the traces of Fig.~\\ref{fig:traces}, " + "; ".join(
        latex_escape(s) for s in sentences) + "."
    macros = {k: latex_escape(v) for k, v in macros.items()}
    macros["PeriodicitySentence"] = text
    return macros


def _band_note(groups: pd.DataFrame, column: str) -> str:
    methods = set(groups[column].dropna()) if column in groups else set()
    parts = []
    if BCA in methods:
        parts.append(f"{LEVEL}\\% BCa bootstrap intervals over repetitions")
    if MBB in methods:
        parts.append(f"{LEVEL}\\% studentized block-bootstrap intervals within the single "
                     "repetition")
    if not parts:
        return "No interval could be computed, so no band is drawn."
    note = "Shaded bands: " + " or ".join(parts)
    return note + ("; none where no interval exists." if "none" in methods else ".")


def build_macros(inference: Inference, facts: RunFacts) -> dict[str, str]:
    """Macro name -> LaTeX-ready value (already escaped)."""
    summary = inference.summary
    _check_single_load(summary.baseline(summary.groups))
    groups = headline(inference, summary.groups)
    comparisons = headline(inference, inference.rq1.comparisons)
    rq2 = headline(inference, inference.rq2)
    levels = sorted(int(c) for c in groups["connections"].dropna().unique()) \
        if not groups.empty else []
    lo, hi = (levels[0], levels[-1]) if levels else (None, None)
    host = facts.host
    memory = host.get("memory_bytes")

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
        "ServerCpuList": fmt_levels(tuple(c for c in facts.server_cpu_list if c), str)
        if any(facts.server_cpu_list) else "unknown",
        "TracerMethod": fmt_levels(facts.tracer_methods, str),
        "BandwidthPerConnection": fmt_levels(facts.bandwidth_per_connection_bps, fmt_bandwidth)
        if facts.bandwidth_per_connection_bps else "an unrecorded bandwidth",
        "ConnectionLevels": fmt_levels(facts.connection_levels, str),
        "NetworkPath": {"loopback": "the loopback interface", "network": "the network"}.get(
            facts.network_path, "an unrecorded path"),
        "CleaningRule": facts.cleaning_rule,
    }
    numbers = {
        "HostCores": fmt_plain(host.get("cores") if host.get("cores") is not None else math.nan),
        "HostMemoryGiB": fmt(memory / 2**30, "gib") if memory else NOT_AVAILABLE,
        "ServerCpus": fmt_levels(facts.cpus_levels, str),
        "Repetitions": str(facts.repetitions_planned),
        "RepetitionsMin": str(int(groups["n_reps"].min()) if not groups.empty else 0),
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
        "ConfidenceLevel": str(LEVEL),
        "Alpha": fmt_plain(ALPHA),
        "BootstrapResamplesReps": str(N_RESAMPLES_REPS),
        "BootstrapResamplesBlocks": str(N_RESAMPLES_BLOCKS),
        "BootstrapSeed": str(SEED),
        "BlockLengthMin": fmt_plain(facts.block_length_min),
        "BlockLengthMax": fmt_plain(facts.block_length_max),
        "LoadAccuracyMinPct": fmt(100 * facts.load_ratio_min, "pct"),
        "LoadAccuracyMeanPct": fmt(100 * facts.load_ratio_mean, "pct"),
        "LoadAccuracyMaxPct": fmt(100 * facts.load_ratio_max, "pct"),
        "ConnectionsFailedTotal": str(facts.connections_failed_total),
        "TracerCpuSecondsMean": fmt(facts.tracer_cpu_seconds_mean, "seconds"),
        "TracerCpuSecondsMax": fmt(facts.tracer_cpu_seconds_max, "seconds"),
        "TracerCpuPctMax": fmt(facts.tracer_cpu_pct_max, "cpu"),
        "NoMatchScreens": str(facts.no_match_screens),
        "GoOverCRatioAtMaxConn": fmt(_value(comparisons, "go_over_c", connections=hi), "ratio"),
        "GoOverCRatioIntervalAtMaxConn": _interval(
            _value(comparisons, "go_over_c_ci_low", connections=hi),
            _value(comparisons, "go_over_c_ci_high", connections=hi), "ratio"),
        "GoOverCRatioAtMinConn": fmt(_value(comparisons, "go_over_c", connections=lo), "ratio"),
        "GoOverCRatioIntervalAtMinConn": _interval(
            _value(comparisons, "go_over_c_ci_low", connections=lo),
            _value(comparisons, "go_over_c_ci_high", connections=lo), "ratio"),
        "GoOverCRatioMin": fmt(comparisons["go_over_c"].min() if not comparisons.empty
                               else None, "ratio"),
        "GoOverCRatioMax": fmt(comparisons["go_over_c"].max() if not comparisons.empty
                               else None, "ratio"),
        "WelchPHolmAtMaxConn": fmt_p(_value(comparisons, "welch_p_holm", connections=hi)),
        "MwuPHolmAtMaxConn": fmt_p(_value(comparisons, "mwu_p_holm", connections=hi)),
        "HedgesGAtMaxConn": fmt(_value(comparisons, "hedges_g", connections=hi), "g"),
        "CvRatioAtMaxConn": fmt(_value(rq2, "cv_ratio", connections=hi), "ratio"),
        "CvRatioIntervalAtMaxConn": _interval(_value(rq2, "cv_ratio_ci_low", connections=hi),
                                              _value(rq2, "cv_ratio_ci_high", connections=hi),
                                              "ratio"),
        "CvBootPHolmAtMaxConn": fmt_p(_value(rq2, "boot_p_holm", connections=hi)),
        "CvFmPHolmAtMaxConn": fmt_p(_value(rq2, "fm_p_holm", connections=hi)),
        "CvLevenePHolmAtMaxConn": fmt_p(_value(rq2, "levene_p_holm", connections=hi)),
    }
    macros = {name: latex_escape(value) for name, value in {**text, **numbers}.items()}
    for server, prefix in SERVER_PREFIX.items():
        macros.update(_server_macros(inference, facts, server, prefix, lo, hi))
    macros.update(_periodicity_macros(inference))
    # Already LaTeX: sentences whose wording depends on the results.
    macros["BandNote"] = _band_note(groups, "cpu_pct_ci_method")
    macros["CvBandNote"] = _band_note(groups, "cv_ci_method")
    macros["RQOneTestSentence"] = latex_escape(_rq1_sentence(comparisons))
    macros["RQTwoTestSentence"] = latex_escape(_rq2_sentence(rq2))
    return macros


__all__ = ["NOT_APPLICABLE", "SERVER_PREFIX", "build_macros", "headline"]
