"""The chunked, cached document token count: exact where the cuts are pre-token boundaries, cheap after an edit."""

from __future__ import annotations

import itertools
import os
import re
import threading
from pathlib import Path

import pytest

from engine.token_count import DocumentTokenCounter, chunks
from tests.conftest import corpora_path


class SpaceTokenizer:
    """HF-shaped: a token per run of non-space characters and per newline; remembers what it was asked."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, texts: list[str], *, add_special_tokens: bool = True, verbose: bool = False) -> dict:
        self.seen += texts
        return {"input_ids": [[0] * len(re.findall(r"\S+|\n", t)) for t in texts]}


class MarkerTokenizer(SpaceTokenizer):
    """Adds a marker token at the start of every call's text, as SentencePiece's prefix space does."""

    def __call__(self, texts: list[str], *, add_special_tokens: bool = True, verbose: bool = False) -> dict:
        out = super().__call__(texts)
        return {"input_ids": [[1, *ids] for ids in out["input_ids"]]}


@pytest.mark.parametrize("text", ["", "one", "a.\nb", "a \nb\n\n\nc  d\n", "\n\nx", "x" * 50 + " y" * 40,
                                  "word " * 30 + "\n" + "  z"])
def test_chunks_put_together_are_the_text_and_cut_only_after_a_non_space(text: str) -> None:
    parts = list(chunks(text, long_line=16))
    assert "".join(parts) == text
    for before, after in itertools.pairwise(parts):
        assert before and not before[-1].isspace() and after[0] in "\n "


def test_the_count_is_the_sum_and_only_changed_chunks_are_tokenized_again() -> None:
    tok = SpaceTokenizer()
    counter = DocumentTokenCounter(tok)
    assert counter.exact
    doc = "".join(f"Line {i} has five words.\n" for i in range(1000))
    tok.seen.clear()
    assert counter.count(doc).tokens == 6000
    edited = doc.replace("Line 500 has", "Line 500 now has")
    tok.seen.clear()
    assert counter.count(edited).tokens == 6001
    assert tok.seen == ["\nLine 500 now has five words."]


def test_a_tokenizer_whose_count_the_cuts_change_is_reported_approximate() -> None:
    counter = DocumentTokenCounter(MarkerTokenizer())
    assert not counter.exact
    assert not counter.count("a\nb").exact


def test_a_cancelled_count_says_so_and_keeps_what_it_counted() -> None:
    tok = SpaceTokenizer()
    counter = DocumentTokenCounter(tok)
    cancel = threading.Event()
    cancel.set()
    doc = "word " * 100_000
    assert counter.count(doc, cancel) is None
    assert counter.count(doc).tokens == 100_000


def test_the_demo_tokenizer_counts_a_long_text_exactly() -> None:
    folder = Path(os.environ["STYLESTEER_MODELS"]) / "smollm2-135m-instruct"
    corpus = corpora_path() / "sherlock_holmes.txt"
    if not (folder / "tokenizer.json").is_file() or not corpus.is_file():
        pytest.skip("demo tokenizer or corpus not available")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    text = corpus.read_text(encoding="utf-8")[:150_000] + "\n\n\n   spaced  out \t\n" + "x " * 30_000 + "\nend."
    counter = DocumentTokenCounter(tok, long_line=1000)
    assert counter.exact
    whole = len(tok(text, add_special_tokens=False, verbose=False)["input_ids"])
    assert counter.count(text).tokens == whole
