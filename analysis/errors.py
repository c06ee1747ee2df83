"""The one exception family `invoke report` turns into a single-line message."""

from __future__ import annotations


class AnalysisError(Exception):
    """A report that cannot be produced; the message names the file or run at fault."""
