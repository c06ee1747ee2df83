"""Build paper/build/paper.pdf with latexmk, or say how to get TeX when it is missing.

TeX is optional for `invoke report`: the HTML report is useful on its own, so a missing
TeX installation is reported in one line instead of failing the whole report.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from analysis.errors import AnalysisError

TEX_MISSING = (
    "TeX not found: install it with `apt-get install latexmk texlive-latex-recommended "
    "texlive-publishers texlive-fonts-recommended` (the HTML report was still written)"
)
TIMEOUT_S = 300


class PaperBuildError(AnalysisError, RuntimeError):
    """LaTeX failed; the message names the log and quotes the first error."""


def first_latex_error(log_text: str) -> str:
    """The first TeX error ("! ..." line, or file:line: error with -file-line-error)."""
    for line in log_text.splitlines():
        if line.startswith("!") or re.match(r"^[^:\s]+\.tex:\d+: ", line):
            return line.strip()
    return "no LaTeX error line found; see the log"


def _text(output: str | bytes | None) -> str:
    # TimeoutExpired may carry bytes even when the run asked for text.
    if isinstance(output, bytes):
        return output.decode("utf-8", errors="replace")
    return output or ""


def build_pdf(paper_dir: Path, tex_name: str = "paper.tex") -> Path | None:
    """latexmk in ``paper_dir`` (so \\input{generated/...} resolves), output in build/."""
    latexmk = shutil.which("latexmk")
    if latexmk is None:
        print(TEX_MISSING)
        return None
    paper_dir = paper_dir.resolve()
    build_dir = paper_dir / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    log_path = build_dir / "latex.log"
    command = [latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error",
               f"-outdir={build_dir}", tex_name]
    try:
        result = subprocess.run(command, cwd=paper_dir, capture_output=True, text=True,
                                errors="replace", timeout=TIMEOUT_S, check=False)
        output = result.stdout + result.stderr
        returncode = result.returncode
    except subprocess.TimeoutExpired as error:
        output = (f"{_text(error.stdout)}{_text(error.stderr)}\n"
                  f"latexmk timed out after {TIMEOUT_S} s")
        returncode = -1
    log_path.write_text(" ".join(command) + "\n" + str(output), encoding="utf-8")
    pdf = build_dir / (Path(tex_name).stem + ".pdf")
    if returncode != 0 or not pdf.is_file():
        # TeX's own log has the full context; latexmk's output may only summarise it.
        tex_log = build_dir / (Path(tex_name).stem + ".log")
        details = output
        if tex_log.is_file():
            details = tex_log.read_text(encoding="utf-8", errors="replace") + "\n" + output
        raise PaperBuildError(
            f"LaTeX failed (exit {returncode}); see {log_path}: {first_latex_error(details)}"
        )
    return pdf
