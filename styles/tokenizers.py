"""Identify a tokenizer by a fingerprint of its vocabulary, so a style is only used with its own."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Tokens hashed per step: each json.dumps call stays ~1 ms, so a worker thread computing a
# fingerprint never holds the GIL long enough to stall the GUI thread.
_FINGERPRINT_STEP = 4096


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A short, stable hash of the token -> id mapping (and special tokens) of a HF tokenizer."""
    return vocab_fingerprint(tokenizer.get_vocab())


def vocab_fingerprint(vocab: Mapping[str, int]) -> str:
    """The fingerprint of a token -> id mapping (what tokenizer_fingerprint hashes).

    The value is the first 16 hex digits of sha256(json.dumps(sorted(vocab.items(), key=id),
    ensure_ascii=False)), as stored with every style; it is computed in steps (a stable
    bucket sort, then the JSON text a slice at a time) instead of one long C call per stage.
    """
    by_id: dict[int, list[str]] = {}
    for token, token_id in vocab.items():
        by_id.setdefault(token_id, []).append(token)  # insertion order within an id, as sorted() keeps it
    pairs = [(token, token_id) for token_id in sorted(by_id) for token in by_id[token_id]]
    digest = hashlib.sha256(b"[")
    for start in range(0, len(pairs), _FINGERPRINT_STEP):
        text = json.dumps(pairs[start:start + _FINGERPRINT_STEP], ensure_ascii=False)[1:-1]
        digest.update(((", " if start else "") + text).encode("utf-8"))
    digest.update(b"]")
    return digest.hexdigest()[:16]


def tokenizer_name(tokenizer: Any) -> str:
    """A human-readable name for the tokenizer (its source path or hub id)."""
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    return str(name)
