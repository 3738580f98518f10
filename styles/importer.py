"""Text -> token ids -> n-gram counts -> the store, as one transaction per import."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from styles import readers
from styles.errors import check_tokenizer
from styles.ngrams import NgramCounter
from styles.store import DocumentInfo, StyleStore, check_name, now
from styles.tokenizers import tokenizer_fingerprint, tokenizer_name

# About this much text goes to the tokenizer in one call (split into ~8 KB
# pieces it encodes in parallel) and is stored as one chunk row.
BATCH_CHARS = 1 << 20
# While another import holds the library, progress says so about this often (seconds).
WAITING_EVERY = 1.0


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
    waiting: bool = False  # True while another import holds the library and this one waits its turn


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


# --------------------------------------------------------------------------- tokenizing

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

    def __init__(self, tokenizer: Any, fingerprint: str | None = None) -> None:
        """`fingerprint`: the tokenizer's, when the caller already has it (hashing a 50k-token
        vocabulary takes ~0.15 s; loading a model computes it on the way)."""
        self.tokenizer = tokenizer
        self.name = tokenizer_name(tokenizer)
        self.fingerprint = fingerprint or tokenizer_fingerprint(tokenizer)
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
        self.last_waiting: float | None = None

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

    def waiting(self) -> None:
        """Another import holds the library: say so now and then about once a second."""
        t = time.monotonic()
        if self.progress is None or (self.last_waiting is not None and t - self.last_waiting < WAITING_EVERY):
            return
        self.last_waiting = t
        self.progress(ImportProgress(0, self.files_total, 0, self.bytes_total, 0, None, "", waiting=True))


def _canceller(cancel: threading.Event | None) -> Callable[[], None]:
    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise ImportCancelled

    return check


def _waiter(clock: _Clock, check_cancel: Callable[[], None]) -> Callable[[], None]:
    """What the store calls while another writer holds the library: a cancel ends the wait."""

    def wait() -> None:
        check_cancel()
        clock.waiting()

    return wait


def import_paths(
    store: StyleStore,
    name: str,
    paths: Iterable[Path | str],
    tokenizer: Any,
    *,
    glob: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    fingerprint: str | None = None,
) -> ImportReport:
    """Import files and folders into style `name`, creating it if needed, in one transaction.

    Bad files are skipped with a reason; duplicates (same bytes already in the
    style) are skipped. A cancel, an error or a killed process leaves the store
    exactly as it was. While another import holds the library, this one waits its
    turn (progress reports `waiting=True`; a cancel still works). `fingerprint`: the
    tokenizer's, where the caller already computed it. Returns what was imported and skipped.
    """
    name = check_name(name)
    started = time.monotonic()
    report = ImportReport(style=name)
    candidates: list[readers.Candidate] = []
    for found in readers.find_files(paths, glob):
        if isinstance(found, readers.Rejected):
            report.skipped.append(SkippedFile(str(found.path), found.reason))
        else:
            candidates.append(found)
    chunker = ChunkTokenizer(tokenizer, fingerprint)
    clock = _Clock(progress, len(candidates), sum(c.size for c in candidates))
    clock.report("", force=True)
    check_cancel = _canceller(cancel)
    try:
        with store.transaction(waiting=_waiter(clock, check_cancel)):
            sid, known = _target_style(store, name, chunker, report)
            counter = NgramCounter(chunker.vocab_size)
            _consume(store, sid, counter, candidates, chunker, known, report, clock, check_cancel)
            if not report.imported and report.created:
                raise _NothingImported
            if report.imported:
                store.add_counts(sid, counter.pairs())
            store.record_skipped(sid, [(skip.path, skip.reason) for skip in report.skipped])
            store.clear_skipped(sid, [doc.path for doc in report.imported])
    except ImportCancelled:
        report.cancelled = True
        report.imported.clear()
    except _NothingImported:
        report.created = False
    report.seconds = time.monotonic() - started
    return report


def _target_style(
    store: StyleStore, name: str, chunker: ChunkTokenizer, report: ImportReport
) -> tuple[int, dict[str, str]]:
    """The id of the style to import into (created if new) and its documents' paths by SHA-256."""
    existing = store.find_style(name)
    if existing is None:
        report.created = True
        return store.create_style(name, chunker.name, chunker.fingerprint, chunker.vocab_size), {}
    check_tokenizer(existing.name, existing.tokenizer_fingerprint, chunker.fingerprint, model=chunker.name)
    return existing.id, store.document_paths_by_sha(existing.id)


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
    check_cancel: Callable[[], None],
) -> None:
    """Store and count what the reader thread produces, document by document."""
    stamp = now()
    items = _prefetch(lambda stop: _produce(candidates, chunker, known, stop), poll=check_cancel)
    for item in items:
        check_cancel()
        if isinstance(item, _DocStart):
            _import_document(store, sid, item.source, items, stamp, counter, report, clock, check_cancel)
        elif isinstance(item, _Skip):
            (report.duplicates if item.duplicate else report.skipped).append(SkippedFile(item.path, item.reason))
            clock.files_done += 1
            clock.bytes_done += item.n_bytes
            clock.report(item.path, force=True)
    check_cancel()


def _import_document(
    store: StyleStore,
    sid: int,
    source: readers.SourceText,
    items: Iterator[object],
    stamp: str,
    counter: NgramCounter,
    report: ImportReport,
    clock: _Clock,
    check_cancel: Callable[[], None],
) -> None:
    """One document's batches, up to its end: stored and counted, or left out with a reason."""
    path = str(source.path)
    bytes_before = clock.bytes_done
    clock.report(path, force=True)
    failure: str | None = None
    shown = _display_path(source.path)
    with store.document(sid, shown, source.sha256, source.n_bytes, source.encoding, stamp) as doc:
        for item in items:
            check_cancel()
            if not isinstance(item, _Batch):
                failure = item.reason if isinstance(item, _DocFailed) else None
                break
            doc.add_chunk(item.text, item.ids)  # compressing here overlaps the next batch's tokenizing
            counter.feed(item.ids)
            clock.tokens += int(item.ids.size)
            clock.bytes_done = min(clock.bytes_done + len(item.text), bytes_before + source.n_bytes)
            clock.report(path)
        if failure is None and doc.n_tokens == 0:
            failure = "no tokens in file"
        if failure is not None:
            doc.discard()
    if failure is None:
        counter.end_document()
        report.imported.append(ImportedDoc(shown, source.sha256, source.n_bytes, doc.n_tokens, source.encoding))
    else:
        counter.discard_document()
        clock.tokens -= doc.n_tokens
        report.skipped.append(SkippedFile(path, failure))
    clock.files_done += 1
    clock.bytes_done = bytes_before + source.n_bytes
    clock.report(path, force=True)


def _display_path(path: Path) -> str:
    """The absolute path (not resolved through symlinks), as the user knows the file."""
    return str(Path(path).expanduser().absolute())


def rebuild(
    store: StyleStore,
    name: str,
    tokenizer: Any,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    *,
    fingerprint: str | None = None,
) -> ImportReport:
    """Re-tokenize every document of a style from its stored text (e.g. for another model).

    One transaction: a cancel leaves the style as it was. `fingerprint` as for import_paths.
    """
    chunker = ChunkTokenizer(tokenizer, fingerprint)
    report = ImportReport(style=name)
    started = time.monotonic()
    docs = store.documents(name)
    clock = _Clock(progress, len(docs), sum(d.n_bytes for d in docs))
    check_cancel = _canceller(cancel)
    try:
        with store.transaction(waiting=_waiter(clock, check_cancel)):
            sid = store.style_id(name)
            counter = NgramCounter(chunker.vocab_size)
            for doc in docs:
                total = _rebuild_document(store, doc, chunker, counter, clock, check_cancel)
                report.imported.append(ImportedDoc(doc.path, doc.sha256, doc.n_bytes, total, doc.encoding))
            store.set_tokenizer(sid, chunker.name, chunker.fingerprint, chunker.vocab_size)
            store.write_pairs(sid, counter.pairs())
            store.touch(sid)
    except ImportCancelled:
        report.cancelled = True
        report.imported.clear()
    report.seconds = time.monotonic() - started
    return report


def _rebuild_document(
    store: StyleStore,
    doc: DocumentInfo,
    chunker: ChunkTokenizer,
    counter: NgramCounter,
    clock: _Clock,
    check_cancel: Callable[[], None],
) -> int:
    """Re-tokenize one stored document in place; returns its new number of tokens."""
    bytes_before = clock.bytes_done
    total = 0
    first = True
    token_bytes = 0
    for seq, text in list(store.iter_document_text_chunks(doc.id)):
        check_cancel()
        arrays = chunker.encode_pieces(list(readers.split_lines(text)), doc_start=first)
        ids = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
        first = False
        token_bytes += store.replace_chunk_tokens(doc.id, seq, ids)
        counter.feed(ids)
        total += int(ids.size)
        clock.tokens += int(ids.size)
        clock.bytes_done = min(clock.bytes_done + len(text), bytes_before + doc.n_bytes)
        clock.report(doc.path)
    counter.end_document()
    store.set_document_tokens(doc.id, total, token_bytes)
    clock.files_done += 1
    clock.bytes_done = bytes_before + doc.n_bytes
    clock.report(doc.path, force=True)
    return total
