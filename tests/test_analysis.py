"""analysis/ and paper/: synthetic runs in, known statistics, figures, macros, HTML, PDF out."""

from __future__ import annotations

import csv
import math
import re
import shutil
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import paper_build
from analysis.errors import AnalysisError
from analysis.latex import latex_escape
from analysis.rawdata import RawDataError, latest_run_id, load_run
from analysis.report import build_report
from analysis.summary import summarize, t_interval
from tests.analysis_fixtures import (
    LOAD_ACCURACY,
    WARMUP_CPU,
    cpu_delta,
    cpu_mean,
    measured_values,
    write_run,
)

REPO = Path(__file__).resolve().parents[1]
PAPER_TEX = REPO / "paper" / "paper.tex"
FAILED_REASON = "server exited with code 1: bind: address in use"
FAILED_KEY = ("c-fork", 16, 2)
PENDING_KEY = ("go-goroutine", 1, 2)
MEASURED_ROWS = 16
# t quantile 0.975 with 1 degree of freedom, from a printed table (tan(0.475 pi)).
T_975_DF1 = 12.706204736174707


def _paper_dir(root: Path) -> Path:
    paper = root / "paper"
    paper.mkdir()
    shutil.copy(PAPER_TEX, paper / "paper.tex")
    return paper


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    """One report (no PDF) over a run with a failed and a pending cell, shared by the tests."""
    root = tmp_path_factory.mktemp("report")
    run = write_run(root / "data", failed={FAILED_KEY: FAILED_REASON}, pending=(PENDING_KEY,),
                    measured_rows=MEASURED_ROWS)
    outputs = build_report(data_dir=root / "data", paper_dir=_paper_dir(root), build_pdf=False)
    return run, outputs


def _macros(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^\\newcommand\{\\([A-Za-z]+)\}\{(.*)\}$", path.read_text(),
                           re.MULTILINE))


def _csv(outputs, name: str) -> pd.DataFrame:
    return pd.read_csv(outputs.processed_dir / name)


# --- per-cell statistics -------------------------------------------------------------------

def test_cell_mean_sd_and_cv_are_recovered_exactly(report):
    _, outputs = report
    cells = _csv(outputs, "cells.csv")
    assert len(cells) == 10  # 12 planned - 1 failed - 1 pending
    for row in cells.itertuples():
        mean = cpu_mean(row.server, row.connections, row.repetition)
        values = measured_values(mean, MEASURED_ROWS)
        sd = statistics.stdev(values)
        assert row.cpu_pct_mean == pytest.approx(mean, rel=1e-12)
        assert row.cpu_pct_sd == pytest.approx(sd, rel=1e-12)
        assert row.cpu_pct_sd == pytest.approx(
            cpu_delta(mean) * math.sqrt(MEASURED_ROWS / (MEASURED_ROWS - 1)), rel=1e-12
        )
        assert row.cpu_cv == pytest.approx(sd / mean, rel=1e-12)
        assert row.user_pct_mean == pytest.approx(0.6 * mean, rel=1e-12)
        assert row.load_ratio == pytest.approx(LOAD_ACCURACY)


def test_warmup_samples_are_excluded(report):
    _, outputs = report
    cells = _csv(outputs, "cells.csv")
    assert (cells["n_samples"] == MEASURED_ROWS).all()
    assert cells["cpu_pct_mean"].max() < WARMUP_CPU / 10
    samples = _csv(outputs, "samples.csv")
    assert (samples.loc[samples["warmup"] == 1, "cpu_pct"] == WARMUP_CPU).all()  # kept raw


def test_random_trace_mean_and_cv_within_tolerance(tmp_path):
    run = write_run(tmp_path, connections=(4,), repetitions=1, measured_rows=MEASURED_ROWS)
    cell = run.cell("go-goroutine", 4, 1)
    trace = tmp_path / "raw" / run.run_id / cell["id"] / "trace.csv"
    with trace.open() as handle:
        rows = list(csv.DictReader(handle))
    rng = np.random.default_rng(7)
    n, mu, sigma = 4000, 40.0, 4.0
    values = rng.normal(mu, sigma, n)
    template = rows[-1]
    with trace.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(template))
        writer.writeheader()
        writer.writerows(rows[:4])  # the warm-up rows
        for i, value in enumerate(values):
            writer.writerow({**template, "t_rel_s": 3 + i * 0.5, "warmup": 0, "cpu_pct": value})
    cells = summarize(load_run(tmp_path, run.run_id)).cells
    row = cells[cells["cell_id"] == cell["id"]].iloc[0]
    assert row["n_samples"] == n
    assert row["cpu_pct_mean"] == pytest.approx(mu, abs=4 * sigma / math.sqrt(n))
    assert row["cpu_cv"] == pytest.approx(sigma / mu, rel=0.05)


# --- aggregation over repetitions ----------------------------------------------------------

def test_group_mean_and_t_interval_match_hand_computation(report):
    _, outputs = report
    groups = _csv(outputs, "summary.csv").set_index(["server", "connections"])
    row = groups.loc[("go-goroutine", 16)]
    rep_means = [cpu_mean("go-goroutine", 16, 1), cpu_mean("go-goroutine", 16, 2)]  # 16, 18
    mean = sum(rep_means) / 2
    half = T_975_DF1 * statistics.stdev(rep_means) / math.sqrt(2)
    assert row["n_reps"] == 2
    assert row["n_samples"] == 2 * MEASURED_ROWS
    assert row["cpu_pct_mean"] == pytest.approx(mean)
    assert row["cpu_pct_t_half"] == pytest.approx(half)
    assert row["cpu_pct_t_low"] == pytest.approx(mean - half)
    assert row["cpu_pct_t_high"] == pytest.approx(mean + half)
    # BCa over two repetitions cannot reach beyond them: the primary (band) interval.
    assert rep_means[0] <= row["cpu_pct_bca_low"] <= row["cpu_pct_bca_high"] <= rep_means[1]
    assert row["cpu_pct_ci_low"] == row["cpu_pct_bca_low"]
    assert row["cpu_pct_ci_method"] == "BCa bootstrap over repetitions"
    pooled = measured_values(rep_means[0], MEASURED_ROWS) + measured_values(rep_means[1],
                                                                            MEASURED_ROWS)
    assert row["cpu_pct_sd_pooled_samples"] == pytest.approx(statistics.stdev(pooled))
    cvs = [statistics.stdev(measured_values(m, MEASURED_ROWS)) / m for m in rep_means]
    assert row["cv_mean_of_reps"] == pytest.approx(sum(cvs) / 2)
    assert row["load_ratio_mean"] == pytest.approx(LOAD_ACCURACY)
    assert row["target_aggregate_bps"] == pytest.approx(16 * 1_000_000)


def test_single_repetition_condition_has_no_interval(report):
    _, outputs = report
    groups = _csv(outputs, "summary.csv").set_index(["server", "connections"])
    for key in [FAILED_KEY[:2], PENDING_KEY[:2]]:
        assert groups.loc[key, "n_reps"] == 1
        assert math.isnan(groups.loc[key, "cpu_pct_t_half"])
        assert math.isnan(groups.loc[key, "cpu_pct_bca_low"])
        # The single run's own interval (within-run block bootstrap) is what remains.
        assert groups.loc[key, "cpu_pct_ci_method"].startswith("studentized moving-block")
        low, high = groups.loc[key, ["cpu_pct_ci_low", "cpu_pct_ci_high"]]
        assert low <= groups.loc[key, "cpu_pct_mean"] <= high
    assert all(math.isnan(v) for v in t_interval([3.0]))


def test_go_over_c_ratio(report):
    _, outputs = report
    ratios = _csv(outputs, "rq1_comparisons.csv").set_index("connections")
    c4 = (cpu_mean("c-fork", 4, 1) + cpu_mean("c-fork", 4, 2)) / 2
    go4 = (cpu_mean("go-goroutine", 4, 1) + cpu_mean("go-goroutine", 4, 2)) / 2
    assert ratios.loc[4, "go_over_c"] == pytest.approx(go4 / c4)
    assert ratios.loc[16, "go_over_c"] == pytest.approx(17 / cpu_mean("c-fork", 16, 1))


# --- loading errors and run selection ------------------------------------------------------

def test_missing_manifest_names_the_file(tmp_path):
    run = write_run(tmp_path)
    (run.raw_dir / "manifest.json").unlink()
    # AnalysisError is what `invoke report` turns into a one-line message.
    with pytest.raises(AnalysisError, match=re.escape(str(run.raw_dir / "manifest.json"))):
        load_run(tmp_path, run.run_id)


def test_corrupt_manifest_names_the_file(tmp_path):
    run = write_run(tmp_path)
    (run.raw_dir / "manifest.json").write_text('{"cells": [')
    with pytest.raises(RawDataError, match=r"manifest\.json: not valid JSON"):
        load_run(tmp_path, run.run_id)
    (run.raw_dir / "manifest.json").write_text('{"run_id": "x"}')
    with pytest.raises(RawDataError, match=r"manifest\.json: corrupt manifest"):
        load_run(tmp_path, run.run_id)


def test_manifest_ok_but_cell_files_missing_is_an_error(tmp_path):
    run = write_run(tmp_path, connections=(1,), repetitions=1)
    cell = run.cell("c-fork", 1, 1)
    (run.raw_dir / cell["id"] / "trace.csv").unlink()
    with pytest.raises(RawDataError, match=r"trace\.csv: missing"):
        load_run(tmp_path, run.run_id)


def test_latest_run_id_picks_newest_run_with_an_ok_cell(tmp_path):
    with pytest.raises(RawDataError, match=re.escape(str(tmp_path / "raw"))):
        latest_run_id(tmp_path)
    write_run(tmp_path, "20261120-100000-quick-aaaa", connections=(1,), repetitions=1,
              started_at="2026-11-20T10:00:00+00:00")
    write_run(tmp_path, "20261122-100000-quick-bbbb", connections=(1,), repetitions=1,
              started_at="2026-11-22T10:00:00+00:00")
    # Newest, but nothing completed: must be skipped.
    write_run(tmp_path, "20261123-100000-quick-cccc", connections=(1,), repetitions=1,
              started_at="2026-11-23T10:00:00+00:00",
              failed={("c-fork", 1, 1): "x", ("go-goroutine", 1, 1): "y"})
    broken = tmp_path / "raw" / "20261124-100000-quick-dddd"
    broken.mkdir()
    (broken / "manifest.json").write_text("not json")
    assert latest_run_id(tmp_path) == "20261122-100000-quick-bbbb"


# --- generated outputs ---------------------------------------------------------------------

def test_figures_exist_as_pdf_and_png(report):
    _, outputs = report
    names = {p.name for p in outputs.figures}
    for stem in ["cpu_vs_connections", "cv_vs_connections", "cpu_split", "acf", "trace_c-fork",
                 "trace_go-goroutine"]:
        for suffix, magic in [("pdf", b"%PDF"), ("png", b"\x89PNG")]:
            assert f"{stem}.{suffix}" in names
            path = next(p for p in outputs.figures if p.name == f"{stem}.{suffix}")
            assert path.read_bytes()[:4] == magic
            assert path.stat().st_size > 5_000, path


def test_macros_have_expected_values(report):
    _, outputs = report
    macros = _macros(next(p for p in outputs.generated if p.name == "macros.tex"))
    assert macros["CellsOk"] == "10"
    assert macros["CellsFailed"] == "1"
    assert macros["CellsPending"] == "1"
    assert macros["CellsPlanned"] == "12"
    assert macros["Repetitions"] == "2"
    assert macros["RepetitionsMin"] == "1"
    assert macros["MaxConnections"] == "16"
    assert macros["MinConnections"] == "1"
    assert macros["MeasureSeconds"] == "8"
    assert macros["WarmupSeconds"] == "2"
    assert macros["SampleIntervalMs"] == "500"
    assert macros["CForkCpuAtMaxConn"] == f"{cpu_mean('c-fork', 16, 1):.2f}"
    assert macros["CForkCpuCIAtMaxConn"] == "n/a"  # its second repetition failed
    assert macros["GoCpuAtMaxConn"] == "17.00"
    assert macros["GoCpuCIAtMaxConn"] == f"{T_975_DF1 * math.sqrt(2) / math.sqrt(2):.2f}"
    assert macros["GoOverCRatioAtMaxConn"] == f"{17 / cpu_mean('c-fork', 16, 1):.2f}"
    assert macros["LoadAccuracyMeanPct"] == f"{100 * LOAD_ACCURACY:.1f}"
    assert macros["TracerCpuSecondsMax"] == "0.05"
    assert macros["CpuIsolation"] == "isolated"
    assert macros["HostCPU"] == r"Synthetic\_CPU 100\% \& more @ 2.20GHz"
    assert macros["HostArch"] == r"x86\_64"
    assert macros["GoVersion"] == "go version go1.27.3 linux/amd64"
    table = next(p for p in outputs.generated if p.name == "table_summary.tex").read_text()
    assert r"\begin{tabular}" in table and "[16.00, 18.00]" in table  # BCa within the reps
    assert "n/a" in table  # the t interval of the single-repetition conditions


def test_every_macro_used_by_the_paper_is_generated(report):
    _, outputs = report
    defined = set(_macros(next(p for p in outputs.generated if p.name == "macros.tex")))
    text = _strip_comments(PAPER_TEX.read_text())
    used = set(re.findall(r"\\([A-Z][A-Za-z]*)", text)) - {"IEEEauthorblockN",
                                                            "IEEEauthorblockA"}
    assert used - defined == set()


def test_html_lists_failed_cells_and_facts(report):
    run, outputs = report
    html = outputs.html.read_text()
    failed = run.cell(*FAILED_KEY)
    assert failed["id"] in html
    assert FAILED_REASON in html
    assert run.cell(*PENDING_KEY)["id"] in html
    assert str(run.raw_dir) in html
    assert run.run_id in html and "isolated" in html and "papaya-loadgen 0.1.0" in html
    assert html.count("data:image/png;base64,") == 6
    assert "n/a" in html  # the single-repetition conditions
    assert str(outputs.html) in outputs.describe()


def test_latex_escape():
    assert latex_escape(r"a_b 100% & $x#{y}~^\ ") == (
        r"a\_b 100\% \& \$x\#\{y\}\textasciitilde{}\textasciicircum{}\textbackslash{} "
    )
    assert latex_escape("Intel® Xeon™ café") == r"Intel\textregistered{} Xeon\texttrademark{} cafe"


# --- the paper -----------------------------------------------------------------------------

def _strip_comments(tex: str) -> str:
    return "\n".join(re.sub(r"(?<!\\)%.*$", "", line) for line in tex.splitlines())


def test_paper_has_no_literal_decimal_numbers():
    """Every hand-written .tex file of paper/ (not generated/): results come from macros."""
    sources = sorted(PAPER_TEX.parent.glob("*.tex"))
    assert PAPER_TEX in sources
    for source in sources:
        text = _strip_comments(source.read_text())
        assert re.findall(r"\d+\.\d+", text) == [], source
        # Percentages, p-values and the like would be literal results too.
        assert re.findall(r"\d+\s*\\%", text) == [], source


def test_missing_tex_prints_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paper_build.shutil, "which", lambda name: None)
    assert paper_build.build_pdf(tmp_path) is None
    assert "TeX not found: install it with `apt-get install latexmk" in capsys.readouterr().out


needs_tex = pytest.mark.skipif(shutil.which("latexmk") is None,
                               reason="latexmk not installed (CI installs TeX Live)")


@needs_tex
def test_pdf_builds_without_undefined_references(tmp_path):
    write_run(tmp_path / "data", failed={FAILED_KEY: FAILED_REASON})
    outputs = build_report(data_dir=tmp_path / "data", paper_dir=_paper_dir(tmp_path))
    assert outputs.pdf is not None and outputs.pdf.read_bytes()[:4] == b"%PDF"
    log = (outputs.pdf.parent / "paper.log").read_text(errors="replace")
    assert "undefined" not in log.lower()
    assert (outputs.pdf.parent / "latex.log").is_file()


@needs_tex
def test_latex_failure_names_the_log_and_first_error(tmp_path):
    (tmp_path / "paper.tex").write_text(
        "\\documentclass{article}\\begin{document}\\nosuchmacro\\end{document}\n"
    )
    with pytest.raises(paper_build.PaperBuildError) as error:
        paper_build.build_pdf(tmp_path)
    assert str(tmp_path / "build" / "latex.log") in str(error.value)
    assert "Undefined control sequence" in str(error.value)


def test_single_repetition_run_reports_na(tmp_path):
    write_run(tmp_path / "data", repetitions=1, connections=(1, 2))
    outputs = build_report(data_dir=tmp_path / "data", paper_dir=_paper_dir(tmp_path),
                           build_pdf=False)
    macros = _macros(next(p for p in outputs.generated if p.name == "macros.tex"))
    assert macros["GoCpuCIAtMaxConn"] == "n/a"  # no t interval from one repetition
    assert macros["GoCpuTIntervalAtMaxConn"] == "no interval"
    # ... but the within-run block bootstrap of the single run gives one.
    assert macros["GoCpuIntervalAtMaxConn"].startswith("95\\% CI [")
    assert "within the single repetition" in macros["BandNote"]
    assert "single repetition per condition" in macros["RQOneTestSentence"]
    assert "No cell failed." in outputs.html.read_text()


def test_run_without_completed_cells_is_a_clear_error(tmp_path):
    run = write_run(tmp_path / "data", connections=(1,), repetitions=1,
                    failed={("c-fork", 1, 1): "x", ("go-goroutine", 1, 1): "y"})
    with pytest.raises(AnalysisError, match="no completed"):
        build_report(run.run_id, data_dir=tmp_path / "data", paper_dir=_paper_dir(tmp_path),
                     build_pdf=False)
