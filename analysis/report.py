"""`invoke report`: raw run -> processed tables, figures, LaTeX inputs, HTML, PDF.

Reads only ``data/raw/<run-id>/``; everything it writes can be deleted and regenerated.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from analysis import figures, html, inference, latex, paper_build, rq3, runfacts
from analysis.errors import AnalysisError
from analysis.rawdata import RawDataError, latest_run_id, load_run


@dataclass(frozen=True)
class ReportOutputs:
    run_id: str
    raw_dir: Path
    processed_dir: Path
    tables: list[Path]  # CSVs under data/processed/<run-id>/
    figures: list[Path]  # PDF and PNG under paper/generated/figures/
    generated: list[Path]  # macros.tex, table_*.tex, traces.tex, method/threats/ablation.tex
    html: Path
    pdf: Path | None  # None when TeX is not installed or build_pdf=False

    def describe(self) -> str:
        """Where everything went, for the person who ran `invoke report`."""
        pdf = str(self.pdf) if self.pdf else "not built (TeX missing or --no-pdf)"
        figures_dir = self.figures[0].parent if self.figures else "none"
        return "\n".join([
            f"run:     {self.run_id} ({self.raw_dir})",
            f"tables:  {self.processed_dir}",
            f"figures: {figures_dir} ({len(self.figures)} files)",
            f"report:  {self.html}",
            f"paper:   {pdf}",
        ])


def build_report(
    run_id: str | None = None,
    *,
    data_dir: Path = Path("data"),
    paper_dir: Path = Path("paper"),
    build_pdf: bool = True,
) -> ReportOutputs:
    """Analyse one run (the latest with a completed cell when ``run_id`` is None).

    The HTML report is written before the PDF is attempted, so a LaTeX failure still leaves
    the numbers viewable.
    """
    run_id = run_id or latest_run_id(data_dir)
    run = load_run(data_dir, run_id)
    if run.cells.empty:
        raise RawDataError(
            f"{run.raw_dir}: no completed (ok) cell to report on "
            f"({len(run.failed)} failed, {len(run.pending)} pending)"
        )
    results = inference.analyse(run)
    processed_dir = data_dir / "processed" / run_id
    tables = inference.write_processed(run, results, processed_dir)
    facts = runfacts.collect(run, results.summary)

    generated_dir = paper_dir / "generated"
    figure_paths = figures.draw_all(run, results, generated_dir / "figures")
    generated = latex.write_generated(run, results, facts, generated_dir)
    # RQ3 comes from the newest portability matrix (invoke portability), not from this run.
    generated.append(rq3.write_rq3(generated_dir, data_dir)[0])
    html_path = html.write_report(run, results, facts, figure_paths,
                                  paper_dir / "build" / "report.html",
                                  rq3_html=rq3.html_section(data_dir))
    pdf = paper_build.build_pdf(paper_dir) if build_pdf else None
    return ReportOutputs(
        run_id=run_id,
        raw_dir=run.raw_dir,
        processed_dir=processed_dir,
        tables=tables,
        figures=figure_paths,
        generated=generated,
        html=html_path,
        pdf=pdf,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_id", nargs="?", help="run under data/raw (default: the latest)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--paper-dir", type=Path, default=Path("paper"))
    parser.add_argument("--no-pdf", action="store_true", help="skip the LaTeX build")
    args = parser.parse_args(argv)
    try:
        outputs = build_report(args.run_id, data_dir=args.data_dir, paper_dir=args.paper_dir,
                               build_pdf=not args.no_pdf)
    except AnalysisError as error:
        raise SystemExit(f"report: {error}") from error
    print(outputs.describe())


if __name__ == "__main__":
    main()
