"""Provider state on disk: which hosts a provider made ready, and their facts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STATE_DIR = Path("data/state")


def state_path(provider: str, state_dir: Path = STATE_DIR) -> Path:
    return state_dir / f"{provider}.json"


def write_state(provider: str, state: dict[str, Any], state_dir: Path = STATE_DIR) -> Path:
    path = state_path(provider, state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def read_state(provider: str, state_dir: Path = STATE_DIR) -> dict[str, Any] | None:
    path = state_path(provider, state_dir)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        message = f"{path}: corrupt provider state ({error}); run `invoke destroy`"
        raise ValueError(message) from error


def remove_state(provider: str, state_dir: Path = STATE_DIR) -> bool:
    path = state_path(provider, state_dir)
    if path.exists():
        path.unlink()
        return True
    return False
