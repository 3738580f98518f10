"""Drafts: each window autosaves its own, and a draft whose window is gone is offered back.

Every window owns a draft slot in the data folder's `autosave/` folder: `<id>.txt` (the text),
`<id>.json` (which file it belongs to, when) and `<id>.lock`, a QLockFile the window holds while
it lives. Another instance can tell a live window's draft from an orphan by trying that lock:
QLockFile takes over a lock only when the process that wrote it is gone (stale time 0).
The single shared `draft.txt` of earlier versions has no lock, so it is offered like an orphan.
A draft is deleted only when its own window closes cleanly or saves, or when the user discards
it; a window that was never edited writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QLockFile

from styles.paths import user_dir

INTERVAL_MS = 5000  # longest stretch of typing a kill -9 can lose
IDLE_MS = 1500  # a pause in typing this long saves at once


def autosave_dir() -> Path:
    return user_dir() / "autosave"


def _atomic_write(path: Path, data: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # never leave half a draft behind
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _lock(folder: Path, draft_id: str) -> QLockFile:
    lock = QLockFile(str(folder / f"{draft_id}.lock"))
    lock.setStaleLockTime(0)  # stale only when its process is gone, however old
    return lock


@dataclass
class Draft:
    """A draft left by a window that is gone, held (locked) by us while we decide about it."""

    draft_id: str
    text: str
    path: str | None  # the file the draft belongs to, if it had one
    saved_at: float
    folder: Path
    _lock: QLockFile | None = field(default=None, repr=False)

    def title(self) -> str:
        return Path(self.path).name if self.path else "Untitled"

    def release(self) -> None:
        """Keep the draft for later: let another start offer it again."""
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None

    def discard(self) -> None:
        """The user does not want it (or it now lives in a window): delete it for good."""
        for suffix in (".txt", ".json"):
            with contextlib.suppress(OSError):
                (self.folder / f"{self.draft_id}{suffix}").unlink()
        self.release()


def _read(folder: Path, draft_id: str) -> tuple[str, str | None, float] | None:
    """(text, file it belongs to, when); damaged metadata never hides the text itself."""
    txt = folder / f"{draft_id}.txt"
    try:
        text = txt.read_text(encoding="utf-8")
        saved_at = txt.stat().st_mtime
    except (OSError, ValueError):
        return None
    path: str | None = None
    try:
        meta = json.loads((folder / f"{draft_id}.json").read_text(encoding="utf-8"))
        if isinstance(meta, dict):
            path = meta.get("path") if isinstance(meta.get("path"), str) else None
            saved_at = float(meta.get("saved_at", saved_at) or saved_at)
    except (OSError, ValueError, TypeError):
        pass
    return text, path, saved_at


def orphans(folder: Path | None = None) -> list[Draft]:
    """Drafts whose window is gone and that hold text the file on disk does not; newest first.

    Each returned draft is locked by the caller's process until it is recovered, discarded or
    released, so two instances starting together never offer the same draft.
    """
    folder = folder or autosave_dir()
    try:
        ids = sorted({p.stem for p in folder.glob("*.txt")})  # the text is what matters
    except OSError:
        return []
    found: list[Draft] = []
    for draft_id in ids:
        lock = _lock(folder, draft_id)
        if not lock.tryLock(0):
            continue  # a live window's draft (or another instance is offering it right now)
        read = _read(folder, draft_id)
        draft = Draft(draft_id, *read, folder, lock) if read else None
        if draft is None or not worth_recovering(draft):
            if draft is not None:
                draft.discard()  # nothing in it the file does not have
            else:
                lock.unlock()
            continue
        found.append(draft)
    found.sort(key=lambda d: d.saved_at, reverse=True)
    return found


def worth_recovering(draft: Draft) -> bool:
    """A draft is offered back when it holds text that the file on disk does not."""
    if not draft.text.strip():
        return False
    if draft.path:
        from styles.readers import ReadError, decode_document

        try:
            if decode_document(Path(draft.path).read_bytes()).text == draft.text:
                return False
        except (OSError, ReadError):
            return True
    return True


class DraftSlot:
    """One window's own draft: written while the window lives, gone when it closes cleanly."""

    def __init__(self, folder: Path | None = None) -> None:
        self.draft_id = f"w{os.getpid()}-{uuid.uuid4().hex[:10]}"
        self.problem: str | None = None  # why autosave is off, said once
        self._lock: QLockFile | None = None
        self._written = False
        try:
            self.folder = folder or autosave_dir()
        except OSError as exc:  # the data folder itself cannot be created
            self.folder = Path(os.devnull)
            self.problem = f"no data folder ({exc.strerror or exc})"
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.problem = f"cannot create {self.folder}: {exc.strerror or exc}"
            return
        lock = _lock(self.folder, self.draft_id)
        if not lock.tryLock(0):
            self.problem = f"cannot write in {self.folder} ({_lock_error(lock)})"
            return
        self._lock = lock

    @property
    def available(self) -> bool:
        return self._lock is not None

    def write(self, text: str, path: str | None) -> None:
        """Save the draft; raises OSError (the window says so once)."""
        if self._lock is None:
            raise OSError(self.problem or "autosave is off")
        self._written = True  # before writing: a half-written slot is still cleared on close
        _atomic_write(self.folder / f"{self.draft_id}.txt", text)
        _atomic_write(self.folder / f"{self.draft_id}.json",
                      json.dumps({"path": path, "saved_at": time.time(), "pid": os.getpid()}))
        self._written = True

    def clear(self) -> None:
        """The text is safe elsewhere (saved, or a clean close): the draft goes, the lock stays."""
        if not self._written:
            return
        for suffix in (".txt", ".json"):  # text first: a half-cleared draft is never offered
            with contextlib.suppress(OSError):
                (self.folder / f"{self.draft_id}{suffix}").unlink()
        self._written = False

    def close(self) -> None:
        self.clear()
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None


def _lock_error(lock: QLockFile) -> str:
    error = lock.error()
    if error == QLockFile.LockError.PermissionError:
        return "permission denied"
    if error == QLockFile.LockError.LockFailedError:
        return "the lock is held"
    return "unknown error"
