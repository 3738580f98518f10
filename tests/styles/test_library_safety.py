"""The library keeps what it holds: a damaged file is set aside, an unwritable one opens read-only,
and a second writer waits its turn."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app import main as cli
from app.cli import library as cli_styles
from styles import opening
from styles.errors import LibraryReadOnly, StyleError
from styles.importer import ImportProgress, import_paths, rebuild
from styles.store import StyleStore
from tests.styles.test_import import snapshot, write_many
from tests.styles.tiny_tokenizer import TinyTokenizer

REPO = Path(__file__).resolve().parents[2]


def make_library(path: Path, texts: Path) -> None:
    with StyleStore(path) as store:
        import_paths(store, "mine", [texts], TinyTokenizer())
    assert not Path(f"{path}-wal").exists()  # checkpointed on close: the file holds everything


# --------------------------------------------------------------------------- damaged


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_a_damaged_library_is_set_aside_and_a_fresh_one_started(tmp_path, texts, damage):
    path = tmp_path / "lib" / "styles.db"
    make_library(path, texts)
    data = path.read_bytes()
    bad = data[: len(data) // 2] if damage == "truncated" else os.urandom(len(data))
    path.write_bytes(bad)
    Path(f"{path}-wal").write_bytes(b"wal bytes")
    with StyleStore(path) as store:
        kept = store.set_aside
        assert kept is not None and kept.name.startswith("styles.db.damaged-")
        assert kept.read_bytes() == bad  # the original bytes, untouched
        assert Path(f"{kept}-wal").read_bytes() == b"wal bytes"
        assert store.list_styles() == []
        assert store.notice is not None and str(kept) in store.notice
        assert f"stylesteer styles import-file {kept}" in store.notice
        assert import_paths(store, "new", [texts], TinyTokenizer()).imported  # the fresh library works
    with StyleStore(path) as again:  # said once: the fresh library is sound
        assert again.set_aside is None and again.notice is None
        assert [s.name for s in again.list_styles()] == ["new"]


def test_a_sound_library_is_not_set_aside(tmp_path, texts):
    path = tmp_path / "styles.db"
    make_library(path, texts)
    with StyleStore(path) as store:
        assert store.set_aside is None and store.notice is None and not store.read_only
        assert [s.name for s in store.list_styles()] == ["mine"]


def test_a_library_locked_by_another_program_is_not_set_aside(tmp_path, texts, monkeypatch):
    path = tmp_path / "styles.db"
    make_library(path, texts)
    before = path.read_bytes()
    holder = sqlite3.connect(path)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(opening, "BUSY_TIMEOUT_MS", 100)
    try:
        with pytest.raises(StyleError, match="busy"):
            StyleStore(path)
    finally:
        holder.rollback()
        holder.close()
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.damaged-*"))


def test_two_set_asides_never_overwrite_each_other(tmp_path, texts):
    path = tmp_path / "styles.db"
    for _ in range(2):
        path.write_bytes(b"not a database at all" * 10)
        StyleStore(path).close()
    kept = sorted(tmp_path.glob("styles.db.damaged-*"))
    assert len(kept) == 2 and all(k.read_bytes() == b"not a database at all" * 10 for k in kept)


def test_the_cli_says_once_where_the_damaged_library_went(capsys, monkeypatch, texts, _user_home):
    monkeypatch.setattr(cli_styles, "_load_tokenizer", lambda _spec: TinyTokenizer())
    _user_home.mkdir(parents=True, exist_ok=True)
    (_user_home / "styles.db").write_bytes(os.urandom(8192))
    assert cli.main(["styles", "list"]) == 0
    out, err = capsys.readouterr()
    assert "No styles yet" in out
    (line,) = [x for x in err.splitlines() if "damaged" in x]
    assert "styles.db.damaged-" in line and "stylesteer styles import-file" in line
    assert cli.main(["styles", "list"]) == 0
    assert "damaged" not in capsys.readouterr().err


# --------------------------------------------------------------------------- read-only


@pytest.fixture
def unwritable(monkeypatch):
    """Make the library's folder (and what is in it) unwritable for the store's check; the tests run as
    root, which ignores permission bits. SQLite is then really asked for a read-only connection."""
    folders: list[Path] = []

    def can_write(path: Path) -> bool:
        return not any(Path(path) == f or f in Path(path).parents for f in folders)

    monkeypatch.setattr(opening, "can_write", can_write)
    return folders


def test_an_unwritable_library_opens_read_only(tmp_path, texts, unwritable):
    path = tmp_path / "lib" / "styles.db"
    make_library(path, texts)
    before = path.read_bytes()
    unwritable.append(path.parent)
    with StyleStore(path) as store:
        assert store.read_only and store.notice and "read-only" in store.notice
        assert [s.name for s in store.list_styles()] == ["mine"]
        assert store.load_prior("mine").n_tokens == 18
        with pytest.raises(sqlite3.OperationalError, match="readonly"):  # SQLite itself refuses
            store.conn.execute("UPDATE styles SET name = 'x'")
        exported = store.export("mine", tmp_path / "out" / "mine.style")  # reading is all it needs
        writes = [
            lambda: import_paths(store, "mine", [texts], TinyTokenizer()),
            lambda: rebuild(store, "mine", TinyTokenizer(name="other", offset=3)),
            lambda: store.rename("mine", "yours"),
            lambda: store.delete("mine"),
            lambda: store.remove_document("mine", str(texts / "a.txt")),
            lambda: store.import_file(exported, name="copy"),
        ]
        for write in writes:
            with pytest.raises(LibraryReadOnly, match=f"the style library at {path} is read-only"):
                write()
        assert [s.name for s in store.list_styles()] == ["mine"]
    assert path.read_bytes() == before


def test_read_only_falls_back_to_an_immutable_file(tmp_path, texts, unwritable, monkeypatch):
    path = tmp_path / "styles.db"
    make_library(path, texts)
    unwritable.append(tmp_path)
    # As when the -wal/-shm files cannot be created: the plain read-only open fails.
    monkeypatch.setattr(opening, "READ_ONLY_MODES", ("mode=ro&vfs=no-such-vfs", "immutable=1"))
    with StyleStore(path) as store:
        assert store.read_only and [s.name for s in store.list_styles()] == ["mine"]


def test_a_library_sqlite_cannot_write_opens_read_only(tmp_path, texts, monkeypatch):
    """Permission bits can pass the check and SQLite still refuse to write (an ACL, a read-only mount)."""
    path = tmp_path / "styles.db"
    make_library(path, texts)

    def refused(_path: Path) -> None:
        exc = sqlite3.OperationalError("attempt to write a readonly database")
        exc.sqlite_errorcode = opening.SQLITE_READONLY  # type: ignore[attr-defined]
        raise exc

    monkeypatch.setattr(opening, "_connect_checked", refused)
    with StyleStore(path) as store:
        assert store.read_only and "readonly database" in (store.notice or "")
        assert [s.name for s in store.list_styles()] == ["mine"]


def test_a_library_that_cannot_be_created_names_its_folder(tmp_path, unwritable):
    folder = tmp_path / "data"
    folder.mkdir()
    unwritable.append(folder)
    with pytest.raises(StyleError, match=f"cannot create the style library in {folder}"):
        StyleStore(folder / "styles.db")
    assert not (folder / "styles.db").exists()


def test_the_cli_lists_a_read_only_library_and_refuses_changes(capsys, texts, unwritable, _user_home):
    make_library(_user_home / "styles.db", texts)
    unwritable.append(_user_home)
    assert cli.main(["styles", "list"]) == 0
    out, err = capsys.readouterr()
    assert "mine" in out and "read-only" in err
    assert cli.main(["styles", "rename", "mine", "yours"]) == 2
    assert "read-only" in capsys.readouterr().err


# --------------------------------------------------------------------------- waiting


def _import_in_thread(path: Path, folder: Path, cancel: threading.Event, seen: list[ImportProgress],
                      out: dict[str, object]) -> threading.Thread:
    def run() -> None:  # a connection belongs to its thread: the store is opened here
        with StyleStore(path) as store:
            out["report"] = import_paths(store, "s", [folder], TinyTokenizer(), progress=seen.append, cancel=cancel)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_an_import_waits_for_another_writer_then_goes_ahead(store, texts):
    holder = StyleStore(store.path)
    holder.conn.execute("BEGIN IMMEDIATE")
    seen: list[ImportProgress] = []
    out: dict[str, object] = {}
    thread = _import_in_thread(store.path, texts, threading.Event(), seen, out)
    try:
        _wait_for(lambda: any(p.waiting for p in seen))
        time.sleep(2.0)  # waiting reports come about once a second, not on every retry
        assert thread.is_alive()
    finally:
        holder.conn.execute("COMMIT")
        holder.close()
    thread.join(30)
    report = out["report"]
    assert not thread.is_alive() and len(report.imported) == 3  # type: ignore[attr-defined]
    waits = [p for p in seen if p.waiting]
    assert 2 <= len(waits) <= 6
    assert [s.name for s in store.list_styles()] == ["s"]


def test_cancel_while_waiting_returns_promptly_and_changes_nothing(store, texts, tmp_path):
    import_paths(store, "s", [texts / "a.txt"], TinyTokenizer())
    before = snapshot(store)
    write_many(tmp_path / "many", 5)
    holder = StyleStore(store.path)
    holder.conn.execute("BEGIN IMMEDIATE")
    cancel = threading.Event()
    seen: list[ImportProgress] = []
    out: dict[str, object] = {}
    thread = _import_in_thread(store.path, tmp_path / "many", cancel, seen, out)
    try:
        _wait_for(lambda: any(p.waiting for p in seen))
        cancelled_at = time.monotonic()
        cancel.set()
        thread.join(10)
        assert not thread.is_alive() and time.monotonic() - cancelled_at < 5  # generous; ~0.2 s
    finally:
        holder.conn.rollback()
        holder.close()
    assert out["report"].cancelled  # type: ignore[attr-defined]
    assert snapshot(store) == before


def test_other_changes_still_report_a_busy_library(store, texts):
    import_paths(store, "s", [texts], TinyTokenizer())
    other = StyleStore(store.path)
    other.conn.execute("PRAGMA busy_timeout = 100")
    try:
        with store.transaction(), pytest.raises(StyleError, match="busy"):
            other.rename("s", "t")
    finally:
        other.close()


_GATED_CLI = """
import os, sys, time
from pathlib import Path
from app import main as cli
from app.cli import library as cli_styles
from styles import importer
from tests.styles.tiny_tokenizer import TinyTokenizer

cli_styles._load_tokenizer = lambda _spec: TinyTokenizer()
gate = os.environ.get("IMPORT_GATE")
if gate:  # hold the library (inside the import's transaction) until the test says go
    consume = importer._consume

    def gated(*args, **kwargs):
        Path(gate + ".in").touch()
        deadline = time.monotonic() + 60
        while not Path(gate + ".go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return consume(*args, **kwargs)

    importer._consume = gated
sys.exit(cli.main(sys.argv[1:]))
"""


def test_two_import_processes_both_succeed(tmp_path, texts, _user_home):
    script = tmp_path / "cli.py"
    script.write_text(_GATED_CLI, encoding="utf-8")
    gate = str(tmp_path / "gate")
    env = {**os.environ, "PYTHONPATH": str(REPO), "STYLESTEER_HOME": str(_user_home)}

    def start(name: str, err: Path, extra: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, str(script), "styles", "import", name, str(texts)],
                                env={**env, **extra}, stdout=subprocess.DEVNULL, stderr=err.open("wb"))

    first = start("first", tmp_path / "first.err", {"IMPORT_GATE": gate})
    second = None
    try:
        _wait_for(lambda: Path(gate + ".in").exists(), 120)  # the first holds the library
        second = start("second", tmp_path / "second.err", {})
        _wait_for(lambda: "waiting for another import" in (tmp_path / "second.err").read_text("utf-8"), 120)
        Path(gate + ".go").touch()
        assert first.wait(120) == 0 and second.wait(120) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert (tmp_path / "second.err").read_text("utf-8").count("waiting for another import") == 1
    listing = subprocess.run([sys.executable, str(script), "styles", "list", "--json"], env=env,
                             capture_output=True, text=True, check=True)
    assert sorted(s["name"] for s in json.loads(listing.stdout)) == ["first", "second"]

