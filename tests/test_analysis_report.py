"""The report on the runs other parts of the pipeline produce: ablations, imported `top`
logs, one server only; and the RQ1/RQ2 tables against scipy on the same repetition data."""

from __future__ import annotations

import itertools
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from analysis import paper_build
from analysis.hypothesis import feltz_miller, hedges_g, holm
from analysis.report import build_report
from tests.analysis_fixtures import Variant, cpu_mean, measured_values, write_run

REPO = Path(__file__).resolve().parents[1]
PAPER_TEX = REPO / "paper" / "paper.tex"
BASE = {"output": "paper", "read_buffer": None, "gogc": "default", "gomaxprocs": "cpus"}
ABLATIONS = {  # variant -> factor by which it scales the Go server's CPU
    "discard": (Variant({**BASE, "output": "discard"}, 0.5)),
    "buffer": (Variant({**BASE, "read_buffer": 4096}, 0.8)),
    "gogc": (Variant({**BASE, "gogc": "off"}, 0.9)),
}
CONNECTIONS = (4, 64)
REPS = 3

needs_tex = pytest.mark.skipif(shutil.which("latexmk") is None,
                               reason="latexmk not installed (CI installs TeX Live)")


def _paper_dir(root: Path) -> Path:
    paper = root / "paper"
    paper.mkdir()
    shutil.copy(PAPER_TEX, paper / "paper.tex")
    return paper


def _generated(outputs, name: str) -> str:
    return next(p for p in outputs.generated if p.name == name).read_text()


def _macros(outputs) -> dict[str, str]:
    return dict(re.findall(r"^\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}$",
                           _generated(outputs, "macros.tex"), re.MULTILINE))


def _csv(outputs, name: str) -> pd.DataFrame:
    return pd.read_csv(outputs.processed_dir / name)


def _ablation_run(data_dir: Path):
    return write_run(data_dir, connections=CONNECTIONS, repetitions=REPS,
                     variants=(Variant(BASE), *ABLATIONS.values()))


@pytest.fixture(scope="module")
def ablation_report(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ablation")
    run = _ablation_run(root / "data")
    outputs = build_report(data_dir=root / "data", paper_dir=_paper_dir(root), build_pdf=False)
    return run, outputs


@pytest.fixture(scope="module")
def plain_report(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("plain")
    run = write_run(root / "data", connections=(1, 4, 16), repetitions=3)
    outputs = build_report(data_dir=root / "data", paper_dir=_paper_dir(root), build_pdf=False)
    return run, outputs


def _ratio(connections: int, go_scale: float = 1.0) -> float:
    go = sum(go_scale * cpu_mean("go-goroutine", connections, r) for r in range(1, REPS + 1))
    c = sum(cpu_mean("c-fork", connections, r) for r in range(1, REPS + 1))
    return go / c


# --- RQ1 and RQ2 against scipy on the repetition data -------------------------------------

def test_rq1_tests_match_scipy_and_holm(plain_report):
    _, outputs = plain_report
    rq1 = _csv(outputs, "rq1_comparisons.csv").set_index("connections")
    for conn in (1, 4, 16):
        go = [cpu_mean("go-goroutine", conn, r) for r in range(1, REPS + 1)]
        c = [cpu_mean("c-fork", conn, r) for r in range(1, REPS + 1)]
        row = rq1.loc[conn]
        assert row["go_over_c"] == pytest.approx(sum(go) / sum(c))
        assert row["go_over_c_ci_low"] < row["go_over_c"] < row["go_over_c_ci_high"]
        assert row["welch_p"] == pytest.approx(stats.ttest_ind(go, c, equal_var=False).pvalue)
        assert row["mwu_p"] == pytest.approx(
            stats.mannwhitneyu(go, c, alternative="two-sided").pvalue)
        assert row["hedges_g"] == pytest.approx(hedges_g(go, c))
    assert rq1["welch_p_holm"].to_numpy() == pytest.approx(holm(rq1["welch_p"].to_numpy()))


def test_scaling_slope_is_the_known_marginal_cost(plain_report):
    _, outputs = plain_report
    scaling = _csv(outputs, "rq1_scaling.csv").set_index("server")
    # cpu_mean: C = 2 * connections + 2 (rep - 1); Go = 1 * connections + 2 (rep - 1).
    assert scaling.loc["c-fork", "slope_cpu_pct_per_conn"] == pytest.approx(2.0)
    assert scaling.loc["go-goroutine", "slope_cpu_pct_per_conn"] == pytest.approx(1.0)
    row = scaling.loc["c-fork"]
    assert row["slope_ci_low"] < 2.0 < row["slope_ci_high"]
    assert 0 < row["exponent"] < 1.0 + 1e-9  # the intercept makes growth sub-linear


def test_rq2_feltz_miller_uses_effective_sizes(plain_report):
    _, outputs = plain_report
    rq2 = _csv(outputs, "rq2_comparisons.csv").set_index("connections")
    cells = _csv(outputs, "cells.csv")
    for conn in (1, 4, 16):
        row = rq2.loc[conn]
        mine = cells[cells["connections"] == conn]
        n_eff = [mine.loc[mine["server"] == s, "n_eff_variance"].sum()
                 for s in ("c-fork", "go-goroutine")]
        cvs = [mine.loc[mine["server"] == s, "cpu_cv"].mean() for s in ("c-fork", "go-goroutine")]
        expected = feltz_miller(cvs, n_eff)
        assert row["fm_stat"] == pytest.approx(expected.statistic, abs=1e-12)
        assert row["n_eff_c"] == pytest.approx(n_eff[0])


def test_split_and_context_switches(plain_report):
    _, outputs = plain_report
    groups = _csv(outputs, "summary.csv").set_index(["server", "connections"])
    row = groups.loc[("c-fork", 4)]
    # Synthetic traces: user = 0.6 and system = 0.4 of CPU; 200 + 20 switches/s per cell.
    assert row["system_share"] == pytest.approx(0.4)
    assert row["ctx_per_s_per_conn"] == pytest.approx(220 / 4)


def test_html_shows_the_paper_tables(plain_report):
    _, outputs = plain_report
    html = outputs.html.read_text()
    for table in ("table_summary", "table_rq1", "table_scaling", "table_split", "table_rq2",
                  "table_cells"):
        assert f'id="{table}"' in html
    assert "all samples" in html


# --- ablations ------------------------------------------------------------------------------

def test_ablation_ratios_and_gap_explained(ablation_report):
    _, outputs = ablation_report
    ablation = _csv(outputs, "ablation.csv")
    assert set(ablation["factor"]) == {"output", "read_buffer", "gogc"}
    for (factor, level), variant in zip(
            [("output", "discard"), ("read_buffer", "4096"), ("gogc", "off")],
            ABLATIONS.values(), strict=True):
        for conn in CONNECTIONS:
            row = ablation[(ablation["factor"] == factor) & (ablation["level"].astype(str) == level)
                           & (ablation["connections"] == conn)].iloc[0]
            base, ablated = _ratio(conn), _ratio(conn, variant.go_scale)
            assert row["base_ratio"] == pytest.approx(base)
            assert row["ratio"] == pytest.approx(ablated)
            assert row["gap_explained"] == pytest.approx((base - ablated) / (base - 1))
            assert row["change_ci_low"] <= ablated - base <= row["change_ci_high"]


def test_go_only_factor_pairs_with_the_single_c_cell(ablation_report):
    run, outputs = ablation_report
    # GOGC does not apply to C: one C cell per (connections, output, buffer, rep) serves all.
    c_cells = [c for c in run.cells if c["factors"]["server"] == "c-fork"]
    assert all(c["factors"]["gogc"] == "n/a" for c in c_cells)
    rq1 = _csv(outputs, "rq1_comparisons.csv")
    assert set(rq1["gogc"]) == {"default", "off"}
    assert len(rq1) == 4 * len(CONNECTIONS)  # baseline + 3 ablations


def test_ablation_appears_in_paper_and_html(ablation_report):
    _, outputs = ablation_report
    section = _generated(outputs, "ablation.tex")
    assert "generated/figures/ablation.pdf" in section and r"\label{tab:ablation}" in section
    assert {p.name for p in outputs.figures} >= {"ablation.pdf", "ablation.png"}
    # The paper's main tables show the baseline only; the HTML shows every condition.
    table = _generated(outputs, "table_rq1.tex")
    assert table.count(r"\\") - 1 == len(CONNECTIONS)
    html = outputs.html.read_text()
    assert 'id="table_ablation"' in html and "discard" in html


def test_run_without_ablation_factors_says_so(plain_report):
    _, outputs = plain_report
    assert "varies no ablation factor" in _generated(outputs, "ablation.tex")
    assert "ablation.pdf" not in {p.name for p in outputs.figures}


EFFECTS = {("output", "discard"): 0.5, ("read_buffer", 4096): 0.8, ("gogc", "off"): 0.9}


def test_crossed_ablation_with_explicit_read_buffers(tmp_path):
    """ablation.toml's design: every factor crossed, read buffers set explicitly for both
    servers (no "default"), GOGC only for Go. The paper's setting is then C at 4096 bytes
    against Go at 1024; "read buffer = N" means both servers at N bytes."""
    variants = []
    for output, buffer, gogc in itertools.product(("paper", "discard"), (1024, 4096),
                                                  ("default", "off")):
        factors = {"output": output, "read_buffer": buffer, "gogc": gogc, "gomaxprocs": "cpus"}
        scale = math.prod(EFFECTS.get((k, v), 1.0) for k, v in factors.items())
        variants.append(Variant(factors, scale))
    write_run(tmp_path / "data", connections=CONNECTIONS, repetitions=REPS,
              variants=tuple(variants), chat_servers=("chat-c", "chat-go"))
    outputs = build_report(data_dir=tmp_path / "data", paper_dir=_paper_dir(tmp_path),
                           build_pdf=False)
    ablation = _csv(outputs, "ablation.csv")
    ablation["level"] = ablation["level"].astype(str)
    expected = {("output", "discard"): 0.5, ("read_buffer", "1024"): 1.0,
                ("read_buffer", "4096"): 0.8, ("gogc", "off"): 0.9}
    assert set(zip(ablation["factor"], ablation["level"], strict=True)) == set(expected)
    for (factor, level), scale in expected.items():
        for conn in CONNECTIONS:
            row = ablation[(ablation["factor"] == factor) & (ablation["level"] == level)
                           & (ablation["connections"] == conn)].iloc[0]
            assert row["base_ratio"] == pytest.approx(_ratio(conn))
            assert row["ratio"] == pytest.approx(_ratio(conn, scale))
    # The paper's tables: one row per server and level, each server at its own buffer size;
    # the chat workload is reported in the HTML but kept out of the sink comparison.
    summary = _csv(outputs, "summary.csv")
    assert set(summary["workload"]) == {"sink", "chat"}
    table = _generated(outputs, "table_summary.tex")
    assert table.count(r"\\") - 1 == 2 * len(CONNECTIONS) and "chat" not in table
    macros = _macros(outputs)
    assert macros["GoOverCRatioAtMaxConn"] == f"{_ratio(64):.2f}"
    assert "chat-go" in outputs.html.read_text()


# --- imported top logs -----------------------------------------------------------------------

NO_MATCH = 4


@pytest.fixture(scope="module")
def imported_report(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("imported")
    run = write_run(root / "data", connections=(1, 4), repetitions=1, imported_no_match=NO_MATCH)
    outputs = build_report(data_dir=root / "data", paper_dir=_paper_dir(root), build_pdf=False)
    return run, outputs


def test_imported_run_shows_both_cleaning_rules(imported_report):
    _, outputs = imported_report
    rules = _csv(outputs, "cleaning_rules.csv").set_index(["rule", "server", "connections"])
    mean = cpu_mean("c-fork", 4, 1)
    n = len(measured_values(mean, 16))
    zero = rules.loc[("zero-fill", "c-fork", 4)]
    paper = rules.loc[("paper-compatible", "c-fork", 4)]
    assert zero["cpu_pct_mean"] == pytest.approx(mean * (n - NO_MATCH) / n)  # 0% screens
    assert paper["cpu_pct_mean"] == pytest.approx(mean)  # dropped: the inflated mean
    assert (zero["n_samples"], paper["n_samples"]) == (n, n - NO_MATCH)
    assert bool(zero["primary"]) and not bool(paper["primary"])
    macros = _macros(outputs)
    assert macros["CleaningRule"] == "zero-fill"
    assert macros["NoMatchScreens"] == str(4 * NO_MATCH)
    threats = _generated(outputs, "threats.tex")
    assert r"\label{tab:cleaning}" in threats and "paper-compatible" in threats
    assert "Achieved load} Unknown" in threats
    html = outputs.html.read_text()
    assert "zero-fill" in html and "paper-compatible" in html


def test_imported_single_runs_get_within_run_intervals(imported_report):
    _, outputs = imported_report
    rq1 = _csv(outputs, "rq1_comparisons.csv")
    assert rq1["go_over_c_ci_method"].str.startswith("studentized moving-block").all()
    assert rq1["welch_p"].isna().all()  # nothing to test over repetitions
    method = _generated(outputs, "method.tex")
    assert "imported from 4 batch log(s)" in method and "zero-fill" in method


def test_measured_run_states_the_all_samples_rule(plain_report):
    _, outputs = plain_report
    assert _macros(outputs)["CleaningRule"] == "all samples"
    assert "rule \\emph{all samples}" in _generated(outputs, "threats.tex")


# --- one server only ------------------------------------------------------------------------

def test_run_with_one_server(tmp_path):
    write_run(tmp_path / "data", servers=("c-fork",), connections=(1, 4), repetitions=2)
    outputs = build_report(data_dir=tmp_path / "data", paper_dir=_paper_dir(tmp_path),
                           build_pdf=False)
    macros = _macros(outputs)
    assert macros["GoOverCRatioAtMaxConn"] == "n/a"
    assert macros["CForkCpuAtMaxConn"] == f"{cpu_mean('c-fork', 4, 1) + 1:.2f}"
    assert "no pair of c-fork and go-goroutine" in macros["RQOneTestSentence"]
    assert "no pair" in _generated(outputs, "table_rq1.tex")
    assert _csv(outputs, "rq1_comparisons.csv").empty if (
        outputs.processed_dir / "rq1_comparisons.csv").stat().st_size > 1 else True
    assert math.isfinite(float(macros["CForkSlope"]))


# --- the PDF of these runs ------------------------------------------------------------------

@needs_tex
@pytest.mark.parametrize("fixture", ["ablation_report", "imported_report"])
def test_pdf_of_ablation_and_imported_runs_has_no_undefined_references(fixture, request):
    _, outputs = request.getfixturevalue(fixture)
    paper_dir = outputs.html.parent.parent  # the fixture's paper/, generated/ filled in
    pdf = paper_build.build_pdf(paper_dir)
    assert pdf is not None and pdf.read_bytes()[:4] == b"%PDF"
    log = (pdf.parent / "paper.log").read_text(errors="replace")
    assert "undefined" not in log.lower()
    assert "Missing character" not in log
