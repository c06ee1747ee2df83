"""The cloud provider's state: data/state/cloud.json holds every lab this checkout created.

One entry per lab (``labs[<lab id>]``): driver, region, node ids, names, addresses, tags,
created/expires times, the key pair's provider id and name, the *paths* of the lab's SSH key
and known_hosts (data/state/cloud/<lab id>/), host keys and facts. Never a credential, never
key material. The file is rewritten (atomically) after every step of a creation, so a crash
leaves what ``destroy`` needs to delete what exists.
"""

from __future__ import annotations

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

    def load(self) -> dict[str, Any]:
        data = read_state(PROVIDER, self.state_dir)
        if data is None:
            return {"provider": PROVIDER, "current": None, "labs": {}}
        data.setdefault("labs", {})
        data.setdefault("current", None)
        return data

    def labs(self) -> dict[str, dict[str, Any]]:
        return self.load()["labs"]

    def save_lab(self, lab: dict[str, Any], *, current: bool = True) -> None:
        data = self.load()
        data["labs"][lab["lab_id"]] = lab
        if current:
            data["current"] = lab["lab_id"]
        write_state(PROVIDER, data, self.state_dir)

    def forget_lab(self, lab_id: str) -> None:
        """Drop a destroyed lab, its keys and known_hosts; the file goes with the last lab."""
        data = self.load()
        data["labs"].pop(lab_id, None)
        if data.get("current") == lab_id:
            data["current"] = None
        if data["labs"]:
            write_state(PROVIDER, data, self.state_dir)
        elif self.path.exists():
            self.path.unlink()
        shutil.rmtree(self.lab_dir(lab_id), ignore_errors=True)
        parent = self.state_dir / PROVIDER
        if parent.is_dir() and not any(parent.iterdir()):
            os.rmdir(parent)
