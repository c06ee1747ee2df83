"""Plain text made safe for LaTeX (shared by the macros, tables and generated sections)."""

from __future__ import annotations

import unicodedata

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_UNICODE = {"®": r"\textregistered{}", "™": r"\texttrademark{}", "©": r"\textcopyright{}",
            "²": r"\textsuperscript{2}", "†": r"\textdagger{}", "ρ": r"$\rho$", "–": "--",
            "—": "---"}


def latex_escape(text: str) -> str:
    """Plain text safe for LaTeX; characters pdflatex may lack are reduced to ASCII."""
    out = []
    for char in str(text):
        if char in _SPECIAL:
            out.append(_SPECIAL[char])
        elif char in _UNICODE:
            out.append(_UNICODE[char])
        elif ord(char) < 128:
            out.append(char if char.isprintable() else " ")
        else:
            ascii_form = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(latex_escape(ascii_form) if ascii_form else "?")
    return "".join(out)
