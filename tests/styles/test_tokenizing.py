"""ChunkTokenizer: pieces encode exactly like the whole text, for byte-level BPE and
SentencePiece-style (word-start marker) tokenizers alike."""

from __future__ import annotations

import string

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from styles import readers
from styles.importer import ChunkTokenizer
from tests.styles.tiny_tokenizer import TinyTokenizer, Wrapped


def llama_like(kind: str) -> Wrapped:
    """A tiny SentencePiece-like BPE: a word-start marker '▁' is added to every input."""
    chars = dict.fromkeys(string.ascii_letters + string.digits + string.punctuation + "▁\n ")
    vocab = {c: i for i, c in enumerate(chars)}
    vocab["<unk>"] = len(vocab)
    merges = [("▁", "t"), ("▁t", "h"), ("▁th", "e"), ("▁", "a"), ("i", "n"), ("▁", "in")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>"))
    if kind == "normalizer":  # the legacy Llama tokenizer.json
        tk.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    return Wrapped(tk, vocab, f"llama-like-{kind}")


def sample_text(seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    words = ["the", "a", "in", "cat", "sat", "Then", "said:", "\"no\".", "end", "42", "it's"]
    lines = []
    for _ in range(300):
        line = " ".join(rng.choice(words, size=int(rng.integers(1, 12))))
        lines.append(("  " if rng.random() < 0.1 else "") + line)
        if rng.random() < 0.1:
            lines.append("")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("make, mode", [
    (lambda: llama_like("normalizer"), "prefix"),
    (lambda: llama_like("metaspace"), "prefix"),
    (TinyTokenizer, "plain"),
])
def test_pieces_encode_like_the_whole_text(make, mode):
    tok = make()
    chunker = ChunkTokenizer(tok)
    assert chunker.mode == mode
    text = sample_text()
    pieces = list(readers.split_lines(text, target=64))
    assert len(pieces) > 20
    whole = tok.backend_tokenizer.encode(text, add_special_tokens=False).ids
    split = np.concatenate(chunker.encode_pieces(pieces, doc_start=True)).tolist()
    assert split == whole


def test_truncation_on_the_callers_tokenizer_is_left_alone():
    tok = TinyTokenizer()
    tok.backend_tokenizer.enable_truncation(max_length=4)
    chunker = ChunkTokenizer(tok)
    assert chunker.encode_pieces(["abcdefgh"], doc_start=True)[0].size == 8
    assert tok.backend_tokenizer.truncation is not None
