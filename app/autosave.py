"""Autosave the draft every few seconds to the data folder; offer it back after a crash."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from styles.paths import user_dir

INTERVAL_MS = 5000


def autosave_dir() -> Path:
    path = user_dir() / "autosave"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Draft:
    text: str
    path: str | None  # the file the draft belongs to, if it had one
    saved_at: float


def _atomic_write(path: Path, data: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(data, encoding="utf-8")
    os.replace(tmp, path)  # never leave half a draft behind


def write(text: str, path: str | None) -> None:
    d = autosave_dir()
    _atomic_write(d / "draft.txt", text)
    _atomic_write(d / "draft.json", json.dumps({"path": path, "saved_at": time.time()}))


def read() -> Draft | None:
    d = autosave_dir()
    try:
        text = (d / "draft.txt").read_text(encoding="utf-8")
        meta = json.loads((d / "draft.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Draft(text, meta.get("path"), float(meta.get("saved_at", 0.0)))


def clear() -> None:
    for name in ("draft.txt", "draft.json"):
        try:
            (autosave_dir() / name).unlink()
        except FileNotFoundError:
            pass


def worth_recovering(draft: Draft | None) -> bool:
    """A draft is offered back when it holds text that the file on disk does not."""
    if draft is None or not draft.text.strip():
        return False
    if draft.path:
        p = Path(draft.path)
        try:
            if p.read_text(encoding="utf-8") == draft.text:
                return False
        except OSError:
            return True
    return True
