"""Snapshot assertions for pure builders: JSON files under tests/snapshots/. A missing or different snapshot
fails; run with UPDATE_SNAPSHOTS=1 to write them, then review the diff before committing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def assert_snapshot(name: str, value: Any) -> None:
    path = SNAPSHOTS / f"{name}.json"
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
        return
    assert path.exists(), f"missing snapshot {path.name}; run with UPDATE_SNAPSHOTS=1 and review it"
    assert path.read_text() == text, f"{path.name} differs from the builder output"
