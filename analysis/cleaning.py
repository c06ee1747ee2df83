"""Which samples count: the cleaning rule, stated for every report.

Measured runs have a sample for every interval (the tracer reads the kernel's CPU counters,
so there is nothing to clean): the rule is "all samples". Imported `top` logs mark screens
in which top showed no row of the server (``top_no_match`` = 1; top hides idle processes);
their CPU is 0%. The original study dropped such screens, which inflates the mean at low
load; the importer records which rule the user asked for, and the report shows both.
"""

from __future__ import annotations

import pandas as pd

NO_MATCH = "top_no_match"
ALL_SAMPLES = "all samples"
ZERO_FILL = "zero-fill"  # imported: a screen without the server is a 0% sample
PAPER_COMPATIBLE = "paper-compatible"  # imported: such screens are dropped

MEANING = {
    ALL_SAMPLES: "every sample of the measured window is used (the tracer reads the kernel's "
                 "CPU counters, so no sample is missing)",
    ZERO_FILL: "a top screen without a row of the server counts as a 0% sample (top hides "
               "idle processes)",
    PAPER_COMPATIBLE: "top screens without a row of the server are dropped, as the original "
                      "study's cleaning did (this inflates the mean at low load)",
}


def has_top_screens(samples: pd.DataFrame) -> bool:
    return NO_MATCH in samples.columns


def rules(samples: pd.DataFrame) -> list[str]:
    """The rules a report can apply to this data: one for measured, two for imported."""
    return [ZERO_FILL, PAPER_COMPATIBLE] if has_top_screens(samples) else [ALL_SAMPLES]


def primary_rule(samples: pd.DataFrame, manifest: dict[str, object]) -> str:
    """The rule the main analysis uses: the one recorded at import, else zero-fill."""
    if not has_top_screens(samples):
        return ALL_SAMPLES
    recorded = manifest.get("cleaning_rule")
    return PAPER_COMPATIBLE if recorded == PAPER_COMPATIBLE else ZERO_FILL


def apply(samples: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The samples that count under ``rule`` (only paper-compatible removes any)."""
    if rule != PAPER_COMPATIBLE or not has_top_screens(samples):
        return samples
    no_match = pd.to_numeric(samples[NO_MATCH], errors="coerce").fillna(0) == 1
    return samples[~no_match]


def no_match_count(samples: pd.DataFrame) -> int:
    """Measured-window screens without the server, summed over all cells."""
    if not has_top_screens(samples):
        return 0
    measured = pd.to_numeric(samples["warmup"], errors="coerce") == 0
    flagged = pd.to_numeric(samples[NO_MATCH], errors="coerce").fillna(0) == 1
    return int((measured & flagged).sum())
