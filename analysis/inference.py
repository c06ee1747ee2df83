"""Every statistic of one run, computed once, for the figures, the paper and the HTML report.

``analyse`` runs the descriptive summary under the run's cleaning rule, then RQ1, RQ2 and
the ablations on top of it; for imported `top` logs it also summarises the data under the
other cleaning rule, so the report can show both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis import ablation, cleaning, rq1, rq2
from analysis.rawdata import RawRun
from analysis.summary import Summary, summarize


@dataclass(frozen=True)
class Inference:
    summary: Summary
    rq1: rq1.RQ1
    rq2: pd.DataFrame
    ablation: pd.DataFrame
    cleaning: pd.DataFrame  # per condition and rule; one rule for measured data

    @property
    def rules(self) -> list[str]:
        return sorted(self.cleaning["rule"].unique()) if not self.cleaning.empty else []


def compare_rules(run: RawRun, primary: Summary) -> pd.DataFrame:
    """Per condition and cleaning rule: mean CPU with its interval, CV, samples kept."""
    frames = []
    for rule in cleaning.rules(run.samples):
        stats = primary if rule == primary.rule else summarize(run, rule)
        groups = stats.groups
        if groups.empty:
            continue
        columns = [*stats.keys, "n_reps", "n_samples", "cpu_pct_mean", "cpu_pct_ci_low",
                   "cpu_pct_ci_high", "cpu_pct_ci_method", "cv_mean_of_reps"]
        frame = groups[[c for c in columns if c in groups.columns]].copy()
        frame.insert(0, "rule", rule)
        frame["primary"] = rule == primary.rule
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def analyse(run: RawRun) -> Inference:
    summary = summarize(run)
    first = rq1.analyse(summary)
    return Inference(
        summary=summary,
        rq1=first,
        rq2=rq2.compare(summary),
        ablation=ablation.analyse(summary, first),
        cleaning=compare_rules(run, summary),
    )


def write_processed(run: RawRun, inference: Inference, processed_dir: Path) -> list[Path]:
    """CSV tables under ``data/processed/<run-id>/``; returns the files written."""
    processed_dir.mkdir(parents=True, exist_ok=True)
    summary = inference.summary
    comparisons = inference.rq1.comparisons
    # ratios.csv: the Go/C ratio alone, in the layout earlier reports wrote (kept for scripts
    # and tests that read it); rq1_comparisons.csv has the intervals and tests as well.
    ratio_columns = [c for c in comparisons.columns if c in (
        *summary.keys, "c_cpu_pct_mean", "go_cpu_pct_mean", "go_over_c", "go_over_c_ci_low",
        "go_over_c_ci_high")]
    tables = {
        "cells.csv": summary.cells,
        "summary.csv": summary.groups,
        "ratios.csv": comparisons[ratio_columns],
        "rq1_comparisons.csv": comparisons,
        "rq1_scaling.csv": inference.rq1.scaling,
        "rq2_comparisons.csv": inference.rq2,
        "ablation.csv": inference.ablation,
        "cleaning_rules.csv": inference.cleaning,
        "failed_cells.csv": run.failed,
        "samples.csv": run.samples,
    }
    written = []
    for name, frame in tables.items():
        path = processed_dir / name
        frame.to_csv(path, index=False)
        written.append(path)
    return written
