"""Importers: data recorded outside the pipeline, turned into runs under data/raw/.

``top_import`` (``invoke import-top``) reads batch output of FreeBSD or procps `top`; see
data/README.md ("Imported runs") for what it writes.
"""

from experiments.importers.top_import import ImportResult, TopImportError, import_top

__all__ = ["ImportResult", "TopImportError", "import_top"]
