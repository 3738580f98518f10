"""How many tokens a whole document is, recounted after each edit by tokenizing only the pieces that changed.

A document is cut into chunks where a tokenizer never joins text across the cut: before a newline that follows a
non-space character (and, in a line longer than LONG_LINE characters, before a space that follows one). For a
byte-level BPE tokenizer with GPT-2's pre-tokenizer (the demo model's) every such cut is a pre-token boundary, so the
sum of the chunks' counts is the document's count exactly. Each chunk's count is cached by its text: after typing in
a 10 MB document one chunk is tokenized again, not 2.5 million tokens. A tokenizer for which a probe shows that the
cuts change the count (a SentencePiece-style one may add a space marker at each chunk's start, a Llama-3-style
pre-tokenizer keeps punctuation and the newlines after it together) has its sum reported as approximate.

Counts leave out special tokens (BOS): they are the document's own tokens. Only one thread may use a counter at a
time. Tokenizing goes in batches (the tokenizers library releases the GIL while it encodes a batch), and a cancel
flag is looked at between them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

LONG_LINE = 32_768  # characters: a line longer than this is cut at spaces too
_BATCH_CHARS = 65_536  # text per tokenizer call, so that a cancel is seen within a few milliseconds
_PROBE = ("It was late.\nShe said: “No, not today.”\n\n\nThe end   \n  indented line here.\tTabs and  two  spaces "
          "123 4567.\r\nLast line—with a dash, the café's ünïcode and an emoji 🙂 at the end!\n- a list\n1. item")


@dataclass(frozen=True)
class TokenCount:
    """A document's token count; `exact` is False where the chunked sum may differ from one tokenization."""

    tokens: int
    exact: bool


def chunks(text: str, long_line: int = LONG_LINE) -> Iterator[str]:
    """Pieces of `text`, in order, whose concatenation is `text`, cut before a newline or space after a non-space."""
    lines = text.split("\n")
    group: list[str] = []
    for i, line in enumerate(lines):
        if i and lines[i - 1] and not lines[i - 1][-1].isspace():
            yield "\n".join(group)
            group = [""]  # the chunk starts with the newline
        if len(line) <= long_line:
            group.append(line)
            continue
        pieces = list(_cut_long(line, long_line))
        group.append(pieces[0])
        for piece in pieces[1:]:
            yield "\n".join(group)
            group = [piece]
    yield "\n".join(group)


def _cut_long(line: str, long_line: int) -> Iterator[str]:
    """A long line cut before a space that follows a non-space character, about every `long_line` characters."""
    start = 0
    while len(line) - start > long_line:
        cut = line.find(" ", start + long_line)
        while cut != -1 and line[cut - 1].isspace():
            cut = line.find(" ", cut + 1)
        if cut == -1:
            break
        yield line[start:cut]
        start = cut
    yield line[start:]


def _encode_lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    """Tokens in each text, special tokens left out (one batched call: HF fast tokenizers encode it without the GIL)."""
    try:
        ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    except TypeError:  # a tokenizer without `verbose` (it only silences the "longer than the model" warning)
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(x) for x in ids]


class DocumentTokenCounter:
    """Counts a whole document's tokens with one tokenizer, remembering each chunk's count between calls."""

    def __init__(self, tokenizer: Any, long_line: int = LONG_LINE) -> None:
        self.tokenizer = tokenizer
        self.long_line = long_line
        self._cache: dict[str, int] = {}
        self.exact = self._cuts_keep_counts()

    def _cuts_keep_counts(self) -> bool:
        """Whether cutting a probe text into chunks (lines cut short too) leaves its count unchanged."""
        pieces = list(chunks(_PROBE, long_line=8))
        whole = _encode_lengths(self.tokenizer, [_PROBE])[0]
        return sum(_encode_lengths(self.tokenizer, pieces)) == whole

    def count(self, text: str, cancel: threading.Event | None = None) -> TokenCount | None:
        """The document's tokens; None when `cancel` was set (what was counted so far stays cached)."""
        seen: dict[str, int] = {}
        missing: list[str] = []
        pending = 0
        order: list[str] = []
        for piece in chunks(text, self.long_line):
            order.append(piece)
            if piece in seen or piece in self._cache:
                seen.setdefault(piece, self._cache.get(piece, 0))
                continue
            seen[piece] = -1
            missing.append(piece)
            pending += len(piece)
            if pending >= _BATCH_CHARS:
                if not self._count_missing(missing, seen, cancel):
                    return None
                missing, pending = [], 0
        if missing and not self._count_missing(missing, seen, cancel):
            return None
        self._cache = seen  # only the chunks of the latest document: memory stays bounded by its size
        return TokenCount(sum(seen[p] for p in order), self.exact)

    def _count_missing(self, missing: list[str], seen: dict[str, int], cancel: threading.Event | None) -> bool:
        if cancel is not None and cancel.is_set():
            self._cache.update((p, n) for p, n in seen.items() if n >= 0)
            return False
        for piece, n in zip(missing, _encode_lengths(self.tokenizer, missing), strict=True):
            seen[piece] = n
        return True
