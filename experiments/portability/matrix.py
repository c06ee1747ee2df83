"""The matrix's records and its JSON file (``data/portability/<run-id>/matrix.json``).

A row is one build: where (host) and for what (target, os, arch), with which compiler, mode
and make, of which server; whether it built, its warnings, and the tests run on that very
binary (passed/total). Checks over the sources (no signal() calls) sit beside the rows.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "papaya-portability/1"
ROW_KEYS = ("id", "kind", "target", "host", "os", "arch", "server", "language", "compiler",
            "compiler_version", "mode", "make", "make_version", "builds", "warnings",
            "tests_passed", "tests_total", "notes")
NOT_APPLICABLE = "-"


@dataclass
class TestResult:
    """One check (smoke, conformance, a regression) run on one row's binary."""

    name: str  # smoke | conformance | v6only | sigchld | sigusr1 | biglog
    passed: int
    total: int
    status: str  # passed | failed | skipped
    failures: list[str] = field(default_factory=list)
    detail: list[Any] = field(default_factory=list)  # subchecks, or skipped reason
    duration_s: float = 0.0
    ran_on: str = ""


@dataclass
class Row:
    kind: str  # native | cross-zig | cross-go | deployed-go
    target: str
    host: str
    os: str
    arch: str
    server: str
    language: str
    compiler: str
    compiler_version: str
    mode: str
    make: str
    make_version: str
    builds: bool = False
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    log: str = ""
    binary: dict[str, Any] | None = None  # the ELF header of cross builds
    notes: list[str] = field(default_factory=list)
    tests: list[TestResult] = field(default_factory=list)

    @property
    def id(self) -> str:
        return ":".join((self.host, self.target, self.server, self.compiler, self.mode,
                         self.make))

    @property
    def tests_passed(self) -> int:
        return sum(t.passed for t in self.tests if t.status != "skipped")

    @property
    def tests_total(self) -> int:
        return sum(t.total for t in self.tests if t.status != "skipped")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(id=self.id, tests_passed=self.tests_passed, tests_total=self.tests_total,
                    warning_count=len(self.warnings))
        return data


@dataclass
class Matrix:
    run_id: str
    created: str
    hosts: list[dict[str, Any]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "run_id": self.run_id, "created": self.created,
                "duration_s": round(self.duration_s, 1), "tools": self.tools,
                "hosts": self.hosts, "checks": self.checks, "notes": self.notes,
                "rows": [row.as_dict() for row in self.rows]}

    def write(self, path: Path) -> None:
        """Atomically: a matrix.json is complete or absent."""
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=1, sort_keys=False) + "\n")
        os.replace(tmp, path)


class MatrixError(ValueError):
    """A matrix.json that is missing or not of this schema."""


def load_matrix(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise MatrixError(f"{path}: cannot read the portability matrix: {error}") from error
    if data.get("schema") != SCHEMA:
        raise MatrixError(f"{path}: schema {data.get('schema')!r}, expected {SCHEMA!r}")
    for index, row in enumerate(data.get("rows", [])):
        missing = [key for key in ROW_KEYS if key not in row]
        if missing:
            raise MatrixError(f"{path}: row {index} lacks {', '.join(missing)}")
    return data


def newest_matrix(root: Path = Path("data/portability")) -> Path | None:
    """The matrix.json of the newest run under ``root`` (run ids sort by time), or None."""
    found = sorted(root.glob("*/matrix.json"))
    return found[-1] if found else None
