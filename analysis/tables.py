"""The report's tables as data (header and formatted cells), rendered by latex_tables and html.

Building each table once and rendering it twice is what keeps the paper and the HTML report
showing the same digits. The paper's tables show the baseline conditions (ablation factors
at their paper setting); ``full=True`` gives every condition, for the HTML report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis import cleaning
from analysis.factors import SERVER_DEFAULT_LEVELS, label, varying
from analysis.formatting import (
    NOT_AVAILABLE,
    fmt,
    fmt_int,
    fmt_interval,
    fmt_p,
    fmt_percent,
    fmt_plain,
)
from analysis.inference import Inference
from analysis.rq1 import WITHIN_RUN
from analysis.summary import BCA, MBB, Summary

# Marks an interval from the within-run block bootstrap (a single repetition).
WITHIN_MARK = "*"
WITHIN_NOTE = ("* interval from the studentized moving-block bootstrap within one run "
               "(a single repetition), not over repetitions.")
# Marks a bootstrap over so few repetitions that its distribution has few distinct values.
FEW_REPS = 5
FEW_MARK = "\u2020"
FEW_NOTE = (f"\u2020 bootstrap over fewer than {FEW_REPS} repetitions per server: the interval "
            "cannot reach beyond the observed repetitions and the p-value can be far too "
            "small; the t interval and the Welch and Mann-Whitney tests are the conservative "
            "reading.")


@dataclass(frozen=True)
class Column:
    text: str  # plain header (HTML)
    tex: str  # LaTeX header
    align: str = "r"


@dataclass
class Table:
    name: str  # file stem under paper/generated/ and anchor in the HTML
    title: str
    columns: list[Column]
    rows: list[list[str]] = field(default_factory=list)
    breaks: list[int] = field(default_factory=list)  # a rule before these row indices
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.rows


def _ci(low: object, high: object, kind: str, method: object = None,
        reps: object = None) -> str:
    text = fmt_interval(low, high, kind)
    if text == NOT_AVAILABLE:
        return text
    if method in (MBB, WITHIN_RUN):
        return text + WITHIN_MARK
    return text + _few(reps) if method == BCA else text


def _few(reps: object) -> str:
    """The dagger for a bootstrap over fewer than FEW_REPS repetitions (``reps``: the
    smaller side's count)."""
    return FEW_MARK if reps is not None and not pd.isna(reps) and int(reps) < FEW_REPS else ""


def _notes(rows: list[list[str]], *notes: str) -> list[str]:
    """The table's notes, plus the explanation of each mark its cells use."""
    out = list(notes)
    if any(cell.endswith(WITHIN_MARK) for row in rows for cell in row):
        out.append(WITHIN_NOTE)
    if any(FEW_MARK in cell for row in rows for cell in row):
        out.append(FEW_NOTE)
    return out


def _factor_value(column: str, value: object) -> str:
    if column in ("connections", "cpus", "repetition"):
        return fmt_int(value)
    if column == "bandwidth_bps":
        return fmt_plain(value) if not pd.isna(value) else NOT_AVAILABLE
    return NOT_AVAILABLE if value is None or pd.isna(value) else str(value)


def _shown_factors(summary: Summary, frame: pd.DataFrame, full: bool,
                   skip: tuple[str, ...] = ("server", "connections")) -> list[str]:
    """Factor columns a table needs: those that vary among its rows (CPUs always first)."""
    candidates = [k for k in summary.keys if k not in skip]
    shown = varying(frame, candidates)
    if not full:
        shown = [c for c in shown if c == "cpus"]
    return shown


def _rows_with_breaks(frame: pd.DataFrame, by: str | None) -> list[int]:
    if by is None or frame.empty:
        return []
    values = frame[by].astype(str).tolist()
    return [i for i in range(1, len(values)) if values[i] != values[i - 1]]


def _view(summary: Summary, frame: pd.DataFrame, full: bool) -> pd.DataFrame:
    return frame if full else summary.baseline(frame)


def summary_table(inference: Inference, full: bool = False) -> Table:
    summary = inference.summary
    groups = _view(summary, summary.groups, full).reset_index(drop=True)
    factors = _shown_factors(summary, groups, full)
    columns = [Column("server", "Server", "l"),
               *(Column(label(f), label(f)) for f in factors),
               Column("connections", "Conn."), Column("mean CPU %", r"CPU (\%)"),
               Column("95% CI", "95\\% CI"), Column("t 95% CI", "$t$ 95\\% CI"),
               Column("CV", "CV"), Column("CV 95% CI", "CV 95\\% CI"),
               Column("reps", "Reps"), Column("samples", "Samples")]
    rows = [[row["server"], *(_factor_value(f, row[f]) for f in factors),
             fmt_int(row["connections"]), fmt(row["cpu_pct_mean"], "cpu"),
             _ci(row["cpu_pct_ci_low"], row["cpu_pct_ci_high"], "cpu", row["cpu_pct_ci_method"],
                 row["n_reps"]),
             fmt_interval(row["cpu_pct_t_low"], row["cpu_pct_t_high"], "cpu"),
             fmt(row["cv_mean_of_reps"], "cv"),
             _ci(row["cv_ci_low"], row["cv_ci_high"], "cv", row["cv_ci_method"], row["n_reps"]),
             fmt_int(row["n_reps"]), fmt_int(row["n_samples"])]
            for _, row in groups.iterrows()]
    notes = _notes(rows, "CI: BCa bootstrap over repetition means (the figure band); t: "
                   "Student-t interval over the same means; CV: mean of the repetitions' CVs.")
    return Table("table_summary", "Mean CPU and CV per condition", columns, rows,
                 _rows_with_breaks(groups, "server"), notes)


def rq1_table(inference: Inference, full: bool = False) -> Table:
    summary = inference.summary
    frame = _view(summary, inference.rq1.comparisons, full).reset_index(drop=True)
    factors = _shown_factors(summary, frame, full)
    columns = [*(Column(label(f), label(f), "l" if i == 0 else "r")
                 for i, f in enumerate(factors)),
               Column("connections", "Conn."), Column("Go/C", "Go/C"),
               Column("95% CI", "95\\% CI"), Column("Go - C (CPU %)", r"$\Delta$ (pp)"),
               Column("Welch p", "$p_W$"), Column("Welch p (Holm)", "$p_W^{H}$"),
               Column("Mann-Whitney p (Holm)", "$p_U^{H}$"), Column("Hedges' g", "$g$")]
    rows = [[*(_factor_value(f, row[f]) for f in factors), fmt_int(row["connections"]),
             fmt(row["go_over_c"], "ratio"),
             _ci(row["go_over_c_ci_low"], row["go_over_c_ci_high"], "ratio",
                 row["go_over_c_ci_method"], min(row["n_reps_c"], row["n_reps_go"])),
             fmt(row["diff_cpu_pct"], "cpu"), fmt_p(row["welch_p"]),
             fmt_p(row["welch_p_holm"]), fmt_p(row["mwu_p_holm"]), fmt(row["hedges_g"], "g")]
            for _, row in frame.iterrows()]
    notes = _notes(rows, "Go/C: ratio of mean CPU; CI: BCa bootstrap over repetitions, each "
                   "server resampled on its own; pp: percentage points; Welch and "
                   "Mann-Whitney tests on repetition means, Holm-corrected over the connection "
                   "levels; g: Hedges' g of Go minus C.")
    return Table("table_rq1", "Go/C ratio of mean CPU and tests", columns, rows,
                 _rows_with_breaks(frame, factors[0] if factors else None), notes)


def scaling_table(inference: Inference, full: bool = False) -> Table:
    summary = inference.summary
    frame = _view(summary, inference.rq1.scaling, full).reset_index(drop=True)
    factors = _shown_factors(summary, frame, full)
    columns = [Column("server", "Server", "l"), *(Column(label(f), label(f)) for f in factors),
               Column("slope (CPU % per connection)", "Slope"), Column("95% CI", "95\\% CI"),
               Column("exponent b", "$b$"), Column("95% CI", "95\\% CI"),
               Column("R² (linear)", "$R^2$")]
    rows = [[row["server"], *(_factor_value(f, row[f]) for f in factors),
             fmt(row["slope_cpu_pct_per_conn"], "slope"),
             fmt_interval(row["slope_ci_low"], row["slope_ci_high"], "slope"),
             fmt(row["exponent"], "exponent"),
             fmt_interval(row["exponent_ci_low"], row["exponent_ci_high"], "exponent"),
             fmt(row["r2_linear"], "share")]
            for _, row in frame.iterrows()]
    return Table("table_scaling", "CPU against connections", columns, rows, [],
                 ["Slope: least squares of repetition means on connections (CPU % of one CPU "
                  "per connection); b: exponent of CPU ~ a * connections^b from the log-log "
                  "fit; intervals: t with n - 2 degrees of freedom."])


def split_table(inference: Inference, full: bool = False) -> Table:
    summary = inference.summary
    groups = _view(summary, summary.groups, full).reset_index(drop=True)
    factors = _shown_factors(summary, groups, full)
    columns = [Column("server", "Server", "l"), *(Column(label(f), label(f)) for f in factors),
               Column("connections", "Conn."), Column("user CPU %", r"User (\%)"),
               Column("system CPU %", r"System (\%)"), Column("system share", "Sys.\\ share"),
               Column("context switches /s per connection", "Ctx/s/conn."),
               Column("t 95% CI", "$t$ 95\\% CI")]
    rows = [[row["server"], *(_factor_value(f, row[f]) for f in factors),
             fmt_int(row["connections"]), fmt(row.get("user_pct_mean"), "cpu"),
             fmt(row.get("system_pct_mean"), "cpu"), fmt(row["system_share"], "share"),
             fmt(row["ctx_per_s_per_conn"], "ctx"),
             fmt_interval(row["ctx_per_s_per_conn_t_low"], row["ctx_per_s_per_conn_t_high"],
                          "ctx")]
            for _, row in groups.iterrows()]
    return Table("table_split", "User/system split and context switches", columns, rows,
                 _rows_with_breaks(groups, "server"),
                 ["Means over repetitions; system share = system / (user + system); context "
                  "switches: voluntary + involuntary of the whole process tree per second, "
                  "divided by the connections."])


def rq2_table(inference: Inference, full: bool = False) -> Table:
    summary = inference.summary
    frame = _view(summary, inference.rq2, full).reset_index(drop=True)
    factors = _shown_factors(summary, frame, full)
    columns = [*(Column(label(f), label(f), "l" if i == 0 else "r")
                 for i, f in enumerate(factors)),
               Column("connections", "Conn."), Column("CV c-fork", "CV C"),
               Column("95% CI", "95\\% CI"), Column("CV go-goroutine", "CV Go"),
               Column("95% CI", "95\\% CI"), Column("CV ratio Go/C", "Ratio"),
               Column("95% CI", "95\\% CI"), Column("bootstrap p (Holm)", "$p_B^{H}$"),
               Column("Feltz-Miller p (Holm)", "$p_{FM}^{H}$"),
               Column("Levene p (Holm)", "$p_L^{H}$"),
               Column("lag-1 ACF c-fork", r"$\rho_1$ C"),
               Column("lag-1 ACF go-goroutine", r"$\rho_1$ Go")]
    rows = [[*(_factor_value(f, row[f]) for f in factors), fmt_int(row["connections"]),
             fmt(row["c_cv"], "cv"),
             _ci(row["c_cv_ci_low"], row["c_cv_ci_high"], "cv", row["c_cv_ci_method"],
                 row["n_reps_c"]),
             fmt(row["go_cv"], "cv"),
             _ci(row["go_cv_ci_low"], row["go_cv_ci_high"], "cv", row["go_cv_ci_method"],
                 row["n_reps_go"]),
             fmt(row["cv_ratio"], "ratio"),
             _ci(row["cv_ratio_ci_low"], row["cv_ratio_ci_high"], "ratio",
                 row["cv_ratio_ci_method"], min(row["n_reps_c"], row["n_reps_go"])),
             fmt_p(row["boot_p_holm"]) + (_few(min(row["n_reps_c"], row["n_reps_go"]))
                                          if row["cv_ratio_ci_method"] == BCA else ""),
             fmt_p(row["fm_p_holm"]), fmt_p(row["levene_p_holm"]),
             fmt(row["c_acf_lag1"], "acf"), fmt(row["go_acf_lag1"], "acf")]
            for _, row in frame.iterrows()]
    notes = _notes(rows, "CV intervals: BCa bootstrap over the repetitions' CVs; ratio: CV of "
                   "Go over CV of C with a bootstrap interval; bootstrap p: the bootstrap test "
                   "of ratio = 1; Feltz-Miller: asymptotic test with effective sample sizes; "
                   "Levene: median-centred, on samples divided by their run's mean; all "
                   "p-values Holm-corrected over connection levels; lag-1 ACF: mean over "
                   "repetitions.")
    return Table("table_rq2", "Stability (CV) and tests of equal CVs", columns, rows,
                 _rows_with_breaks(frame, factors[0] if factors else None), notes)


def ablation_table(inference: Inference) -> Table:
    frame = inference.ablation
    columns = [Column("ablation", "Ablation", "l"), Column("connections", "Conn."),
               Column("Go/C at baseline", "Baseline"), Column("95% CI", "95\\% CI"),
               Column("Go/C ablated", "Ablated"), Column("95% CI", "95\\% CI"),
               Column("change", "Change"), Column("95% CI", "95\\% CI"),
               Column("gap explained %", r"Gap expl.\ (\%)")]
    rows = [[f"{label(row['factor'])} = {row['level']}", fmt_int(row["connections"]),
             fmt(row["base_ratio"], "ratio"),
             _ci(row["base_ci_low"], row["base_ci_high"], "ratio", row["base_ci_method"],
                 row["base_reps"]),
             fmt(row["ratio"], "ratio"),
             _ci(row["ci_low"], row["ci_high"], "ratio", row["ci_method"], row["reps"]),
             fmt(row["change"], "ratio"),
             fmt_interval(row["change_ci_low"], row["change_ci_high"], "ratio"),
             fmt_percent(row["gap_explained"], "pct")]
            for _, row in frame.iterrows()]
    return Table("table_ablation", "Go/C ratio with one factor changed", columns, rows,
                 _rows_with_breaks(frame, "factor"),
                 _notes(rows, "Baseline: every factor at its paper setting; ablated: this one "
                        "factor changed (for a factor both servers take, both at that level; "
                        "the baseline read buffer is each server's own: "
                        + ", ".join(f"{k} {v} B" for k, v in
                                    SERVER_DEFAULT_LEVELS["read_buffer"].items())
                        + "); change: ablated - baseline with a percentile interval from the "
                        "two bootstrap distributions; gap explained: (baseline - ablated) / "
                        "(baseline - 1)."))


def cleaning_table(inference: Inference) -> Table:
    frame = inference.cleaning
    summary = inference.summary
    factors = _shown_factors(summary, frame, False) if not frame.empty else []
    columns = [Column("rule", "Rule", "l"), Column("server", "Server", "l"),
               *(Column(label(f), label(f)) for f in factors),
               Column("connections", "Conn."), Column("samples", "Samples"),
               Column("mean CPU %", r"CPU (\%)"), Column("95% CI", "95\\% CI"),
               Column("CV", "CV")]
    rows = [[row["rule"] + (" (primary)" if row["primary"] else ""), row["server"],
             *(_factor_value(f, row[f]) for f in factors), fmt_int(row["connections"]),
             fmt_int(row["n_samples"]), fmt(row["cpu_pct_mean"], "cpu"),
             _ci(row["cpu_pct_ci_low"], row["cpu_pct_ci_high"], "cpu", row["cpu_pct_ci_method"],
                 row["n_reps"]),
             fmt(row["cv_mean_of_reps"], "cv")]
            for _, row in frame.iterrows()]
    notes = _notes(rows, *(f"{rule}: {cleaning.MEANING[rule]}." for rule in inference.rules))
    return Table("table_cleaning", "Both cleaning rules", columns, rows,
                 _rows_with_breaks(frame, "rule"), notes)


def cells_table(inference: Inference) -> Table:
    """Every repetition with its within-run statistics (HTML only: one row per run)."""
    summary = inference.summary
    cells = summary.cells
    factors = _shown_factors(summary, cells, True)
    has_top = "no_match_screens" in cells.columns
    columns = [Column("cell", "Cell", "l"), Column("server", "Server", "l"),
               *(Column(label(f), label(f)) for f in factors), Column("connections", "Conn."),
               Column("rep", "Rep"), Column("samples", "n"), Column("mean CPU %", "CPU"),
               Column("block-bootstrap 95% CI", "CI"), Column("CV", "CV"),
               Column("block-bootstrap 95% CI", "CI"), Column("block length", "b"),
               Column("lag-1 ACF", "rho1"), Column("dominant period (s)", "period"),
               Column("Fisher's g p", "p_g"),
               *([Column("screens without the server", "no match")] if has_top else [])]
    rows = [[row["cell_id"], row["server"], *(_factor_value(f, row[f]) for f in factors),
             fmt_int(row["connections"]), fmt_int(row["repetition"]), fmt_int(row["n_samples"]),
             fmt(row["cpu_pct_mean"], "cpu"),
             fmt_interval(row["cpu_pct_mbb_low"], row["cpu_pct_mbb_high"], "cpu"),
             fmt(row["cpu_cv"], "cv"),
             fmt_interval(row["cpu_cv_mbb_low"], row["cpu_cv_mbb_high"], "cv"),
             fmt_int(row["block_length"]), fmt(row["acf_lag1"], "acf"),
             fmt(row["dominant_period_s"], "period"), fmt_p(row["fisher_p"]),
             *([fmt_int(row["no_match_screens"])] if has_top else [])]
            for _, row in cells.iterrows()]
    return Table("table_cells", "Every repetition, on its own", columns, rows, [],
                 ["Intervals: studentized moving-block bootstrap within the run; block length "
                  "b from the autocorrelation (the larger of the Politis-White and AR(1) "
                  "plug-in rules); period: largest periodogram peak; p_g: Fisher's g test "
                  "against white noise."])
