"""Text -> token ids -> n-gram counts -> the store, as one transaction per import."""

from __future__ import annotations

import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from styles import readers
from styles.tokenizers import tokenizer_fingerprint, tokenizer_name

if TYPE_CHECKING:
    from styles.store import StyleStore

ORDERS = (1, 2, 3)
# About this much text goes to the tokenizer in one call (split into ~8 KB
# pieces it encodes in parallel) and is stored as one chunk row.
BATCH_CHARS = 1 << 20
# Buffered n-gram keys are reduced to (key, count) pairs beyond this many, so
# memory follows the number of distinct n-grams, not the size of the input.
COMPACT_AT = 4_000_000


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ImportProgress:
    """Where an import stands; handed to the progress callback."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    tokens: int
    eta_seconds: float | None
    current_path: str


@dataclass(frozen=True)
class ImportedDoc:
    path: str
    sha256: str
    n_bytes: int
    n_tokens: int
    encoding: str


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class ImportReport:
    """What an import did: imported documents, duplicates, skipped files with reasons."""

    style: str
    imported: list[ImportedDoc] = field(default_factory=list)
    duplicates: list[SkippedFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    cancelled: bool = False
    created: bool = False
    seconds: float = 0.0

    @property
    def n_tokens(self) -> int:
        return sum(d.n_tokens for d in self.imported)

    @property
    def n_bytes(self) -> int:
        return sum(d.n_bytes for d in self.imported)

    def to_dict(self) -> dict[str, Any]:
        return {
            "style": self.style,
            "created": self.created,
            "cancelled": self.cancelled,
            "seconds": round(self.seconds, 3),
            "n_tokens": self.n_tokens,
            "imported": [d.__dict__ for d in self.imported],
            "duplicates": [d.__dict__ for d in self.duplicates],
            "skipped": [d.__dict__ for d in self.skipped],
        }


class ImportCancelled(Exception):
    """Raised inside the import's transaction to roll it back."""


ProgressFn = Callable[[ImportProgress], None]


# --------------------------------------------------------------------------- counting


def pack_keys(ids: np.ndarray, n: int, vocab_size: int) -> np.ndarray:
    """Every n-gram of `ids` as one int64: ((a * V) + b) * V + c for a trigram."""
    ids = np.asarray(ids, dtype=np.int64)
    m = ids.size - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.int64)
    keys = ids[:m].copy()
    v = np.int64(vocab_size)
    for j in range(1, n):
        keys *= v
        keys += ids[j : j + m]
    return keys


def reduce_pairs(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum the counts of equal keys; returns sorted unique keys with their totals (zeros dropped)."""
    if keys.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    c = counts[order]
    starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1])))
    uk = k[starts]
    uc = np.add.reduceat(c, starts)
    keep = uc != 0
    if not bool(keep.all()):
        uk, uc = uk[keep], uc[keep]
    return uk, uc.astype(np.int64, copy=False)


def merge_pairs(a: dict[int, tuple[np.ndarray, np.ndarray]], b: dict[int, tuple[np.ndarray, np.ndarray]]):
    """Per order, the sum of two sets of (keys, counts)."""
    out = {}
    for n in ORDERS:
        ka, ca = a.get(n, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        kb, cb = b.get(n, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        if kb.size == 0:
            out[n] = (ka, ca)
        elif ka.size == 0:
            out[n] = reduce_pairs(kb, cb) if kb.size > 1 and not bool(np.all(kb[1:] > kb[:-1])) else (kb, cb)
        else:
            out[n] = reduce_pairs(np.concatenate((ka, kb)), np.concatenate((ca, cb)))
    return out


class _KeyCounter:
    """A multiset of int64 keys: raw keys are buffered and reduced when the buffer grows."""

    def __init__(self) -> None:
        self.raw: list[np.ndarray] = []
        self.raw_len = 0
        self.keys = np.zeros(0, np.int64)
        self.counts = np.zeros(0, np.int64)

    def add(self, keys: np.ndarray) -> None:
        if keys.size:
            self.raw.append(keys)
            self.raw_len += keys.size
            if self.raw_len > COMPACT_AT:
                self.compact()

    def absorb(self, other: _KeyCounter) -> None:
        self.raw.extend(other.raw)
        self.raw_len += other.raw_len
        if other.keys.size:
            self.keys, self.counts = reduce_pairs(
                np.concatenate((self.keys, other.keys)), np.concatenate((self.counts, other.counts))
            )
        if self.raw_len > COMPACT_AT:
            self.compact()

    def compact(self) -> None:
        if not self.raw:
            return
        uk, uc = np.unique(np.concatenate(self.raw), return_counts=True)
        self.raw, self.raw_len = [], 0
        if self.keys.size:
            self.keys, self.counts = reduce_pairs(
                np.concatenate((self.keys, uk)), np.concatenate((self.counts, uc.astype(np.int64)))
            )
        else:
            self.keys, self.counts = uk, uc.astype(np.int64)

    def pair(self) -> tuple[np.ndarray, np.ndarray]:
        self.compact()
        return self.keys, self.counts


class _UnigramCounter:
    """Unigram counts in a dense array over the vocabulary (no sorting); a document's ids are
    buffered and folded in when it ends, so a failed document is dropped without a trace and
    many small files do not each pay for a vocabulary-sized array."""

    def __init__(self, vocab_size: int) -> None:
        self.total = np.zeros(vocab_size, np.int64)
        self._doc: np.ndarray | None = None  # a document longer than the vocabulary, folded
        self._raw: list[np.ndarray] = []
        self._raw_len = 0

    def add(self, ids: np.ndarray) -> None:
        if ids.size:
            self._raw.append(ids)
            self._raw_len += ids.size
            if self._raw_len >= self.total.size:
                self._fold()

    def _fold(self) -> None:
        folded = np.bincount(np.concatenate(self._raw), minlength=self.total.size)
        self._doc = folded if self._doc is None else self._doc + folded
        self._raw, self._raw_len = [], 0

    def end_document(self) -> None:
        if self._raw:
            keys, counts = np.unique(np.concatenate(self._raw), return_counts=True)
            self.total[keys] += counts
        if self._doc is not None:
            self.total += self._doc
        self.discard_document()

    def discard_document(self) -> None:
        self._doc, self._raw, self._raw_len = None, [], 0

    def pair(self) -> tuple[np.ndarray, np.ndarray]:
        keys = np.flatnonzero(self.total).astype(np.int64)
        return keys, self.total[keys]


class NgramCounter:
    """Counts 1-, 2- and 3-grams of documents fed in pieces; n-grams never cross documents.

    `feed` a document's token ids in as many pieces as convenient, then
    `end_document`; `discard_document` forgets a document that failed half way.
    """

    def __init__(self, vocab_size: int) -> None:
        if not 0 < vocab_size < 2**21:
            raise ValueError(f"vocab_size must be in 1..{2**21 - 1} to pack trigrams into int64")
        self.vocab_size = int(vocab_size)
        self._unigrams = _UnigramCounter(self.vocab_size)
        self._total = {n: _KeyCounter() for n in ORDERS[1:]}
        self._doc = {n: _KeyCounter() for n in ORDERS[1:]}
        self._tail = np.zeros(0, np.int64)

    def feed(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        if int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size:
            raise ValueError("token id outside the vocabulary")
        self._unigrams.add(ids)
        for n in ORDERS[1:]:
            # Prepend the last n-1 ids of this document so n-grams spanning two
            # pieces are counted once, and only n-grams ending in `ids` are new.
            pre = self._tail[max(0, self._tail.size - (n - 1)) :]
            seq = np.concatenate((pre, ids)) if pre.size else ids
            self._doc[n].add(pack_keys(seq, n, self.vocab_size))
        self._tail = np.concatenate((self._tail, ids))[-2:]

    def end_document(self) -> None:
        self._unigrams.end_document()
        for n in ORDERS[1:]:
            self._total[n].absorb(self._doc[n])
            self._doc[n] = _KeyCounter()
        self._tail = np.zeros(0, np.int64)

    def discard_document(self) -> None:
        self._unigrams.discard_document()
        self._doc = {n: _KeyCounter() for n in ORDERS[1:]}
        self._tail = np.zeros(0, np.int64)

    def pairs(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Packed (sorted keys, counts) per order for everything counted so far.

        The bigram and trigram reductions (sorts, which release the GIL) run side by side:
        this is the serial tail of an import, after the last piece is tokenized.
        """
        with ThreadPoolExecutor(max_workers=len(ORDERS) - 1, thread_name_prefix="stylesteer-count") as pool:
            reduced = dict(zip(ORDERS[1:], pool.map(lambda n: self._total[n].pair(), ORDERS[1:])))
        return {1: self._unigrams.pair(), **reduced}


def count_ngrams(docs: Iterable[Sequence[int] | np.ndarray], vocab_size: int | None = None):
    """{n: (ctx [M, n-1], tok [M], cnt [M])} int64 for n = 1, 2, 3, sorted by (ctx, tok).

    Each item of `docs` is one document's token ids; n-grams never span two
    documents. Same format as StyleStore.load_counts.
    """
    from styles.store import unpack_ngram_keys

    arrays = [np.asarray(d, dtype=np.int64).ravel() for d in docs]
    if vocab_size is None:
        vocab_size = max((int(a.max()) + 1 for a in arrays if a.size), default=1)
    counter = NgramCounter(vocab_size)
    for a in arrays:
        counter.feed(a)
        counter.end_document()
    out = {}
    for n, (keys, counts) in counter.pairs().items():
        ctx, tok = unpack_ngram_keys(keys, n, vocab_size)
        out[n] = (ctx, tok, counts)
    return out


# --------------------------------------------------------------------------- tokenizing

# Hashing a 50k-token vocabulary takes ~0.15 s: once per tokenizer object, not per import.
_FINGERPRINTS: weakref.WeakKeyDictionary[Any, tuple[int, str]] = weakref.WeakKeyDictionary()


def remember_fingerprint(tokenizer: Any, fingerprint: str) -> None:
    """Record a fingerprint already computed elsewhere (e.g. when the model was loaded)."""
    try:
        _FINGERPRINTS[tokenizer] = (len(tokenizer), fingerprint)
    except TypeError:  # not weak-referenceable: it will be computed per import
        pass


def _fingerprint(tokenizer: Any) -> str:
    size = len(tokenizer)  # added tokens change the vocabulary, and the length with it
    try:
        cached = _FINGERPRINTS.get(tokenizer)
    except TypeError:  # not weak-referenceable
        return tokenizer_fingerprint(tokenizer)
    if cached is None or cached[0] != size:
        cached = (size, tokenizer_fingerprint(tokenizer))
        _FINGERPRINTS[tokenizer] = cached
    return cached[1]



class ChunkTokenizer:
    """Encodes text pieces with a HF tokenizer, as if the whole document were encoded at once.

    Pieces are cut after a newline followed by a non-space character. A byte-level
    BPE never merges across such a cut, so pieces encode independently (checked
    on probe texts). Tokenizers that add a word-start marker to every input
    (SentencePiece "Metaspace") get each later piece encoded after a "\\n"
    whose own tokens are then dropped.
    """

    _PROBES = (
        "Hello world.\nAnd then, she said: \"no\".\nThe end, 123 times.\n",
        "First line\nsecond line\n  indented\nÉtrange café!\n\nLast.",
        "I. The Beginning\nCHAPTER 1\nIt was a dark night.\n",
    )

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.name = tokenizer_name(tokenizer)
        self.fingerprint = _fingerprint(tokenizer)
        self.vocab_size = len(tokenizer)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None and (backend.truncation is not None or backend.padding is not None):
            from tokenizers import Tokenizer

            # Never change the caller's tokenizer; a private copy without truncation.
            backend = Tokenizer.from_str(backend.to_str())
            backend.no_truncation()
            backend.no_padding()
        self._backend = backend
        self._prefix: list[int] = []
        self.mode = "plain"
        if not self._probe("plain"):
            self._prefix = self._encode_raw(["\n"])[0]
            self.mode = "prefix" if self._probe("prefix") else "whole"

    def _encode_raw(self, texts: list[str]) -> list[list[int]]:
        if self._backend is not None:
            encode = getattr(self._backend, "encode_batch_fast", None) or self._backend.encode_batch
            return [e.ids for e in encode(texts, add_special_tokens=False)]
        return list(self.tokenizer(texts, add_special_tokens=False)["input_ids"])

    def _probe(self, mode: str) -> bool:
        saved = self.mode
        self.mode = mode
        try:
            for text in self._PROBES:
                whole = self._encode_raw([text])[0]
                pieces = list(readers.split_lines(text, target=1))
                split = np.concatenate(self.encode_pieces(pieces, doc_start=True)).tolist()
                if split != whole:
                    return False
            return True
        finally:
            self.mode = saved

    def encode_pieces(self, pieces: list[str], *, doc_start: bool) -> list[np.ndarray]:
        """Token ids of consecutive pieces of one document (the first one starts the document
        when `doc_start`)."""
        if self.mode == "whole":
            joined = "".join(pieces)
            return [np.asarray(self._encode_raw([joined])[0], dtype=np.int64)] if joined else []
        if self.mode == "plain":
            return [np.asarray(ids, dtype=np.int64) for ids in self._encode_raw(pieces)]
        texts = [p if (i == 0 and doc_start) else "\n" + p for i, p in enumerate(pieces)]
        out = []
        k = len(self._prefix)
        for i, ids in enumerate(self._encode_raw(texts)):
            if not (i == 0 and doc_start):
                if ids[:k] == self._prefix:
                    ids = ids[k:]
                else:  # the marker merged with the piece: fall back to the piece alone
                    ids = self._encode_raw([pieces[i]])[0]
            out.append(np.asarray(ids, dtype=np.int64))
        return out


# --------------------------------------------------------------------------- the pipeline


@dataclass
class _DocStart:
    source: readers.SourceText


@dataclass
class _Batch:
    text: str
    ids: np.ndarray


@dataclass
class _DocEnd:
    pass


@dataclass
class _DocFailed:
    reason: str


@dataclass
class _Skip:
    path: str
    reason: str
    duplicate: bool = False
    n_bytes: int = 0


def _produce(
    candidates: list[readers.Candidate], chunker: ChunkTokenizer, known: dict[str, str], stop: threading.Event
) -> Iterator[object]:
    """Read, decode and tokenize, file by file (runs in a helper thread)."""
    for cand in candidates:
        if stop.is_set():
            return
        try:
            source = readers.open_source(cand, stop=stop)
        except readers.ReadError as exc:
            if stop.is_set():
                return
            yield _Skip(str(cand.path), str(exc), n_bytes=cand.size)
            continue
        except Exception as exc:  # noqa: BLE001 - a parser library choking on one file must not stop the batch
            yield _Skip(str(cand.path), f"unreadable: {type(exc).__name__}: {exc}", n_bytes=cand.size)
            continue
        if source.sha256 in known:
            yield _Skip(str(cand.path), f"same content as {known[source.sha256]}", True, cand.size)
            continue
        known[source.sha256] = str(cand.path)
        yield _DocStart(source)
        try:
            first = True
            pieces: list[str] = []
            size = 0
            for piece in source.pieces():
                pieces.append(piece)
                size += len(piece)
                if size >= BATCH_CHARS:
                    yield _batch(chunker, pieces, first)
                    first, pieces, size = False, [], 0
                    if stop.is_set():
                        return
            if pieces:
                yield _batch(chunker, pieces, first)
        except readers.ReadError as exc:
            yield _DocFailed(str(exc))
            continue
        except OSError as exc:
            yield _DocFailed(f"unreadable: {exc.strerror or exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. the tokenizer refusing this file's text
            yield _DocFailed(f"could not be tokenized: {type(exc).__name__}: {exc}")
            continue
        yield _DocEnd()


def _batch(chunker: ChunkTokenizer, pieces: list[str], first: bool) -> _Batch:
    arrays = chunker.encode_pieces(pieces, doc_start=first)
    ids = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
    return _Batch("".join(pieces), ids)


_END = object()


def _prefetch(
    make: Callable[[threading.Event], Iterator[object]],
    depth: int = 3,
    poll: Callable[[], None] | None = None,
) -> Iterator[object]:
    """Run a generator in a helper thread, a few items ahead of the consumer.

    The tokenizer and zlib release the GIL, so reading and tokenizing the next
    batch overlaps counting and writing this one. Closing the iterator stops
    the helper; `poll` runs while waiting (it may raise, e.g. to cancel).
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in make(stop):
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            put(_Failure(exc))

    worker = threading.Thread(target=run, name="stylesteer-import-reader", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = q.get(timeout=0.1)
            except queue.Empty:
                if poll is not None:
                    poll()
                continue
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join()


@dataclass
class _Failure:
    exc: BaseException


class _Clock:
    """Progress with an ETA from bytes done, throttled to a few calls per second."""

    def __init__(self, progress: ProgressFn | None, files_total: int, bytes_total: int) -> None:
        self.progress = progress
        self.files_total, self.bytes_total = files_total, bytes_total
        self.files_done = self.bytes_done = self.tokens = 0
        self.start = time.monotonic()
        self.last = 0.0

    def report(self, path: str, *, force: bool = False) -> None:
        if self.progress is None:
            return
        t = time.monotonic()
        if not force and t - self.last < 0.1:
            return
        self.last = t
        elapsed = t - self.start
        done = min(self.bytes_done, self.bytes_total)
        eta = elapsed * (self.bytes_total - done) / done if done and elapsed > 0.2 else None
        self.progress(
            ImportProgress(self.files_done, self.files_total, done, self.bytes_total, self.tokens, eta, path)
        )


def import_paths(
    store: StyleStore,
    name: str,
    paths: Iterable[Path | str],
    tokenizer: Any,
    *,
    glob: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ImportReport:
    """Import files and folders into style `name`, creating it if needed, in one transaction.

    Bad files are skipped with a reason; duplicates (same bytes already in the
    style) are skipped. A cancel, an error or a killed process leaves the store
    exactly as it was. Returns what was imported and skipped.
    """
    from styles.store import TokenizerMismatch, check_name

    name = check_name(name)
    started = time.monotonic()
    report = ImportReport(style=name)
    candidates: list[readers.Candidate] = []
    for found in readers.find_files(paths, glob):
        if isinstance(found, readers.Rejected):
            report.skipped.append(SkippedFile(str(found.path), found.reason))
        else:
            candidates.append(found)
    chunker = ChunkTokenizer(tokenizer)
    clock = _Clock(progress, len(candidates), sum(c.size for c in candidates))
    clock.report("", force=True)
    try:
        with store.transaction():
            existing = store.conn.execute(
                "SELECT id, tokenizer_fingerprint, tokenizer_name FROM styles WHERE name = ?", (name,)
            ).fetchone()
            if existing is None:
                sid = store.create_style(name, chunker.name, chunker.fingerprint, chunker.vocab_size)
                report.created = True
                known: dict[str, str] = {}
            else:
                sid = int(existing[0])
                if existing[1] != chunker.fingerprint:
                    raise TokenizerMismatch(
                        f"style '{name}' was built for tokenizer {existing[2]} ({existing[1]}), not "
                        f"{chunker.name} ({chunker.fingerprint}); import into a new style or run "
                        f"`stylesteer styles rebuild {name} --model ...` first"
                    )
                known = dict(store.conn.execute("SELECT sha256, path FROM documents WHERE style_id = ?", (sid,)))
            counter = NgramCounter(chunker.vocab_size)
            _consume(store, sid, counter, candidates, chunker, known, report, clock, cancel)
            if not report.imported and report.created:
                raise _NothingImported
            if report.imported:
                store.write_pairs(sid, merge_pairs(store.read_pairs(sid), counter.pairs()))
                store.touch(sid)
            for skip in report.skipped:
                store.record_skipped(sid, skip.path, skip.reason)
            for doc in report.imported:
                store.clear_skipped(sid, doc.path)
    except ImportCancelled:
        report.cancelled = True
        report.imported.clear()
    except _NothingImported:
        report.created = False
    report.seconds = time.monotonic() - started
    return report


class _NothingImported(Exception):
    """Rolls back a new style that would have stayed empty."""


def _consume(
    store: StyleStore,
    sid: int,
    counter: NgramCounter,
    candidates: list[readers.Candidate],
    chunker: ChunkTokenizer,
    known: dict[str, str],
    report: ImportReport,
    clock: _Clock,
    cancel: threading.Event | None,
) -> None:
    from styles.store import now, pack_array, pack_text

    conn = store.conn
    doc_id = seq = n_tokens = n_chars = stored = 0
    source: readers.SourceText | None = None
    file_bytes_before = 0
    stamp = now()
    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise ImportCancelled

    for item in _prefetch(lambda stop: _produce(candidates, chunker, known, stop), poll=check_cancel):
        check_cancel()
        if isinstance(item, _Batch):
            # Compressing here, not in the reader thread, overlaps it with the next batch's tokenizing.
            text_blob, token_blob = pack_text(item.text), pack_array(item.ids)
            conn.execute(
                "INSERT INTO chunks (document_id, seq, n_chars, n_tokens, text, tokens) VALUES (?, ?, ?, ?, ?, ?)",
                (doc_id, seq, len(item.text), int(item.ids.size), text_blob, token_blob),
            )
            counter.feed(item.ids)
            seq += 1
            n_tokens += int(item.ids.size)
            n_chars += len(item.text)
            stored += len(text_blob) + len(token_blob)
            clock.tokens += int(item.ids.size)
            clock.bytes_done = min(clock.bytes_done + len(item.text), file_bytes_before + (source.n_bytes if source else 0))
            clock.report(str(source.path) if source else "")
        elif isinstance(item, _DocStart):
            source = item.source
            file_bytes_before = clock.bytes_done
            conn.execute("SAVEPOINT document")
            cur = conn.execute(
                "INSERT INTO documents (style_id, path, sha256, n_bytes, n_chars, n_tokens, encoding, stored_bytes, "
                "imported_at) VALUES (?, ?, ?, ?, 0, 0, ?, 0, ?)",
                (sid, _display_path(source.path), source.sha256, source.n_bytes, source.encoding, stamp),
            )
            doc_id, seq, n_tokens, n_chars, stored = int(cur.lastrowid), 0, 0, 0, 0
            clock.report(str(source.path), force=True)
        elif isinstance(item, _DocEnd):
            assert source is not None
            if n_tokens == 0:
                conn.execute("ROLLBACK TO document")
                conn.execute("RELEASE document")
                counter.discard_document()
                report.skipped.append(SkippedFile(str(source.path), "no tokens in file"))
            else:
                conn.execute(
                    "UPDATE documents SET n_tokens = ?, n_chars = ?, stored_bytes = ? WHERE id = ?",
                    (n_tokens, n_chars, stored, doc_id),
                )
                conn.execute("RELEASE document")
                counter.end_document()
                report.imported.append(
                    ImportedDoc(_display_path(source.path), source.sha256, source.n_bytes, n_tokens, source.encoding)
                )
            clock.files_done += 1
            clock.bytes_done = file_bytes_before + source.n_bytes
            clock.report(str(source.path), force=True)
            source = None
        elif isinstance(item, _DocFailed):
            assert source is not None
            conn.execute("ROLLBACK TO document")
            conn.execute("RELEASE document")
            counter.discard_document()
            clock.tokens -= n_tokens
            report.skipped.append(SkippedFile(str(source.path), item.reason))
            clock.files_done += 1
            clock.bytes_done = file_bytes_before + source.n_bytes
            source = None
        elif isinstance(item, _Skip):
            (report.duplicates if item.duplicate else report.skipped).append(SkippedFile(item.path, item.reason))
            clock.files_done += 1
            clock.bytes_done += item.n_bytes
            clock.report(item.path, force=True)
    if cancel is not None and cancel.is_set():
        raise ImportCancelled


def _display_path(path: Path) -> str:
    """The absolute path (not resolved through symlinks), as the user knows the file."""
    return str(Path(path).expanduser().absolute())


def rebuild(
    store: StyleStore,
    name: str,
    tokenizer: Any,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ImportReport:
    """Re-tokenize every document of a style from its stored text (e.g. for another model).

    One transaction: a cancel leaves the style as it was.
    """
    from styles.store import pack_array

    chunker = ChunkTokenizer(tokenizer)
    report = ImportReport(style=name)
    started = time.monotonic()
    docs = store.documents(name)
    clock = _Clock(progress, len(docs), sum(d.n_bytes for d in docs))
    try:
        with store.transaction():
            sid = store.style_id(name)
            counter = NgramCounter(chunker.vocab_size)
            bytes_before = 0
            for doc in docs:
                total = 0
                first = True
                stored = 0
                for seq, text in list(store.iter_document_text_chunks(doc.id)):
                    if cancel is not None and cancel.is_set():
                        raise ImportCancelled
                    arrays = chunker.encode_pieces(list(readers.split_lines(text)), doc_start=first)
                    ids = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
                    first = False
                    blob = pack_array(ids)
                    store.conn.execute(
                        "UPDATE chunks SET tokens = ?, n_tokens = ? WHERE document_id = ? AND seq = ?",
                        (blob, int(ids.size), doc.id, seq),
                    )
                    counter.feed(ids)
                    total += int(ids.size)
                    stored += len(blob)
                    clock.tokens += int(ids.size)
                    clock.bytes_done = min(clock.bytes_done + len(text), bytes_before + doc.n_bytes)
                    clock.report(doc.path)
                counter.end_document()
                text_bytes = store.conn.execute(
                    "SELECT COALESCE(SUM(length(text)), 0) FROM chunks WHERE document_id = ?", (doc.id,)
                ).fetchone()[0]
                store.conn.execute(
                    "UPDATE documents SET n_tokens = ?, stored_bytes = ? WHERE id = ?",
                    (total, stored + text_bytes, doc.id),
                )
                report.imported.append(ImportedDoc(doc.path, doc.sha256, doc.n_bytes, total, doc.encoding))
                clock.files_done += 1
                bytes_before += doc.n_bytes
                clock.bytes_done = bytes_before
                clock.report(doc.path, force=True)
            store.conn.execute(
                "UPDATE styles SET tokenizer_name = ?, tokenizer_fingerprint = ?, vocab_size = ? WHERE id = ?",
                (chunker.name, chunker.fingerprint, chunker.vocab_size, sid),
            )
            store.write_pairs(sid, counter.pairs())
            store.touch(sid)
    except ImportCancelled:
        report.cancelled = True
        report.imported.clear()
    report.seconds = time.monotonic() - started
    return report
