"""The store: migrations, round trips, duplicates, rename/delete/remove-doc, export/import-file."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest
from sqlite_utils import Database

from styles import migrations
from styles.importer import import_paths
from styles.ngrams import count_ngrams
from styles.store import (
    DocumentNotFound,
    InvalidStyleFile,
    StyleError,
    StyleExists,
    StyleNotFound,
    StyleStore,
    TokenizerMismatch,
)
from tests.styles.tiny_tokenizer import TinyTokenizer


def totals(counts):
    return {n: int(c[2].sum()) for n, c in counts.items()}


def same_counts(a, b):
    for n in (1, 2, 3):
        for x, y in zip(a[n], b[n], strict=True):
            np.testing.assert_array_equal(x, y)


def test_migrations_on_a_blank_database(tmp_path):
    db = Database(tmp_path / "blank.db")
    migrations.apply(db)
    assert {"styles", "documents", "chunks", "ngram_counts", "skipped_files"} <= set(db.table_names())
    applied = [m.name for m in migrations.migrations.applied(db)]
    assert applied == migrations.known_names()
    assert all(name.startswith(f"m{i + 1:03d}_") for i, name in enumerate(applied))
    migrations.apply(db)  # a second time changes nothing
    assert [m.name for m in migrations.migrations.applied(db)] == applied


def test_default_path_is_in_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLESTEER_HOME", str(tmp_path / "home"))
    s = StyleStore()
    try:
        assert s.path == tmp_path / "home" / "styles.db" and s.path.exists()
    finally:
        s.close()


def test_import_round_trip(store, tiny, texts):
    report = import_paths(store, "mine", [texts], tiny)
    assert report.created and len(report.imported) == 3 and not report.skipped
    info = store.get("mine")
    assert info.n_documents == 3 and info.n_tokens == 6 + 4 + 8
    assert info.tokenizer_name == "tiny-bytes" and info.vocab_size == 256
    ids = store.document_ids("mine")
    docs = [store.document_token_ids("mine", d) for d in ids]
    assert [store.document_text("mine", d) for d in ids] == ["abcab\n", "xyz\n", "abc\nabc\n"]
    assert docs[0].tolist() == tiny.ids("abcab\n")
    expected = count_ngrams(docs, vocab_size=256)
    same_counts(store.load_counts("mine"), expected)
    assert info.ngrams == {n: expected[n][2].size for n in (1, 2, 3)}
    # a subset of documents is counted from stored token ids
    same_counts(store.load_counts("mine", documents=ids[:2]), count_ngrams(docs[:2], vocab_size=256))
    with pytest.raises(DocumentNotFound):
        store.load_counts("mine", documents=[9999])


def test_duplicates_are_skipped_and_reported(store, tiny, texts, tmp_path):
    import_paths(store, "mine", [texts], tiny)
    before = store.load_counts("mine")
    copy = tmp_path / "copy.txt"
    shutil.copy(texts / "a.txt", copy)
    report = import_paths(store, "mine", [copy, texts / "b.md"], tiny)
    assert not report.imported and len(report.duplicates) == 2
    assert report.duplicates[0].reason == f"same content as {texts / 'a.txt'}"
    same_counts(store.load_counts("mine"), before)
    assert store.get("mine").n_documents == 3


def test_adding_to_a_style_adds_counts(store, tiny, texts):
    import_paths(store, "mine", [texts / "a.txt"], tiny)
    import_paths(store, "mine", [texts / "b.md", texts / "c.txt"], tiny)
    docs = [store.document_token_ids("mine", d) for d in store.document_ids("mine")]
    same_counts(store.load_counts("mine"), count_ngrams(docs, vocab_size=256))


def test_tokenizer_mismatch_is_a_clear_error(store, tiny, texts):
    import_paths(store, "mine", [texts / "a.txt"], tiny)
    with pytest.raises(TokenizerMismatch, match="rebuild"):
        import_paths(store, "mine", [texts / "b.md"], TinyTokenizer(name="other", offset=7))
    assert store.get("mine").n_documents == 1


def test_rebuild_retokenizes_from_stored_text(store, tiny, texts):
    import_paths(store, "mine", [texts], tiny)
    other = TinyTokenizer(name="other", offset=7)
    from styles.importer import rebuild

    report = rebuild(store, "mine", other)
    assert len(report.imported) == 3
    info = store.get("mine")
    assert info.tokenizer_name == "other"
    first = store.document_ids("mine")[0]
    assert store.document_token_ids("mine", first).tolist() == other.ids("abcab\n")
    docs = [store.document_token_ids("mine", d) for d in store.document_ids("mine")]
    same_counts(store.load_counts("mine"), count_ngrams(docs, vocab_size=256))


def test_rename(store, tiny, texts):
    import_paths(store, "mine", [texts / "a.txt"], tiny)
    import_paths(store, "other", [texts / "b.md"], tiny)
    store.rename("mine", "renamed")
    assert [s.name for s in store.list_styles()] == ["other", "renamed"]
    with pytest.raises(StyleExists):
        store.rename("renamed", "OTHER")
    with pytest.raises(StyleNotFound):
        store.rename("mine", "x")
    with pytest.raises(StyleError):
        store.rename("renamed", "  ")


def test_delete_removes_everything(store, tiny, texts):
    import_paths(store, "mine", [texts], tiny)
    import_paths(store, "keep", [texts / "a.txt"], tiny)
    store.delete("mine")
    assert [s.name for s in store.list_styles()] == ["keep"]
    for table in ("documents", "chunks", "ngram_counts"):
        n = store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        assert n == {"documents": 1, "chunks": 1, "ngram_counts": 3}[table]
    with pytest.raises(StyleNotFound):
        store.delete("mine")


def test_remove_document_subtracts_exactly(store, tiny, texts):
    import_paths(store, "mine", [texts], tiny)
    docs = store.documents("mine")
    by_name = {d.path.rsplit("/", 1)[-1]: d for d in docs}
    removed = store.remove_document("mine", by_name["a.txt"].sha256[:10])
    assert [d.sha256 for d in removed] == [by_name["a.txt"].sha256]
    rest = [store.document_token_ids("mine", d) for d in store.document_ids("mine")]
    same_counts(store.load_counts("mine"), count_ngrams(rest, vocab_size=256))
    store.remove_document("mine", by_name["b.md"].path)  # by path
    assert store.get("mine").n_tokens == 8
    assert totals(store.load_counts("mine")) == {1: 8, 2: 7, 3: 6}
    with pytest.raises(DocumentNotFound):
        store.remove_document("mine", "nothing-like-this")


def test_export_and_import_file_round_trip(store, tiny, texts, tmp_path):
    import_paths(store, "mine", [texts], tiny)
    out = store.export("mine", tmp_path / "mine.style")
    with pytest.raises(StyleError, match="exists"):
        store.export("mine", out)
    other = StyleStore(tmp_path / "other.db")
    try:
        name = other.import_file(out)
        assert name == "mine"
        a, b = store.get("mine"), other.get("mine")
        assert (a.n_documents, a.n_tokens, a.tokenizer_fingerprint, a.ngrams) == (
            b.n_documents, b.n_tokens, b.tokenizer_fingerprint, b.ngrams)
        same_counts(store.load_counts("mine"), other.load_counts("mine"))
        with pytest.raises(StyleExists):
            other.import_file(out)
        assert other.import_file(out, name="copy") == "copy"
    finally:
        other.close()


def test_imported_file_counts_are_recomputed_not_trusted(store, tiny, texts, tmp_path):
    import_paths(store, "mine", [texts], tiny)
    out = store.export("mine", tmp_path / "mine.style")
    conn = sqlite3.connect(out)
    conn.execute("UPDATE ngram_counts SET keys = X'3c753120' || keys, n_distinct = 1")  # nonsense counts
    conn.commit()
    conn.close()
    other = StyleStore(tmp_path / "other.db")
    try:
        other.import_file(out)
        same_counts(store.load_counts("mine"), other.load_counts("mine"))
    finally:
        other.close()


def tamper(path, sql, params=()):
    conn = sqlite3.connect(path)
    conn.execute(sql, params)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "sql, params, message",
    [
        ("UPDATE chunks SET tokens = X'3c7532200000'", (), "damaged"),
        ("UPDATE chunks SET n_tokens = n_tokens + 1", (), "damaged"),
        ("UPDATE chunks SET text = ?", (b"\x78\x9c garbage",), "damaged"),
        ("UPDATE documents SET sha256 = 'nope' || id", (), "damaged document"),
        ("UPDATE styles SET vocab_size = 3000000", (), "vocabulary"),
        ("UPDATE styles SET tokenizer_fingerprint = 'zz'", (), "fingerprint"),
        (("INSERT INTO styles (name, tokenizer_name, tokenizer_fingerprint, vocab_size, created_at, updated_at) "
          "VALUES ('b', 't', 'abcdef0123', 5, '', '')"), (), "exactly one style"),
        ("CREATE TRIGGER t AFTER INSERT ON styles BEGIN SELECT 1; END", (), "triggers"),
        ("DROP TABLE chunks", (), "no 'chunks' table"),
        ("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
         "VALUES ('stylesteer.styles', 'm999_future', '')", (), "newer"),
    ],
)
def test_tampered_style_files_are_refused(store, tiny, texts, tmp_path, sql, params, message):
    import_paths(store, "mine", [texts], tiny)
    out = store.export("mine", tmp_path / "mine.style")
    tamper(out, sql, params)
    other = StyleStore(tmp_path / "other.db")
    try:
        with pytest.raises(InvalidStyleFile, match=message):
            other.import_file(out)
        assert other.list_styles() == []
    finally:
        other.close()


def test_token_ids_outside_the_vocabulary_are_refused(store, tiny, texts, tmp_path):
    from styles.store import pack_array

    import_paths(store, "mine", [texts / "a.txt"], tiny)
    out = store.export("mine", tmp_path / "mine.style")
    tamper(out, "UPDATE chunks SET tokens = ?", (pack_array(np.array([1, 2, 3, 4, 5, 999])),))
    other = StyleStore(tmp_path / "other.db")
    try:
        with pytest.raises(InvalidStyleFile, match="outside its vocabulary"):
            other.import_file(out)
    finally:
        other.close()


@pytest.mark.parametrize("content", [b"", b"hello, not a database", b"SQLite format 3\x00" + b"\x00" * 200])
def test_garbage_files_are_refused(store, tmp_path, content):
    path = tmp_path / "garbage.style"
    path.write_bytes(content)
    with pytest.raises(InvalidStyleFile):
        store.import_file(path)
    with pytest.raises(InvalidStyleFile):
        store.import_file(tmp_path / "missing.style")


def test_truncated_style_file_is_refused(store, tiny, texts, tmp_path):
    import_paths(store, "mine", [texts], tiny)
    out = store.export("mine", tmp_path / "mine.style")
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidStyleFile, match=r"mine\.style"):  # the user's file, not the private copy
        store.import_file(out)


def test_list_and_show_fields(store, tiny, texts):
    import_paths(store, "mine", [texts, texts / "nope.txt"], tiny)
    info = store.get("mine").to_dict()
    for key in ("name", "tokenizer", "tokenizer_fingerprint", "n_documents", "n_tokens", "bytes_on_disk", "ngrams"):
        assert key in info
    assert set(info["ngrams"]) == {"1", "2", "3"}
    assert info["bytes_on_disk"] > 0
    skipped = store.skipped("mine")
    assert [s.path.rsplit("/", 1)[-1] for s in skipped] == ["nope.txt"]


def test_a_connection_belongs_to_its_thread(store):
    import threading

    errors = []

    def other_thread():
        try:
            store.list_styles()
        except sqlite3.ProgrammingError as exc:
            errors.append(exc)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert errors, "a store must not be usable from another thread"


def test_remove_document_by_relative_path(store, tiny, texts, monkeypatch):
    import_paths(store, "s", [texts], tiny)
    monkeypatch.chdir(texts)
    removed = store.remove_document("s", "b.md")
    assert [d.path for d in removed] == [str(texts / "b.md")]
