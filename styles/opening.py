"""Opening the library file: a damaged one is set aside (never lost), an unwritable one opens read-only."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from styles import migrations
from styles.errors import StyleError

# SQLite's primary result codes (sqlite3 exposes them as exc.sqlite_errorcode, extended).
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY = 3, 5, 6, 8
SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_NOTADB = 11, 14, 26
# How long a statement waits for another connection's lock before it reports "busy".
BUSY_TIMEOUT_MS = 5000
# The ways to open a file read-only, in order: plain read-only, then (when the -wal/-shm
# files cannot be created beside it) as an immutable file.
READ_ONLY_MODES = ("mode=ro", "immutable=1")


@dataclass
class Opened:
    """A library connection and what happened on the way."""

    db: Database
    uri: str  # the file as an SQLite URI that opens it read-only (e.g. to ATTACH it)
    read_only: str | None = None  # why it is read-only, if it is
    set_aside: Path | None = None  # where a damaged library was moved
    damage: str | None = None  # what was wrong with it


class _Damaged(Exception):
    def __init__(self, reason: str, stat: os.stat_result | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stat = stat


def error_code(exc: BaseException) -> int:
    """SQLite's primary result code of an sqlite3 error (0 when it has none)."""
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def is_busy(exc: BaseException) -> bool:
    """Another connection holds a lock: it will be released, nothing is wrong with the file."""
    return error_code(exc) in (SQLITE_BUSY, SQLITE_LOCKED)


def is_damage(exc: BaseException) -> bool:
    """The file is not a database, or a damaged one."""
    return error_code(exc) in (SQLITE_CORRUPT, SQLITE_NOTADB)


def can_write(path: Path) -> bool:
    """Whether this process may write `path` (a file or a folder)."""
    return os.access(path, os.W_OK)


def unwritable(path: Path) -> str | None:
    """Why the library at `path` cannot be written (the file, or its folder where SQLite keeps
    the -wal and -shm files beside it), or None when it can."""
    if path.exists() and not can_write(path):
        return f"{path} is not writable"
    if not can_write(path.parent):
        return f"the folder {path.parent} is not writable"
    return None


def open_library(path: Path) -> Opened:
    """Open (creating if needed) the library at `path`, checked; see the module's docstring."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StyleError(f"cannot open the style library: the folder {path.parent} "
                         f"cannot be created ({exc.strerror or exc})") from exc
    why = unwritable(path)
    if why is None:
        try:
            return _open_writable(path)
        except sqlite3.OperationalError as exc:
            if error_code(exc) not in (SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM):
                raise _opening_error(path, exc) from exc
            why = str(exc)
    return _open_read_only(path, why)


def _opening_error(path: Path, exc: sqlite3.DatabaseError) -> StyleError:
    if is_busy(exc):
        return StyleError(f"the style library {path} is busy: another program holds it locked ({exc}); try again")
    return StyleError(f"cannot open the style library {path}: {exc}")


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _uri(path: Path, mode: str) -> str:
    return f"{path.absolute().as_uri()}?{mode}"


def _open_writable(path: Path) -> Opened:
    uri = _uri(path, READ_ONLY_MODES[0])
    try:
        return Opened(_connect_checked(path), uri)
    except _Damaged as damaged:
        kept = set_aside(path, damaged.stat)
        return Opened(_connect_checked(path), uri, set_aside=kept, damage=damaged.reason)


def health(conn: sqlite3.Connection) -> str | None:
    """What SQLite's quick check finds wrong with an open database, or None when it is sound.
    It reads every page once: ~26 ms for a 12 MB library (2 shared cores), growing with the size."""
    rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    if rows == [("ok",)]:
        return None
    return str(rows[0][0]) if rows and rows[0] else "integrity check failed"


def _checked(path: Path, mode: str) -> tuple[sqlite3.Connection | None, str | None]:
    """A read-only connection and what is wrong with the file (None when it is sound), or no
    connection and the damage. Read-only, SQLite changes nothing in the file or its -wal on the way."""
    conn = None
    try:
        conn = sqlite3.connect(_uri(path, mode), uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn, health(conn)
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        if is_damage(exc):
            return None, str(exc)
        raise


def _connect_checked(path: Path) -> Database:
    """A writable connection, the file checked before anything can write to it, the schema current."""
    before = _stat(path)
    fresh = before is None or before.st_size == 0
    if not fresh:
        conn, reason = _checked(path, READ_ONLY_MODES[0])
        if conn is not None:
            conn.close()
        if reason is not None:
            raise _Damaged(reason, before)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db = Database(conn, execute_plugins=False)
        if fresh:
            # Only settable before the first table exists: lets deletes give space back.
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        migrations.apply(db)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_damage(exc):
            raise _Damaged(str(exc), before) from exc
        raise
    return db


def set_aside(path: Path, seen: os.stat_result | None) -> Path | None:
    """Move a damaged library and its -wal/-shm files to `<name>.damaged-<time>`, bytes untouched.

    None when the file is no longer the one found damaged (another program set it aside first).
    """
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while any(Path(f"{kept}{suffix}").exists() for suffix in ("", "-wal", "-shm")):
        kept = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        n += 1
    now = _stat(path)
    if now is None or seen is None or (now.st_dev, now.st_ino) != (seen.st_dev, seen.st_ino):
        return None
    try:
        os.rename(path, kept)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.rename(f"{path}{suffix}", f"{kept}{suffix}")
    except OSError as exc:
        raise StyleError(f"the style library {path} is damaged and could not be set aside "
                         f"({exc.strerror or exc}); it was left as it is") from exc
    return kept


def _open_read_only(path: Path, why: str) -> Opened:
    """The library opened read-only; a StyleError naming the folder where it cannot be opened at all."""
    if not path.exists() or path.stat().st_size == 0:
        raise StyleError(f"cannot create the style library in {path.parent}: {why}")
    failure: sqlite3.DatabaseError | None = None
    for mode in READ_ONLY_MODES:
        try:
            conn, reason = _checked(path, mode)
            if conn is not None and reason is None:
                return _read_only_library(path, conn, mode, why)
        except sqlite3.DatabaseError as exc:
            failure = exc
            continue
        if conn is not None:
            conn.close()
        raise StyleError(f"the style library {path} is damaged ({reason}) and, being read-only ({why}), "
                         "cannot be set aside; copy it elsewhere and try `stylesteer styles import-file` on the copy")
    raise StyleError(f"cannot open the style library in {path.parent} ({why}): {failure}")


def _read_only_library(path: Path, conn: sqlite3.Connection, mode: str, why: str) -> Opened:
    db = Database(conn, execute_plugins=False)
    try:
        current = migrations.is_current(db) and db["styles"].exists()
    except sqlite3.DatabaseError:
        db.close()
        raise
    if not current:
        db.close()
        raise StyleError(f"the style library {path} is not of this StyleSteer version and, being read-only "
                         f"({why}), cannot be upgraded")
    return Opened(db, _uri(path, mode), read_only=why)
