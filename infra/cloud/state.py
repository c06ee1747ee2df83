"""The cloud provider's state: one file per lab, plus an index of the labs.

``data/state/cloud/<lab id>/lab.json`` holds one lab: driver, region, node ids, names,
addresses, tags, created/expires times, the key pair's provider id and name, the *paths* of the
lab's SSH key and known_hosts (beside it in the same folder), host keys and facts. Never a
credential, never key material. ``data/state/cloud.json`` is only the index (which labs exist,
which is current). Both are rewritten atomically after every step of a creation, so a crash
leaves what ``destroy`` needs to delete what exists.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from infra.state import read_state, state_path, write_state

PROVIDER = "cloud"
LAB_PREFIX = "papaya-"


def new_lab_id(now: datetime) -> str:
    return f"{LAB_PREFIX}{now:%Y%m%d%H%M%S}-{secrets.token_hex(2)}"


class CloudState:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)

    @property
    def path(self) -> Path:
        return state_path(PROVIDER, self.state_dir)

    def lab_dir(self, lab_id: str) -> Path:
        return self.state_dir / PROVIDER / lab_id

    def lab_file(self, lab_id: str) -> Path:
        return self.lab_dir(lab_id) / "lab.json"

    def load(self) -> dict[str, Any]:
        """The index with every lab's record under ``labs`` (read from its own file)."""
        index = read_state(PROVIDER, self.state_dir)
        if index is None:
            return {"provider": PROVIDER, "current": None, "labs": {}}
        labs = {}
        for lab_id in index.get("labs", []):
            path = self.lab_file(lab_id)
            try:
                labs[lab_id] = json.loads(path.read_text())
            except FileNotFoundError:
                continue  # forgotten half-way; the index is fixed on the next write
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: corrupt lab state ({error})") from error
        return {"provider": PROVIDER, "current": index.get("current"), "labs": labs}

    def labs(self) -> dict[str, dict[str, Any]]:
        return self.load()["labs"]

    def save_lab(self, lab: dict[str, Any], *, current: bool = True) -> None:
        path = self.lab_file(lab["lab_id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(lab, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
        data = self.load()
        labs = sorted(set(data["labs"]) | {lab["lab_id"]})
        write_state(PROVIDER, {"provider": PROVIDER, "labs": labs,
                               "current": lab["lab_id"] if current else data["current"]},
                    self.state_dir)

    def forget_lab(self, lab_id: str) -> None:
        """Drop a destroyed lab: its file, keys and known_hosts; the index goes with the last."""
        shutil.rmtree(self.lab_dir(lab_id), ignore_errors=True)
        data = self.load()
        current = None if data.get("current") == lab_id else data.get("current")
        if data["labs"]:
            write_state(PROVIDER, {"provider": PROVIDER, "labs": sorted(data["labs"]),
                                   "current": current}, self.state_dir)
        elif self.path.exists():
            self.path.unlink()
        parent = self.state_dir / PROVIDER
        if parent.is_dir() and not any(parent.iterdir()):
            os.rmdir(parent)
