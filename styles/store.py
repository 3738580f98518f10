"""StyleStore: the SQLite library of styles (documents, token ids, packed n-gram counts)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zstandard

from styles import migrations
from styles.errors import DocumentNotFound as DocumentNotFound
from styles.errors import InvalidStyleFile as InvalidStyleFile
from styles.errors import LibraryReadOnly as LibraryReadOnly
from styles.errors import StyleError as StyleError
from styles.errors import StyleExists as StyleExists
from styles.errors import StyleNotFound as StyleNotFound
from styles.errors import TokenizerMismatch as TokenizerMismatch
from styles.ngrams import MAX_VOCAB, ORDERS, Counts, NgramCounter, Pairs, merge_pairs, unpack_ngram_keys
from styles.opening import BUSY_TIMEOUT_MS, is_busy, open_library
from styles.paths import store_path

if TYPE_CHECKING:
    from styles.blend_prior import BlendPrior
    from styles.prior import StylePrior

MAX_NAME = 100
# Bounds applied when reading blobs, so that a hostile file cannot inflate without limit.
MAX_CHUNK_CHARS = 64 * 1024 * 1024
# An array read without a known length (none is, today) still cannot inflate past this.
MAX_ARRAY_BYTES = 4 << 30
# A writer that waits for another one's lock looks up this often (ms) to report and to honour a cancel.
WAIT_STEP_MS = 200
_FINGERPRINT = re.compile(r"^[0-9a-f]{8,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class StyleInfo:
    """What the library knows about one style."""

    name: str
    tokenizer_name: str
    tokenizer_fingerprint: str
    vocab_size: int
    n_documents: int
    n_tokens: int
    n_bytes: int
    bytes_on_disk: int
    ngrams: dict[int, int] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tokenizer"] = self.tokenizer_name
        data["ngrams"] = {str(n): self.ngrams.get(n, 0) for n in ORDERS}
        return data


@dataclass(frozen=True)
class StyleRecord:
    """A style's row: what importing into it and building its prior need."""

    id: int
    name: str
    tokenizer_name: str
    tokenizer_fingerprint: str
    vocab_size: int


@dataclass(frozen=True)
class DocumentInfo:
    """One imported document."""

    id: int
    path: str
    sha256: str
    n_bytes: int
    n_chars: int
    n_tokens: int
    encoding: str
    stored_bytes: int
    imported_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SkippedInfo:
    """A file an import could not use, and why."""

    path: str
    reason: str
    seen_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_name(name: str) -> str:
    """A valid style name (stripped) or StyleError."""
    cleaned = (name or "").strip()
    if not cleaned:
        raise StyleError("a style name cannot be empty")
    if len(cleaned) > MAX_NAME:
        raise StyleError(f"a style name is at most {MAX_NAME} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in cleaned):
        raise StyleError("a style name cannot contain control characters")
    return cleaned


# --------------------------------------------------------------------------- array codec


_TAGS = ("<u1", "<u2", "<u4", "<u8")
# The fourth byte of an array's tag names its codec: "z" zstd over byte planes (what is
# written now); " " and "s" are the zlib forms (plain, byte planes) that older stores hold.
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_LEVEL = {"array": 1, "text": 3}
_codecs = threading.local()


def _zstd_compress(data: bytes, kind: str) -> bytes:
    """zstd at the level chosen for `kind`; one compressor per thread (they are not shareable).
    zstd level 1 is ~6x faster than zlib level 1 here, at about the same size (text: smaller)."""
    compressors = getattr(_codecs, "compressors", None)
    if compressors is None:
        compressors = _codecs.compressors = {}
    cctx = compressors.get(kind)
    if cctx is None:
        cctx = compressors[kind] = zstandard.ZstdCompressor(level=_ZSTD_LEVEL[kind], write_content_size=True)
    return cctx.compress(data)


def _zstd_decompress(blob: bytes, *, limit: int, exact: bool, what: str) -> bytes:
    """Decompress one zstd frame whose declared size is checked before anything is allocated:
    at most `limit` bytes (exactly `limit` when `exact`), so a hostile blob cannot inflate."""
    try:
        size = zstandard.frame_content_size(blob)
    except zstandard.ZstdError as exc:
        raise InvalidStyleFile(f"damaged {what} (bad compression)") from exc
    if size < 0 or (exact and size != limit):
        raise InvalidStyleFile(f"damaged {what} (wrong length)")
    if size > limit:
        raise InvalidStyleFile(f"damaged {what} (too long)")
    try:
        raw = zstandard.ZstdDecompressor().decompress(blob, max_output_size=max(size, 1))
    except zstandard.ZstdError as exc:
        raise InvalidStyleFile(f"damaged {what} (bad compression)") from exc
    if len(raw) != size:
        raise InvalidStyleFile(f"damaged {what} (wrong length)")
    return raw


def _zlib_decompress(blob: bytes, *, limit: int, exact: bool, what: str) -> bytes:
    """The zlib form older stores hold, inflated to at most `limit` bytes (exactly `limit`
    when `exact`): decompression stops there, so a hostile blob cannot inflate."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(blob, limit + 1)
    except zlib.error as exc:
        raise InvalidStyleFile(f"damaged {what} (bad compression)") from exc
    if exact and (len(raw) != limit or inflater.unconsumed_tail):
        raise InvalidStyleFile(f"damaged {what} (wrong length)")
    if len(raw) > limit or inflater.unconsumed_tail:
        raise InvalidStyleFile(f"damaged {what} (too long)")
    return raw


def pack_array(a: np.ndarray) -> bytes:
    """A non-negative integer array as bytes: a 4-byte tag naming the smallest unsigned type
    that fits and the codec, then zstd of its bytes, byte planes first (the high bytes of
    small values are runs of zeros: smaller and faster to compress)."""
    a = np.asarray(a)
    if a.size and int(a.min()) < 0:
        raise ValueError("pack_array stores non-negative integers only")
    top = int(a.max()) if a.size else 0
    for tag in _TAGS:
        if top <= np.iinfo(np.dtype(tag)).max:
            break
    typed = np.ascontiguousarray(a, dtype=tag)
    planes = typed.view(np.uint8).reshape(-1, typed.itemsize).T
    return (tag + "z").encode("ascii") + _zstd_compress(np.ascontiguousarray(planes).tobytes(), "array")


def unpack_array(blob: bytes, *, expect: int | None = None) -> np.ndarray:
    """Inverse of pack_array (and of the older zlib forms), as int64. With `expect`, the
    length is checked before decompressing, so a damaged or hostile blob cannot inflate."""
    if not isinstance(blob, (bytes, bytearray, memoryview)) or len(blob) < 4:
        raise InvalidStyleFile("damaged array data")
    head = bytes(blob[:4]).decode("ascii", "replace")
    tag, codec = head[:3], head[3]
    if tag not in _TAGS or codec not in " sz":
        raise InvalidStyleFile("damaged array data (unknown type)")
    dtype = np.dtype(tag)
    limit = MAX_ARRAY_BYTES if expect is None else expect * dtype.itemsize
    decompress = _zstd_decompress if codec == "z" else _zlib_decompress
    raw = decompress(bytes(blob[4:]), limit=limit, exact=expect is not None, what="array data")
    if len(raw) % dtype.itemsize:
        raise InvalidStyleFile("damaged array data (wrong length)")
    if codec != " " and dtype.itemsize > 1:
        planes = np.frombuffer(raw, dtype=np.uint8).reshape(dtype.itemsize, -1)
        out = np.ascontiguousarray(planes.T).view(dtype).ravel()
    else:
        out = np.frombuffer(raw, dtype=dtype)
    if dtype == np.dtype("<u8") and out.size and int(out.max()) > np.iinfo(np.int64).max:
        raise InvalidStyleFile("damaged array data (value out of range)")
    return out.astype(np.int64)


def pack_keys(keys: np.ndarray) -> bytes:
    """Sorted unique int64 keys, delta-coded (small gaps compress far better than keys)."""
    deltas = np.diff(keys, prepend=np.int64(0)) if keys.size else keys
    return pack_array(deltas)


def unpack_keys(blob: bytes, *, expect: int | None = None) -> np.ndarray:
    deltas = unpack_array(blob, expect=expect)
    keys = np.cumsum(deltas, dtype=np.int64)
    if keys.size > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        raise InvalidStyleFile("damaged count data (keys not sorted)")
    return keys


def pack_text(text: str) -> bytes:
    return _zstd_compress(text.encode("utf-8"), "text")


def unpack_text(blob: bytes, *, max_chars: int = MAX_CHUNK_CHARS) -> str:
    """Inverse of pack_text (zstd; older stores hold zlib), at most `max_chars` characters."""
    limit = max_chars * 4
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise InvalidStyleFile("damaged text data (bad compression)")
    data = bytes(blob)
    decompress = _zstd_decompress if data[:4] == _ZSTD_MAGIC else _zlib_decompress
    raw = decompress(data, limit=limit, exact=False, what="text data")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidStyleFile("damaged text data (not UTF-8)") from exc


# --------------------------------------------------------------------------- the store


class DocumentWriter:
    """One document being imported (see StyleStore.document): its chunks and running totals."""

    def __init__(self, conn: sqlite3.Connection, doc_id: int) -> None:
        self._conn = conn
        self.id = doc_id
        self.n_chunks = self.n_tokens = self.n_chars = self.stored_bytes = 0
        self.discarded = False

    def add_chunk(self, text: str, ids: np.ndarray) -> None:
        """The next piece of the document: its text and token ids, compressed."""
        text_blob, token_blob = pack_text(text), pack_array(ids)
        self._conn.execute(
            "INSERT INTO chunks (document_id, seq, n_chars, n_tokens, text, tokens) VALUES (?, ?, ?, ?, ?, ?)",
            (self.id, self.n_chunks, len(text), int(ids.size), text_blob, token_blob),
        )
        self.n_chunks += 1
        self.n_tokens += int(ids.size)
        self.n_chars += len(text)
        self.stored_bytes += len(text_blob) + len(token_blob)

    def discard(self) -> None:
        """Leave this document out after all (e.g. it turned out to hold no tokens)."""
        self.discarded = True



class StyleStore:
    """The style library in one SQLite file.

    A connection belongs to the thread that opened it: open one StyleStore per
    thread (the GUI's worker opens its own). Every change is one transaction.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        """Open the library (created if new). A damaged one is set aside and a fresh one started
        (`set_aside`, `notice`); an unwritable one opens read-only (`read_only`)."""
        self.path = Path(path) if path is not None else store_path()
        opened = open_library(self.path)
        self.db = opened.db
        self._uri = opened.uri
        self._read_only_reason = opened.read_only
        self.read_only: bool = opened.read_only is not None
        self.set_aside: Path | None = opened.set_aside
        # One line for the user, when something happened on opening that they should know about.
        self.notice: str | None = None
        if opened.set_aside is not None:
            self.notice = (
                f"The style library {self.path} was damaged ({opened.damage}): it was kept as {opened.set_aside} "
                f"and a new, empty library was started. To try to recover its styles: "
                f"stylesteer styles import-file {opened.set_aside}"
            )
        elif self.read_only:
            self.notice = self._read_only_message()

    def _read_only_message(self) -> str:
        return (f"the style library at {self.path} is read-only: {self._read_only_reason}; "
                "styles can be listed and used, but not changed")

    # -- lifecycle

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> StyleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self, *, waiting: Callable[[], None] | None = None) -> Iterator[StyleStore]:
        """One atomic change; nested calls become savepoints (sqlite-utils' atomic()).

        The outermost one takes the write lock at once (BEGIN IMMEDIATE). While another
        writer holds it: without `waiting`, this fails after a few seconds; with it, this
        waits as long as it takes, calling `waiting()` several times a second (it may raise
        to give up, e.g. on a cancel). A read-only library refuses with LibraryReadOnly.
        """
        if self.read_only:
            raise LibraryReadOnly(self._read_only_message())
        conn = self.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield self
            return
        self._begin(waiting)
        try:
            yield self
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        else:
            conn.execute("COMMIT")

    def _begin(self, waiting: Callable[[], None] | None) -> None:
        """BEGIN IMMEDIATE, retried while another writer holds the lock when `waiting` is given."""
        conn = self.conn
        if waiting is not None:
            conn.execute(f"PRAGMA busy_timeout = {WAIT_STEP_MS}")
        try:
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if waiting is None or not is_busy(exc):
                        raise StyleError(f"the style library is busy ({exc}); is another import running?") from exc
                waiting()
        finally:
            if waiting is not None:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    # -- reading

    def find_style(self, name: str) -> StyleRecord | None:
        """The style's record, or None when there is no style of that name."""
        row = self.conn.execute(
            "SELECT id, name, tokenizer_name, tokenizer_fingerprint, vocab_size FROM styles WHERE name = ?",
            (str(name).strip(),),
        ).fetchone()
        return None if row is None else StyleRecord(int(row[0]), row[1], row[2], row[3], int(row[4]))

    def _style_row(self, name: str) -> StyleRecord:
        record = self.find_style(name)
        if record is None:
            from styles.blend_store import blend_named

            if blend_named(self, name):
                raise StyleNotFound(f"'{name}' is a blend of styles, which has no documents of its own: "
                                    f"this needs one of its styles (see `stylesteer styles show {name}`)")
            raise StyleNotFound(f"no style named '{name}' (see `stylesteer styles list`)")
        return record

    def style_id(self, name: str) -> int:
        return self._style_row(name).id

    def exists(self, name: str) -> bool:
        try:
            self._style_row(name)
        except StyleNotFound:
            return False
        return True

    def list_styles(self) -> list[StyleInfo]:
        """Every style, by name."""
        rows = self.conn.execute(
            """
            SELECT s.id, s.name, s.tokenizer_name, s.tokenizer_fingerprint, s.vocab_size,
                   COALESCE(d.n_docs, 0), COALESCE(d.n_tokens, 0), COALESCE(d.n_bytes, 0),
                   COALESCE(d.stored, 0) + COALESCE(c.stored, 0), s.created_at, s.updated_at
            FROM styles s
            LEFT JOIN (SELECT style_id, COUNT(*) AS n_docs, SUM(n_tokens) AS n_tokens,
                              SUM(n_bytes) AS n_bytes, SUM(stored_bytes) AS stored
                       FROM documents GROUP BY style_id) d ON d.style_id = s.id
            LEFT JOIN (SELECT style_id, SUM(length(keys) + length(counts)) AS stored
                       FROM ngram_counts GROUP BY style_id) c ON c.style_id = s.id
            ORDER BY s.name COLLATE NOCASE
            """
        ).fetchall()
        orders: dict[int, dict[int, int]] = {}
        for sid, n, distinct in self.conn.execute("SELECT style_id, n, n_distinct FROM ngram_counts"):
            orders.setdefault(sid, {})[n] = distinct
        return [
            StyleInfo(
                name=r[1],
                tokenizer_name=r[2],
                tokenizer_fingerprint=r[3],
                vocab_size=r[4],
                n_documents=r[5],
                n_tokens=r[6],
                n_bytes=r[7],
                bytes_on_disk=r[8],
                ngrams={n: orders.get(r[0], {}).get(n, 0) for n in ORDERS},
                created_at=r[9],
                updated_at=r[10],
            )
            for r in rows
        ]

    def get(self, name: str) -> StyleInfo:
        """One style's summary; StyleNotFound if there is none."""
        canonical = self._style_row(name).name
        for info in self.list_styles():
            if info.name == canonical:
                return info
        raise StyleNotFound(f"no style named '{name}'")  # pragma: no cover - raced with a delete

    def documents(self, name: str) -> list[DocumentInfo]:
        sid = self.style_id(name)
        rows = self.conn.execute(
            "SELECT id, path, sha256, n_bytes, n_chars, n_tokens, encoding, stored_bytes, imported_at "
            "FROM documents WHERE style_id = ? ORDER BY id",
            (sid,),
        )
        return [DocumentInfo(*r) for r in rows]

    def skipped(self, name: str) -> list[SkippedInfo]:
        sid = self.style_id(name)
        rows = self.conn.execute(
            "SELECT path, reason, seen_at FROM skipped_files WHERE style_id = ? ORDER BY path", (sid,)
        )
        return [SkippedInfo(*r) for r in rows]

    def document_ids(self, name: str) -> list[int]:
        sid = self.style_id(name)
        return [r[0] for r in self.conn.execute("SELECT id FROM documents WHERE style_id = ? ORDER BY id", (sid,))]

    def _check_doc(self, name: str, doc_id: int) -> None:
        sid = self.style_id(name)
        row = self.conn.execute("SELECT 1 FROM documents WHERE id = ? AND style_id = ?", (int(doc_id), sid)).fetchone()
        if row is None:
            raise DocumentNotFound(f"style '{name}' has no document with id {doc_id}")

    def iter_document_token_chunks(self, doc_id: int) -> Iterator[np.ndarray]:
        """The token ids of one document, chunk by chunk (bounded memory)."""
        rows = self.conn.execute(
            "SELECT n_tokens, tokens FROM chunks WHERE document_id = ? ORDER BY seq", (int(doc_id),)
        )
        for n_tokens, blob in rows:
            yield unpack_array(blob, expect=n_tokens)

    def iter_document_text_chunks(self, doc_id: int) -> Iterator[tuple[int, str]]:
        """(seq, text) of one document's chunks, in order."""
        rows = self.conn.execute("SELECT seq, text FROM chunks WHERE document_id = ? ORDER BY seq", (int(doc_id),))
        for seq, blob in rows:
            yield seq, unpack_text(blob)

    def document_token_ids(self, name: str, doc_id: int) -> np.ndarray:
        """All token ids of one document (int64), without re-tokenizing."""
        self._check_doc(name, doc_id)
        parts = list(self.iter_document_token_chunks(doc_id))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def document_text(self, name: str, doc_id: int) -> str:
        """The text of one document as it was imported (after extraction and decoding)."""
        self._check_doc(name, doc_id)
        return "".join(text for _, text in self.iter_document_text_chunks(doc_id))

    def read_pairs(self, style_id: int) -> Pairs:
        """The stored counts of a style as packed (keys, counts) per order."""
        out: Pairs = {}
        rows = self.conn.execute(
            "SELECT n, n_distinct, keys, counts FROM ngram_counts WHERE style_id = ?", (style_id,)
        )
        for n, distinct, kblob, cblob in rows:
            out[n] = (unpack_keys(kblob, expect=distinct), unpack_array(cblob, expect=distinct))
        for n in ORDERS:
            out.setdefault(n, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        return out

    def write_pairs(self, style_id: int, pairs: Pairs) -> None:
        """Replace a style's stored counts (call inside a transaction)."""
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))

        def pack(n: int) -> tuple[int, int, int, int, bytes, bytes]:
            keys, counts = pairs.get(n, empty)
            return style_id, n, int(keys.size), int(counts.sum()), pack_keys(keys), pack_array(counts)

        # Compressing releases the GIL: the orders are packed side by side (this is the end of an import).
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stylesteer-pack") as pool:
            rows = list(pool.map(pack, sorted(ORDERS, reverse=True)))
        self.conn.executemany(
            "INSERT INTO ngram_counts (style_id, n, n_distinct, n_total, keys, counts) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (style_id, n) DO UPDATE SET n_distinct = excluded.n_distinct, "
            "n_total = excluded.n_total, keys = excluded.keys, counts = excluded.counts",
            rows,
        )

    def load_counts(self, name: str, documents: Iterable[int] | None = None) -> Counts:
        """{n: (ctx [M, n-1], tok [M], cnt [M])} int64, sorted by (ctx, tok).

        With `documents`, counts only those documents (recounted from their stored
        token ids; used for held-out splits). Otherwise reads the stored totals:
        three blobs, no per-row SQL.
        """
        row = self._style_row(name)
        sid, vocab = row.id, row.vocab_size
        if documents is None:
            pairs = self.read_pairs(sid)
        else:
            wanted = sorted({int(d) for d in documents})
            known = set(self.document_ids(name))
            missing = [d for d in wanted if d not in known]
            if missing:
                raise DocumentNotFound(f"style '{name}' has no document with id {missing[0]}")
            counter = NgramCounter(vocab)
            for doc_id in wanted:
                for ids in self.iter_document_token_chunks(doc_id):
                    counter.feed(ids)
                counter.end_document()
            pairs = counter.pairs()
        out: Counts = {}
        for n in ORDERS:
            keys, counts = pairs[n]
            ctx, tok = unpack_ngram_keys(keys, n, vocab)
            out[n] = (ctx, tok, counts)
        return out

    def load_prior(
        self,
        name: str,
        *,
        device: str = "cpu",
        settings: Any = None,
        documents: Iterable[int] | None = None,
    ) -> StylePrior | BlendPrior:
        """The style's prior, built once in memory (no SQL afterwards). `name` may also be a saved
        blend or a blend written `NAME:W,NAME:W` (styles.blend_store), whose prior is a BlendPrior."""
        from styles.prior import StylePrior

        if documents is None and self.find_style(name) is None:
            from styles import blend_store

            found = blend_store.resolve(self, name)
            if found is not None:
                return blend_store.load_blend_prior(self, *found, device=device, settings=settings)
        info = self._style_row(name)
        counts = self.load_counts(name, documents)
        return StylePrior.from_counts(
            counts, vocab_size=info.vocab_size, tokenizer_fingerprint=info.tokenizer_fingerprint, settings=settings,
            device=device, name=info.name,
        )

    # -- changes

    def create_style(self, name: str, tokenizer_name: str, fingerprint: str, vocab_size: int) -> int:
        """A new empty style (inside the caller's transaction); StyleExists if taken."""
        from styles.blend_store import blend_named

        name = check_name(name)
        if blend_named(self, name):
            raise StyleExists(f"a blend named '{name}' already exists; choose another name for the style")
        if not 0 < vocab_size <= MAX_VOCAB:
            raise StyleError(f"vocabulary of {vocab_size} tokens is not supported (at most {MAX_VOCAB})")
        stamp = now()
        try:
            cur = self.conn.execute(
                "INSERT INTO styles (name, tokenizer_name, tokenizer_fingerprint, vocab_size, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, tokenizer_name, fingerprint, int(vocab_size), stamp, stamp),
            )
        except sqlite3.IntegrityError as exc:
            raise StyleExists(f"a style named '{name}' already exists") from exc
        return int(cur.lastrowid or 0)

    def touch(self, style_id: int) -> None:
        self.conn.execute("UPDATE styles SET updated_at = ? WHERE id = ?", (now(), style_id))

    def rename(self, old: str, new: str) -> None:
        """Rename a style (its blends follow it) or a saved blend."""
        from styles import blend_store

        new = check_name(new)
        with self.transaction():
            if self.find_style(old) is None and blend_store.rename_blend(self, old, new):
                return
            record = self._style_row(old)
            other = self.conn.execute("SELECT id FROM styles WHERE name = ?", (new,)).fetchone()
            if (other is not None and other[0] != record.id) or blend_store.blend_named(self, new):
                raise StyleExists(f"a style or blend named '{new}' already exists")
            self.conn.execute("UPDATE styles SET name = ?, updated_at = ? WHERE id = ?", (new, now(), record.id))
            blend_store.rename_style_in_blends(self, record.name, new)

    def delete(self, name: str) -> None:
        """Delete a style (blends that use it then say it is missing) or a saved blend."""
        from styles import blend_store

        with self.transaction():
            if self.find_style(name) is None and blend_store.delete_blend(self, name):
                return
            sid = self.style_id(name)
            self.conn.execute("DELETE FROM styles WHERE id = ?", (sid,))
        self._reclaim()

    def _reclaim(self) -> None:
        with contextlib.suppress(sqlite3.DatabaseError):
            self.conn.execute("PRAGMA incremental_vacuum")

    def find_documents(self, name: str, path_or_sha: str) -> list[DocumentInfo]:
        """Documents matching a SHA-256 (or a prefix of at least 8 hex digits) or a path."""
        key = path_or_sha.strip()
        docs = self.documents(name)
        if re.fullmatch(r"[0-9a-fA-F]{8,64}", key):
            hits = [d for d in docs if d.sha256.startswith(key.lower())]
            if hits:
                return hits
        hits = [d for d in docs if d.path == key]
        if not hits:
            with contextlib.suppress(OSError, RuntimeError):
                given = Path(key).expanduser()
                forms = {str(given.absolute()), str(given.resolve())}
                hits = [d for d in docs if d.path in forms or str(Path(d.path).resolve()) in forms]
        return hits

    def remove_document(self, name: str, path_or_sha: str) -> list[DocumentInfo]:
        """Remove documents by path or SHA; their n-grams are subtracted exactly."""
        hits = self.find_documents(name, path_or_sha)
        if not hits:
            raise DocumentNotFound(f"style '{name}' has no document with path or SHA '{path_or_sha}'")
        if len({d.sha256 for d in hits}) > 1 and re.fullmatch(r"[0-9a-fA-F]{8,63}", path_or_sha.strip()):
            shas = ", ".join(d.sha256[:12] for d in hits)
            raise StyleError(f"'{path_or_sha}' matches several documents ({shas}); give more of the SHA")
        with self.transaction():
            row = self._style_row(name)
            sid, vocab = row.id, row.vocab_size
            counter = NgramCounter(vocab)
            for doc in hits:
                for ids in self.iter_document_token_chunks(doc.id):
                    counter.feed(ids)
                counter.end_document()
            removed = counter.pairs()
            current = self.read_pairs(sid)
            negated = {n: (k, -c) for n, (k, c) in removed.items()}
            merged = merge_pairs(current, negated)
            for (_, counts) in merged.values():
                if counts.size and int(counts.min()) < 0:
                    raise StyleError(f"style '{name}' counts are inconsistent; run `stylesteer styles rebuild`")
            self.write_pairs(sid, merged)
            self.conn.executemany("DELETE FROM documents WHERE id = ?", [(d.id,) for d in hits])
            self.touch(sid)
        self._reclaim()
        return hits

    def record_skipped(self, style_id: int, skipped: Iterable[tuple[str, str]]) -> None:
        """Remember files an import could not use, (path, reason) each (inside a transaction)."""
        self.conn.executemany(
            "INSERT INTO skipped_files (style_id, path, reason, seen_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (style_id, path) DO UPDATE SET reason = excluded.reason, seen_at = excluded.seen_at",
            [(style_id, path, reason, now()) for path, reason in skipped],
        )

    def clear_skipped(self, style_id: int, paths: Iterable[str]) -> None:
        """Forget that these files were skipped (they are imported now)."""
        self.conn.executemany(
            "DELETE FROM skipped_files WHERE style_id = ? AND path = ?", [(style_id, path) for path in paths]
        )

    def document_paths_by_sha(self, style_id: int) -> dict[str, str]:
        """{sha256: path} of a style's documents."""
        rows = self.conn.execute("SELECT sha256, path FROM documents WHERE style_id = ?", (style_id,))
        return {sha: path for sha, path in rows}

    @contextlib.contextmanager
    def document(
        self, style_id: int, path: str, sha256: str, n_bytes: int, encoding: str, imported_at: str | None = None
    ) -> Iterator[DocumentWriter]:
        """A new document of a style, written chunk by chunk (inside a transaction).

        It is kept when the block ends normally; an exception, or `discard()`, takes it
        out again and leaves the rest of the transaction as it was.
        """
        conn = self.conn
        conn.execute("SAVEPOINT document")
        try:
            cur = conn.execute(
                "INSERT INTO documents (style_id, path, sha256, n_bytes, n_chars, n_tokens, encoding, stored_bytes, "
                "imported_at) VALUES (?, ?, ?, ?, 0, 0, ?, 0, ?)",
                (style_id, path, sha256, int(n_bytes), encoding, imported_at or now()),
            )
            doc = DocumentWriter(conn, int(cur.lastrowid or 0))
            yield doc
            if not doc.discarded:
                conn.execute(
                    "UPDATE documents SET n_tokens = ?, n_chars = ?, stored_bytes = ? WHERE id = ?",
                    (doc.n_tokens, doc.n_chars, doc.stored_bytes, doc.id),
                )
        except BaseException:
            with contextlib.suppress(sqlite3.OperationalError):  # the transaction may be gone already
                conn.execute("ROLLBACK TO document")
                conn.execute("RELEASE document")
            raise
        if doc.discarded:
            conn.execute("ROLLBACK TO document")
        conn.execute("RELEASE document")

    def add_counts(self, style_id: int, pairs: Pairs) -> None:
        """Add counted n-grams to a style's stored totals (inside a transaction)."""
        self.write_pairs(style_id, merge_pairs(self.read_pairs(style_id), pairs))
        self.touch(style_id)

    def replace_chunk_tokens(self, doc_id: int, seq: int, ids: np.ndarray) -> int:
        """New token ids for one stored chunk (a rebuild); returns their size on disk."""
        blob = pack_array(ids)
        self.conn.execute(
            "UPDATE chunks SET tokens = ?, n_tokens = ? WHERE document_id = ? AND seq = ?",
            (blob, int(ids.size), doc_id, seq),
        )
        return len(blob)

    def set_document_tokens(self, doc_id: int, n_tokens: int, token_bytes: int) -> None:
        """A rebuilt document's totals: its tokens, and its size on disk with `token_bytes` of token ids."""
        text_bytes = self.conn.execute(
            "SELECT COALESCE(SUM(length(text)), 0) FROM chunks WHERE document_id = ?", (doc_id,)
        ).fetchone()[0]
        self.conn.execute(
            "UPDATE documents SET n_tokens = ?, stored_bytes = ? WHERE id = ?",
            (n_tokens, token_bytes + int(text_bytes), doc_id),
        )

    def set_tokenizer(self, style_id: int, tokenizer_name: str, fingerprint: str, vocab_size: int) -> None:
        """The tokenizer a style's token ids now belong to (a rebuild)."""
        self.conn.execute(
            "UPDATE styles SET tokenizer_name = ?, tokenizer_fingerprint = ?, vocab_size = ? WHERE id = ?",
            (tokenizer_name, fingerprint, vocab_size, style_id),
        )

    # -- exchange

    def export(self, name: str, file: Path | str) -> Path:
        """Write one style as a standalone SQLite file another user can import."""
        target = Path(file).expanduser()
        if target.exists():
            raise StyleError(f"{target} already exists; choose another file name")
        sid = self.style_id(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".stylesteer-export-", suffix=".db", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            tmp.unlink()
            StyleStore(tmp).close()  # the schema
            # The library is read through a read-only attachment (it may be read-only itself).
            out = sqlite3.connect(tmp.absolute().as_uri(), uri=True)
            try:
                out.execute("ATTACH DATABASE ? AS src", (self._uri,))
                with out:  # one transaction
                    for table, cols, where in _EXPORT_TABLES:
                        out.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM src.{table} WHERE {where}",
                                    (sid,))
                out.execute("DETACH DATABASE src")
                out.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
                out.execute("VACUUM")
            finally:
                out.close()
            os.replace(tmp, target)
        finally:
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
        return target

    def import_file(self, file: Path | str, name: str | None = None) -> str:
        """Add the style in an exported file (validated, never trusted); returns its name."""
        source = Path(file).expanduser()
        try:
            with source.open("rb") as fh:
                magic = fh.read(16)
        except OSError as exc:
            raise InvalidStyleFile(f"cannot read {source}: {exc.strerror or exc}") from exc
        if magic != b"SQLite format 3\x00":
            raise InvalidStyleFile(f"{source} is not a StyleSteer style file (not an SQLite database)")
        with tempfile.TemporaryDirectory(prefix="stylesteer-import-") as tmpdir:
            copy = Path(tmpdir) / "style.db"
            shutil.copyfile(source, copy)
            other = _open_untrusted(copy, source)
            try:
                style, docs = _validated_style(other, source)
                new_name = check_name(name or style["name"])
                with self.transaction():
                    self._add_validated_style(other, new_name, style, docs)
            except sqlite3.DatabaseError as exc:
                raise InvalidStyleFile(f"{source} is damaged: {exc}") from exc
            finally:
                other.close()
        return new_name

    def _add_validated_style(
        self, other: sqlite3.Connection, name: str, style: dict[str, Any], docs: list[dict[str, Any]]
    ) -> None:
        """Copy a checked style file's style into this library (inside a transaction)."""
        sid = self.create_style(name, style["tokenizer_name"], style["tokenizer_fingerprint"], style["vocab_size"])
        counter = NgramCounter(style["vocab_size"])
        for doc in docs:
            cur = self.conn.execute(
                "INSERT INTO documents (style_id, path, sha256, n_bytes, n_chars, n_tokens, encoding, "
                "stored_bytes, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sid, doc["path"], doc["sha256"], doc["n_bytes"], doc["n_chars"], doc["n_tokens"],
                 doc["encoding"], doc["stored_bytes"], doc["imported_at"]),
            )
            new_id = int(cur.lastrowid or 0)
            for seq, n_chars, n_tokens, text, tokens, ids in _validated_chunks(other, doc, style["vocab_size"]):
                self.conn.execute(
                    "INSERT INTO chunks (document_id, seq, n_chars, n_tokens, text, tokens) VALUES (?, ?, ?, ?, ?, ?)",
                    (new_id, seq, n_chars, n_tokens, text, tokens),
                )
                counter.feed(ids)
            counter.end_document()
        # The counts are recomputed from the token ids, never read from the file.
        self.write_pairs(sid, counter.pairs())
        skipped = [
            (sid, path[:4096], reason[:1000], str(seen_at)[:64])
            for path, reason, seen_at in other.execute("SELECT path, reason, seen_at FROM skipped_files")
            if isinstance(path, str) and isinstance(reason, str)
        ]
        self.conn.executemany(
            "INSERT OR IGNORE INTO skipped_files (style_id, path, reason, seen_at) VALUES (?, ?, ?, ?)", skipped
        )


_EXPORT_TABLES = (
    ("styles", "id, name, tokenizer_name, tokenizer_fingerprint, vocab_size, created_at, updated_at", "id = ?"),
    (
        "documents",
        "id, style_id, path, sha256, n_bytes, n_chars, n_tokens, encoding, stored_bytes, imported_at",
        "style_id = ?",
    ),
    (
        "chunks",
        "document_id, seq, n_chars, n_tokens, text, tokens",
        "document_id IN (SELECT id FROM src.documents WHERE style_id = ?)",
    ),
    ("ngram_counts", "style_id, n, n_distinct, n_total, keys, counts", "style_id = ?"),
    ("skipped_files", "style_id, path, reason, seen_at", "style_id = ?"),
)

_DOCUMENT_FIELDS = ("id", "path", "sha256", "n_bytes", "n_chars", "n_tokens", "encoding", "stored_bytes",
                    "imported_at")
_EXPECTED_COLUMNS = {table: {c.strip() for c in cols.split(",")} for table, cols, _ in _EXPORT_TABLES}


def _open_untrusted(path: Path, source: Path) -> sqlite3.Connection:
    """A connection to a file from elsewhere (`path`, a private copy of the user's `source`),
    hardened as SQLite advises for untrusted databases."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        conn.execute("PRAGMA trusted_schema = OFF")  # no functions run from its schema
        conn.execute("PRAGMA cell_size_check = ON")
        result = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise InvalidStyleFile(f"{source} is not a readable SQLite database ({exc})") from exc
    if result != [("ok",)]:
        conn.close()
        raise InvalidStyleFile("the style file is damaged (integrity check failed)")
    return conn


def _validated_style(conn: sqlite3.Connection, source: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Check the file's shape and its one style; returns the style and its documents."""
    objects = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
    if any(kind in ("trigger", "view") for kind, _ in objects):
        raise InvalidStyleFile(f"{source} is not a StyleSteer style file (it contains triggers or views)")
    tables = {name for kind, name in objects if kind == "table"}
    for table, expected in _EXPECTED_COLUMNS.items():
        if table not in tables:
            raise InvalidStyleFile(f"{source} is not a StyleSteer style file (no '{table}' table)")
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if not expected <= have:
            raise InvalidStyleFile(f"{source} is not a StyleSteer style file (table '{table}' lacks columns)")
    if "_sqlite_migrations" in tables:
        applied = {
            r[0]
            for r in conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", (migrations.MIGRATION_SET,)
            )
        }
        unknown = applied - set(migrations.known_names())
        if unknown:
            raise InvalidStyleFile(f"{source} was made by a newer StyleSteer; update to import it")
    rows = conn.execute(
        "SELECT id, name, tokenizer_name, tokenizer_fingerprint, vocab_size FROM styles"
    ).fetchall()
    if len(rows) != 1:
        raise InvalidStyleFile(f"{source} must hold exactly one style (it holds {len(rows)})")
    sid, name, tok_name, fingerprint, vocab = rows[0]
    if not isinstance(name, str) or not isinstance(tok_name, str) or not isinstance(fingerprint, str):
        raise InvalidStyleFile(f"{source} has a damaged style record")
    if not _FINGERPRINT.match(fingerprint):
        raise InvalidStyleFile(f"{source} has an invalid tokenizer fingerprint")
    if not isinstance(vocab, int) or not 0 < vocab <= MAX_VOCAB:
        raise InvalidStyleFile(f"{source} has an invalid vocabulary size")
    try:
        name = check_name(name)
    except StyleError as exc:
        raise InvalidStyleFile(f"{source} has an invalid style name: {exc}") from exc
    docs = []
    seen_sha: set[str] = set()
    for row in conn.execute(
        "SELECT id, path, sha256, n_bytes, n_chars, n_tokens, encoding, stored_bytes, imported_at "
        "FROM documents WHERE style_id = ? ORDER BY id",
        (sid,),
    ):
        doc = dict(zip(_DOCUMENT_FIELDS, row, strict=True))
        ints_ok = all(isinstance(doc[k], int) and doc[k] >= 0 for k in ("id", "n_bytes", "n_chars", "n_tokens",
                                                                        "stored_bytes"))
        strs_ok = all(isinstance(doc[k], str) for k in ("path", "sha256", "encoding", "imported_at"))
        if not (ints_ok and strs_ok and _SHA256.match(doc["sha256"])) or doc["sha256"] in seen_sha:
            raise InvalidStyleFile(f"{source} has a damaged document record")
        seen_sha.add(doc["sha256"])
        doc["path"], doc["encoding"] = doc["path"][:4096], doc["encoding"][:64]
        doc["imported_at"] = doc["imported_at"][:64]
        docs.append(doc)
    strays = conn.execute("SELECT COUNT(*) FROM documents WHERE style_id != ?", (sid,)).fetchone()[0]
    if strays:
        raise InvalidStyleFile(f"{source} has documents that belong to no style")
    style = {"name": name, "tokenizer_name": tok_name[:500], "tokenizer_fingerprint": fingerprint, "vocab_size": vocab}
    return style, docs


def _validated_chunks(
    conn: sqlite3.Connection, doc: dict[str, Any], vocab_size: int
) -> Iterator[tuple[int, int, int, bytes, bytes, np.ndarray]]:
    """Each chunk of a document, decoded and checked against the document's record."""
    total_tokens = 0
    total_chars = 0
    rows = conn.execute(
        "SELECT seq, n_chars, n_tokens, text, tokens FROM chunks WHERE document_id = ? ORDER BY seq", (doc["id"],)
    )
    for expected_seq, (seq, n_chars, n_tokens, text, tokens) in enumerate(rows):
        if seq != expected_seq or not isinstance(n_tokens, int) or not isinstance(n_chars, int) or n_tokens < 0:
            raise InvalidStyleFile("the style file has a damaged document (chunk order)")
        if not isinstance(text, bytes) or not isinstance(tokens, bytes):
            raise InvalidStyleFile("the style file has a damaged document (chunk data)")
        ids = unpack_array(tokens, expect=n_tokens)
        if ids.size and int(ids.max()) >= vocab_size:
            raise InvalidStyleFile("the style file has token ids outside its vocabulary")
        decoded = unpack_text(text)
        if len(decoded) != n_chars:
            raise InvalidStyleFile("the style file has a damaged document (text length)")
        total_tokens += n_tokens
        total_chars += n_chars
        yield seq, n_chars, n_tokens, text, tokens, ids
    if total_tokens != doc["n_tokens"] or total_chars != doc["n_chars"]:
        raise InvalidStyleFile("the style file has a damaged document (token count)")

