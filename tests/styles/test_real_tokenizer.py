"""The import path with the demo model's real tokenizer, on the shared corpora."""

from __future__ import annotations

import numpy as np
import pytest

from styles import readers
from styles.importer import ChunkTokenizer, import_paths
from styles.store import StyleStore

pytestmark = pytest.mark.corpora


def test_pieces_tokenize_exactly_like_the_whole_text(demo_tokenizer, corpora_dir):
    text = (corpora_dir / "sherlock_holmes.txt").read_text(encoding="utf-8")[:200_000]
    chunker = ChunkTokenizer(demo_tokenizer)
    assert chunker.mode == "plain"
    pieces = list(readers.split_lines(text, target=2048))
    assert len(pieces) > 50
    split = np.concatenate(chunker.encode_pieces(pieces, doc_start=True))
    whole = demo_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert split.tolist() == list(whole)


def test_import_and_activate_a_real_style(demo_tokenizer, corpora_dir, tmp_path):
    store = StyleStore(tmp_path / "s.db")
    try:
        report = import_paths(store, "holmes", [corpora_dir / "sherlock_holmes.txt"], demo_tokenizer)
        text = (corpora_dir / "sherlock_holmes.txt").read_text(encoding="utf-8")
        expected = len(demo_tokenizer(text, add_special_tokens=False)["input_ids"])
        assert report.n_tokens == expected
        info = store.get("holmes")
        assert info.vocab_size == len(demo_tokenizer)
        counts = store.load_counts("holmes")
        assert int(counts[1][2].sum()) == expected
        prior = store.load_prior("holmes")
        assert prior.vocab_size == info.vocab_size
        assert prior.tokenizer_fingerprint == info.tokenizer_fingerprint
        the = demo_tokenizer(" the", add_special_tokens=False)["input_ids"][0]
        assert the in prior.top_unigram_ids(50)
    finally:
        store.close()


def test_styles_bench_reports_every_key(demo_tokenizer, corpora_dir, tmp_path, monkeypatch):
    from styles import bench

    # Two small files keep this quick; the real numbers come from `stylesteer bench`.
    small = tmp_path / "corpora"
    small.mkdir()
    text = (corpora_dir / "sherlock_holmes.txt").read_text(encoding="utf-8")
    (small / "sherlock_holmes.txt").write_text(text[:150_000], encoding="utf-8")
    (small / "kjv_bible.txt").write_text(text[150_000:300_000], encoding="utf-8")
    out = bench.run_styles_bench(demo_tokenizer, small, decode_step_seconds=0.01, repeats=1)
    for key in ("import_over_tokenizer", "import_over_naive", "activate_seconds_per_million_tokens",
                "prior_step_over_decode_step", "bytes_per_token"):
        assert key in out and out[key] is not None and out[key] > 0
    assert bench.run_styles_bench(demo_tokenizer, small, repeats=1, naive=False)["prior_step_over_decode_step"] is None
