"""Imports: one transaction (cancel, error, killed process), progress, bad files in a batch."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from styles import importer
from styles.importer import ImportProgress, import_paths
from styles.store import StyleStore

REPO = Path(__file__).resolve().parents[2]
# Natural text: detectors judge single-byte code pages by letter statistics, and a
# short line repeated many times can look Baltic or Central European instead.
PROUST = (
    "Longtemps, je me suis couché de bonne heure. Parfois, à peine ma bougie éteinte, mes yeux se "
    "fermaient si vite que je n'avais pas le temps de me dire: « Je m'endors. » Et, une demi-heure "
    "après, la pensée qu'il était temps de chercher le sommeil m'éveillait; je voulais poser le "
    "volume que je croyais avoir encore dans les mains et souffler ma lumière; je n'avais pas cessé "
    "en dormant de faire des réflexions sur ce que je venais de lire, mais ces réflexions avaient "
    "pris un tour un peu particulier; il me semblait que j'étais moi-même ce dont parlait "
    "l'ouvrage: une église, un quatuor, la rivalité de François Ier et de Charles-Quint.\n"
)


def snapshot(store: StyleStore) -> dict:
    """Everything a user could see, to compare before/after."""
    tables = {}
    for table in ("styles", "documents", "chunks", "ngram_counts", "skipped_files"):
        tables[table] = store.conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    return tables


def write_many(folder: Path, n: int, size: int = 3000) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dreamed", "of", "fish", "\n"]
    for i in range(n):
        text = " ".join(rng.choice(words, size=size // 4)) + f"\nfile {i}\n"
        (folder / f"f{i:03d}.txt").write_text(text, encoding="utf-8")


def test_progress_reports_files_bytes_tokens(store, tiny, tmp_path):
    write_many(tmp_path / "many", 5)
    seen: list[ImportProgress] = []
    report = import_paths(store, "s", [tmp_path / "many"], tiny, progress=seen.append)
    assert seen[0].files_done == 0 and seen[0].files_total == 5
    last = seen[-1]
    assert last.files_done == 5 and last.bytes_done == last.bytes_total
    assert last.tokens == report.n_tokens == store.get("s").n_tokens
    assert [p.bytes_done for p in seen] == sorted(p.bytes_done for p in seen)


def test_cancel_leaves_the_store_unchanged(store, tiny, tmp_path, texts):
    import_paths(store, "s", [texts], tiny)
    before = snapshot(store)
    write_many(tmp_path / "many", 20)
    cancel = threading.Event()

    def progress(p: ImportProgress) -> None:
        if p.files_done >= 3:
            cancel.set()

    report = import_paths(store, "s", [tmp_path / "many"], tiny, progress=progress, cancel=cancel)
    assert report.cancelled and not report.imported
    assert snapshot(store) == before


def test_cancel_of_a_new_style_creates_nothing(store, tiny, texts):
    cancel = threading.Event()
    cancel.set()
    report = import_paths(store, "new", [texts], tiny, cancel=cancel)
    assert report.cancelled and store.list_styles() == []


def test_an_error_mid_import_rolls_everything_back(store, tiny, tmp_path, texts, monkeypatch):
    import_paths(store, "s", [texts], tiny)
    before = snapshot(store)
    write_many(tmp_path / "many", 6)
    calls = {"n": 0}
    real_feed = importer.NgramCounter.feed

    def failing_feed(self, ids):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("disk on fire")
        return real_feed(self, ids)

    monkeypatch.setattr(importer.NgramCounter, "feed", failing_feed)
    with pytest.raises(RuntimeError, match="disk on fire"):
        import_paths(store, "s", [tmp_path / "many"], tiny)
    assert snapshot(store) == before


def test_bad_files_never_stop_a_batch(store, tiny, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text("good text\n")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (folder / "noise.md").write_bytes(bytes((i * 7919 + 13) % 256 for i in range(4096)).replace(b"\x00", b"\x01"))
    (folder / "image.png").write_bytes(b"\x89PNG")
    (folder / "loop").symlink_to(folder)
    french = PROUST
    (folder / "latin1.txt").write_bytes(french.encode("latin-1"))
    report = import_paths(store, "s", [folder, tmp_path / "missing.txt"], tiny)
    imported = sorted(Path(d.path).name for d in report.imported)
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    assert imported == ["good.txt", "latin1.txt"]
    assert set(skipped) == {"empty.txt", "binary.txt", "noise.md", "image.png", "loop", "missing.txt"}
    assert "empty" in skipped["empty.txt"] and "binary" in skipped["binary.txt"]
    assert "undecodable" in skipped["noise.md"] and "loop" in skipped["loop"]
    texts = [store.document_text("s", d) for d in store.document_ids("s")]
    assert french in texts


def test_nothing_importable_creates_no_style(store, tiny, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    report = import_paths(store, "s", [tmp_path / "empty.txt"], tiny)
    assert not report.imported and len(report.skipped) == 1
    assert store.list_styles() == []


def test_big_file_imports_in_chunks(store, tiny, tmp_path, monkeypatch):
    from styles import readers

    line = "A line of a rather long book, number so-and-so.\n"
    path = tmp_path / "big.txt"
    path.write_text(line * 60_000)
    monkeypatch.setattr(readers, "STREAM_THRESHOLD", 1 << 18)
    monkeypatch.setattr(readers, "READ_CHUNK", 1 << 18)
    monkeypatch.setattr(importer, "BATCH_CHARS", 1 << 18)
    report = import_paths(store, "s", [path], tiny)
    (doc_id,) = store.document_ids("s")
    assert report.imported[0].n_tokens == path.stat().st_size
    n_chunks = store.conn.execute("SELECT COUNT(*) FROM chunks WHERE document_id = ?", (doc_id,)).fetchone()[0]
    assert n_chunks > 5
    assert store.document_text("s", doc_id) == path.read_text()
    counts = store.load_counts("s")
    assert int(counts[2][2].sum()) == path.stat().st_size - 1  # bigrams span chunk borders in a document


_CHILD = r"""
import sys, time
sys.path.insert(0, {repo!r})
from styles.store import StyleStore
from styles.importer import import_paths
from tests.styles.tiny_tokenizer import TinyTokenizer
store = StyleStore({db!r})
def progress(p):
    if p.bytes_done > 0:
        print("started", flush=True)
        time.sleep(0.05)
import_paths(store, "s", [{folder!r}], TinyTokenizer(), progress=progress)
print("finished", flush=True)
"""


def test_killed_import_leaves_the_store_intact(tmp_path, tiny, texts):
    db = tmp_path / "kill.db"
    store = StyleStore(db)
    import_paths(store, "s", [texts], tiny)
    before = snapshot(store)
    counts_before = store.load_counts("s")
    store.close()
    write_many(tmp_path / "many", 200, size=20_000)
    code = _CHILD.format(repo=str(REPO), db=str(db), folder=str(tmp_path / "many"))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "started", line
        time.sleep(0.3)  # well inside the import: documents and chunks are being written
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    store = StyleStore(db)
    try:
        assert snapshot(store) == before
        after = store.load_counts("s")
        for n in (1, 2, 3):
            for a, b in zip(counts_before[n], after[n], strict=True):
                np.testing.assert_array_equal(a, b)
    finally:
        store.close()


def test_a_file_the_tokenizer_rejects_is_skipped_not_fatal(store, tiny, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ok.txt").write_text("fine\n")
    (folder / "poison.txt").write_text("poison\n")
    real = importer.ChunkTokenizer.encode_pieces

    def picky(self, pieces, *, doc_start):
        if any("poison" in p for p in pieces):
            raise ValueError("cannot encode this")
        return real(self, pieces, doc_start=doc_start)

    monkeypatch.setattr(importer.ChunkTokenizer, "encode_pieces", picky)
    report = import_paths(store, "s", [folder], tiny)
    assert [Path(d.path).name for d in report.imported] == ["ok.txt"]
    assert "could not be tokenized" in report.skipped[0].reason
    assert store.get("s").n_documents == 1


def test_cancel_while_a_big_file_is_being_read(store, tiny, tmp_path, monkeypatch):
    from styles import readers

    path = tmp_path / "big.txt"
    path.write_text("line of text\n" * 200_000)
    monkeypatch.setattr(readers, "STREAM_THRESHOLD", 1 << 16)
    monkeypatch.setattr(readers, "READ_CHUNK", 1 << 12)
    cancel = threading.Event()
    real_update = readers.hashlib.sha256

    class SlowHash:  # reading the file takes "forever"; cancel must not wait for it
        def __init__(self, *args):
            self.h = real_update(*args)

        def update(self, data):
            time.sleep(0.001)
            self.h.update(data)

        def hexdigest(self):
            return self.h.hexdigest()

    monkeypatch.setattr(readers.hashlib, "sha256", SlowHash)
    threading.Timer(0.3, cancel.set).start()
    t = time.monotonic()
    report = import_paths(store, "s", [path], tiny, cancel=cancel)
    assert report.cancelled and time.monotonic() - t < 3
    assert store.list_styles() == []
