"""count_ngrams and the packed count arrays, checked by hand on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest

from styles import ngrams
from styles.ngrams import NgramCounter, count_ngrams, merge_pairs, reduce_pairs, unpack_ngram_keys
from styles.store import pack_array, pack_keys, unpack_array, unpack_keys


def as_dict(counts, n):
    ctx, tok, cnt = counts[n]
    return {(*c, t): k for c, t, k in zip(ctx.tolist(), tok.tolist(), cnt.tolist(), strict=True)}


def test_counts_by_hand():
    counts = count_ngrams([[1, 2, 1, 2, 3]], vocab_size=5)
    assert as_dict(counts, 1) == {(1,): 2, (2,): 2, (3,): 1}
    assert as_dict(counts, 2) == {(1, 2): 2, (2, 1): 1, (2, 3): 1}
    assert as_dict(counts, 3) == {(1, 2, 1): 1, (2, 1, 2): 1, (1, 2, 3): 1}


def test_ngrams_never_span_documents():
    counts = count_ngrams([[1, 2], [3, 4]], vocab_size=5)
    assert as_dict(counts, 2) == {(1, 2): 1, (3, 4): 1}  # no (2, 3)
    assert as_dict(counts, 3) == {}  # each document is too short for a trigram
    assert as_dict(counts, 1) == {(1,): 1, (2,): 1, (3,): 1, (4,): 1}


def test_shapes_dtypes_and_order():
    counts = count_ngrams([[4, 0, 3, 0, 3, 1]], vocab_size=5)
    for n in (1, 2, 3):
        ctx, tok, cnt = counts[n]
        assert ctx.shape == (tok.size, n - 1)
        assert ctx.dtype == tok.dtype == cnt.dtype == np.int64
        rows = [tuple(r) for r in np.column_stack((ctx, tok)).tolist()]
        assert rows == sorted(rows)
    assert counts[1][0].shape == (4, 0)


def test_pieces_of_one_document_count_like_the_whole():
    rng = np.random.default_rng(0)
    doc = rng.integers(0, 7, size=200)
    counter = NgramCounter(7)
    for piece in np.array_split(doc, [1, 2, 50, 51, 120]):
        counter.feed(piece)
    counter.end_document()
    whole = NgramCounter(7)
    whole.feed(doc)
    whole.end_document()
    for n in (1, 2, 3):
        np.testing.assert_array_equal(counter.pairs()[n][0], whole.pairs()[n][0])
        np.testing.assert_array_equal(counter.pairs()[n][1], whole.pairs()[n][1])


def test_compaction_gives_the_same_counts(monkeypatch):
    rng = np.random.default_rng(1)
    docs = [rng.integers(0, 11, size=int(s)) for s in rng.integers(0, 300, size=40)]
    expected = count_ngrams(docs, vocab_size=11)
    monkeypatch.setattr(ngrams, "COMPACT_AT", 50)
    got = count_ngrams(docs, vocab_size=11)
    for n in (1, 2, 3):
        for a, b in zip(expected[n], got[n], strict=True):
            np.testing.assert_array_equal(a, b)
    assert sum(len(d) for d in docs) == int(got[1][2].sum())


def test_discarded_document_leaves_no_trace():
    counter = NgramCounter(5)
    counter.feed(np.array([1, 2, 3]))
    counter.end_document()
    counter.feed(np.array([4, 4, 4]))
    counter.discard_document()
    expected = count_ngrams([[1, 2, 3]], vocab_size=5)
    got = counter.pairs()
    for n in (1, 2, 3):
        _ctx, tok = unpack_ngram_keys(got[n][0], n, 5)
        np.testing.assert_array_equal(tok, expected[n][1])


def test_out_of_vocabulary_ids_are_refused():
    with pytest.raises(ValueError):
        count_ngrams([[0, 5]], vocab_size=5)


def test_reduce_and_merge_sum_exactly_and_drop_zeros():
    k, c = reduce_pairs(np.array([5, 1, 5, 3], np.int64), np.array([1, 2, 3, 4], np.int64))
    assert k.tolist() == [1, 3, 5] and c.tolist() == [2, 4, 4]
    a = {1: (np.array([1, 3]), np.array([2, 4]))}
    b = {1: (np.array([3, 7]), np.array([-4, 1]))}
    merged = merge_pairs(a, b)
    assert merged[1][0].tolist() == [1, 7] and merged[1][1].tolist() == [2, 1]


def test_packed_arrays_round_trip():
    keys = np.array([0, 3, 10, 2**40, 2**62], dtype=np.int64)
    assert unpack_keys(pack_keys(keys), expect=5).tolist() == keys.tolist()
    for arr in (np.array([0, 255]), np.array([70000, 1]), np.array([2**40]), np.zeros(0, np.int64)):
        assert unpack_array(pack_array(arr), expect=arr.size).tolist() == arr.tolist()


def test_trigram_keys_unpack_to_columns():
    v = 49152
    counts = count_ngrams([[v - 1, 0, v - 2]], vocab_size=v)
    ctx, tok, cnt = counts[3]
    assert ctx.tolist() == [[v - 1, 0]] and tok.tolist() == [v - 2] and cnt.tolist() == [1]


def _zlib_array(arr: np.ndarray, tag: str, shuffled: bool) -> bytes:
    """An array as stores written before zstd hold it (zlib, optionally byte planes)."""
    import zlib

    typed = np.ascontiguousarray(arr, dtype=tag)
    if shuffled:
        data = np.ascontiguousarray(typed.view(np.uint8).reshape(-1, typed.itemsize).T).tobytes()
        return (tag + "s").encode() + zlib.compress(data, 1)
    return tag.encode().ljust(4, b" ") + zlib.compress(typed.tobytes(), 1)


def test_older_zlib_blobs_still_read():
    import zlib

    from styles.store import pack_text, unpack_text

    arr = np.array([0, 5, 70000, 3], dtype=np.int64)
    assert unpack_array(_zlib_array(arr, "<u4", True), expect=4).tolist() == arr.tolist()
    assert unpack_array(_zlib_array(np.array([1, 2, 255]), "<u1", False), expect=3).tolist() == [1, 2, 255]
    assert unpack_text(zlib.compress("Ünïcode text".encode(), 1)) == "Ünïcode text"
    assert pack_text("x")[:4] == b"\x28\xb5\x2f\xfd" and pack_array(arr)[3:4] == b"z"


def test_hostile_zstd_blobs_are_refused_before_inflating():
    import zstandard

    from styles.store import InvalidStyleFile, unpack_text

    big = zstandard.ZstdCompressor().compress(b"\x00" * (1 << 20))  # 1 MiB of zeros in ~40 bytes
    with pytest.raises(InvalidStyleFile, match="wrong length"):
        unpack_array(b"<u1z" + big, expect=10)
    with pytest.raises(InvalidStyleFile, match="too long"):
        unpack_text(big, max_chars=1000)
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(b"abc")
    with pytest.raises(InvalidStyleFile):
        unpack_text(unsized)
    with pytest.raises(InvalidStyleFile, match="bad compression"):
        unpack_array(b"<u2z" + b"\x28\xb5\x2f\xfd" + b"junk" * 4, expect=2)
    with pytest.raises(InvalidStyleFile, match="unknown type"):
        unpack_array(b"<u2q" + big, expect=2)


def test_discarded_long_document_leaves_no_trace():
    """A document longer than the vocabulary is folded into dense counts as it streams in;
    discarding it must still forget it, and the next document must count from zero."""
    rng = np.random.default_rng(1)
    kept, dropped, after = (rng.integers(0, 7, size=n) for n in (50, 40, 30))
    counter = NgramCounter(7)
    counter.feed(kept)
    counter.end_document()
    counter.feed(dropped[:20])
    counter.feed(dropped[20:])
    counter.discard_document()
    counter.feed(after)
    counter.end_document()
    expected = count_ngrams([kept, after], vocab_size=7)
    got = counter.pairs()
    for n in (1, 2, 3):
        ctx, tok = unpack_ngram_keys(got[n][0], n, 7)
        np.testing.assert_array_equal(ctx, expected[n][0])
        np.testing.assert_array_equal(tok, expected[n][1])
        np.testing.assert_array_equal(got[n][1], expected[n][2])
