"""Identify a tokenizer by a fingerprint of its vocabulary, so a style is only used with its own."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A short, stable hash of the token -> id mapping (and special tokens) of a HF tokenizer."""
    vocab = tokenizer.get_vocab()
    payload = json.dumps(sorted(vocab.items(), key=lambda kv: kv[1]), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def tokenizer_name(tokenizer: Any) -> str:
    """A human-readable name for the tokenizer (its source path or hub id)."""
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    return str(name)
