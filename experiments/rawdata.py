"""The run directory under data/raw: append-only, every cell complete or absent.

A cell is written under ``.work/`` and renamed into place when complete; a rename is atomic,
so a runner killed at any moment leaves each cell either whole or missing. Finished cells are
never opened for writing again.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RAW_DIR = Path("data/raw")
MANIFEST = "manifest.json"
STATUS = "status.json"


class RunDirError(RuntimeError):
    """A run directory that cannot be used as asked (missing, corrupt, or not ours)."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class RunDir:
    def __init__(self, path: Path):
        self.path = path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @classmethod
    def create(cls, run_id: str, raw_dir: Path = RAW_DIR) -> RunDir:
        path = raw_dir / run_id
        path.mkdir(parents=True, exist_ok=False)
        return cls(path)

    @classmethod
    def open(cls, run_id: str, raw_dir: Path = RAW_DIR) -> RunDir:
        path = raw_dir / run_id
        if not (path / MANIFEST).is_file():
            known = sorted(p.name for p in raw_dir.glob("*") if (p / MANIFEST).is_file())
            hint = f" (runs here: {', '.join(known[-5:])})" if known else ""
            raise RunDirError(f"no run {run_id!r} under {raw_dir}{hint}")
        return cls(path)

    def read_manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest_path.read_text())
        except json.JSONDecodeError as error:
            raise RunDirError(f"{self.manifest_path}: corrupt manifest: {error}") from error

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.manifest_path, manifest)

    def cell_dir(self, cell_id: str) -> Path:
        return self.path / cell_id

    def is_complete(self, cell_id: str) -> bool:
        return (self.cell_dir(cell_id) / STATUS).is_file()

    def work_dir(self, cell_id: str) -> Path:
        """A clean scratch directory for a cell in progress; a killed attempt's leftovers go."""
        work = self.path / ".work" / cell_id
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        return work

    def commit_cell(self, work: Path, cell_id: str, status: dict[str, Any]) -> Path:
        """Write status.json last, then move the cell into place in one rename."""
        write_json_atomic(work / STATUS, status)
        if status["status"] == "ok":
            final = self.cell_dir(cell_id)
            if final.exists():
                raise RunDirError(f"{final} exists already; a finished cell is never replaced")
        else:
            failed = self.path / "failed"
            failed.mkdir(exist_ok=True)
            attempt = 1 + sum(1 for _ in failed.glob(f"{cell_id}.*"))
            final = failed / f"{cell_id}.{attempt}"
        os.rename(work, final)
        return final

    def discard_work(self) -> None:
        shutil.rmtree(self.path / ".work", ignore_errors=True)
