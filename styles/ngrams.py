"""N-grams of token ids: packing them into int64 keys, and counting them document by document."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ORDERS = (1, 2, 3)
# Packing a trigram into one int64 needs vocab_size**3 < 2**63.
MAX_VOCAB = 2**21 - 1
# Buffered n-gram keys are reduced to (key, count) pairs beyond this many, so
# memory follows the number of distinct n-grams, not the size of the input.
COMPACT_AT = 4_000_000

Pairs = dict[int, tuple[np.ndarray, np.ndarray]]
# counts[n] = (contexts int64 [M, n-1], tokens int64 [M], counts int64 [M])
Counts = dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)


def _pack_digits(columns: Iterable[np.ndarray], size: int, vocab_size: int) -> np.ndarray:
    """Columns of ids as base-V digits of one int64 per row, the first column most significant."""
    keys = np.zeros(size, dtype=np.int64)
    v = np.int64(vocab_size)
    for column in columns:
        keys *= v
        keys += column
    return keys


def ngram_keys(ids: np.ndarray, n: int, vocab_size: int) -> np.ndarray:
    """Every n-gram of `ids` as one int64: ((a * V) + b) * V + c for a trigram."""
    ids = np.asarray(ids, dtype=np.int64)
    m = max(ids.size - n + 1, 0)
    return _pack_digits((ids[j : j + m] for j in range(n)), m, vocab_size)


def context_keys(contexts: np.ndarray, vocab_size: int) -> np.ndarray:
    """Pack [M, n-1] context ids into one int64 key per row (the same digits as ngram_keys)."""
    contexts = np.asarray(contexts, dtype=np.int64)
    return _pack_digits((contexts[:, j] for j in range(contexts.shape[1])), contexts.shape[0], vocab_size)


def unpack_ngram_keys(keys: np.ndarray, n: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Packed keys of order n -> (ctx [M, n-1], tok [M]), int64."""
    v = np.int64(vocab_size)
    tok = keys % v
    rest = keys // v
    cols = []
    for _ in range(n - 1):
        cols.append(rest % v)
        rest = rest // v
    ctx = np.stack(cols[::-1], axis=1) if cols else np.zeros((keys.size, 0), dtype=np.int64)
    return np.ascontiguousarray(ctx, dtype=np.int64), tok


def reduce_pairs(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum the counts of equal keys; returns sorted unique keys with their totals (zeros dropped)."""
    if keys.size == 0:
        return _empty()
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


def merge_pairs(a: Pairs, b: Pairs) -> Pairs:
    """Per order, the sum of two sets of (keys, counts)."""
    out: Pairs = {}
    for n in ORDERS:
        ka, ca = a.get(n, _empty())
        kb, cb = b.get(n, _empty())
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
        if not 0 < vocab_size <= MAX_VOCAB:
            raise ValueError(f"vocab_size must be in 1..{MAX_VOCAB} to pack trigrams into int64")
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
            self._doc[n].add(ngram_keys(seq, n, self.vocab_size))
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

    def pairs(self) -> Pairs:
        """Packed (sorted keys, counts) per order for everything counted so far.

        The bigram and trigram reductions (sorts, which release the GIL) run side by side:
        this is the serial tail of an import, after the last piece is tokenized.
        """
        with ThreadPoolExecutor(max_workers=len(ORDERS) - 1, thread_name_prefix="stylesteer-count") as pool:
            reduced = dict(zip(ORDERS[1:], pool.map(lambda n: self._total[n].pair(), ORDERS[1:]), strict=True))
        return {1: self._unigrams.pair(), **reduced}


def count_ngrams(docs: Iterable[Sequence[int] | np.ndarray], vocab_size: int | None = None) -> Counts:
    """{n: (ctx [M, n-1], tok [M], cnt [M])} int64 for n = 1, 2, 3, sorted by (ctx, tok).

    Each item of `docs` is one document's token ids; n-grams never span two
    documents. Same format as StyleStore.load_counts.
    """
    arrays = [np.asarray(d, dtype=np.int64).ravel() for d in docs]
    if vocab_size is None:
        vocab_size = max((int(a.max()) + 1 for a in arrays if a.size), default=1)
    counter = NgramCounter(vocab_size)
    for a in arrays:
        counter.feed(a)
        counter.end_document()
    out: Counts = {}
    for n, (keys, counts) in counter.pairs().items():
        ctx, tok = unpack_ngram_keys(keys, n, vocab_size)
        out[n] = (ctx, tok, counts)
    return out
