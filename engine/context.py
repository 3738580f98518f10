"""Assemble the prompt the model sees from a document: Memory, the text before the cursor, Author's note, by tokens.

The model gets `min(window, user_limit) - max_new_tokens` tokens of prompt. Memory always comes first; then as much
of the text before the cursor as fits, starting at a paragraph (else a sentence, else a word) so the model never sees
half a word; the Author's note sits `note_depth` paragraphs before the cursor. Nothing after the cursor is included.

Only text near the cursor is tokenized, never the whole document: slices growing backwards from the cursor, with
token offsets, estimate where the text that fits begins; from there a gallop and a bisection over word starts find
the earliest start that fits. Every one of those counts is of the whole assembled prompt with the model's special
tokens, exactly as the decoder encodes it, so a tokenizer that merges across a seam (Memory | text, text | note) is
counted right. A 10 MB document with the cursor at its end takes about nine tokenizer calls over 2.5% of its text.

Offsets are Python str indices (code points); a Qt editor's positions count UTF-16 units and must be converted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

CutKind = Literal["paragraph", "sentence", "word", "character"]

DEFAULT_NOTE_DEPTH = 3
# A paragraph (or sentence) start is preferred over the earliest word start that fits unless it would throw away more
# than this share of the text that fits: one huge paragraph must not leave the model with a few lines.
BOUNDARY_SLACK = 0.25
# First guess of characters per token when sizing the first slice; later slices use the measured ratio.
_CHARS_PER_TOKEN_GUESS = 4
_MIN_SLICE = 256

# The first character of a paragraph: after a blank line (CRLF or LF, blank lines may hold spaces).
_PARAGRAPH_START = re.compile(r"\n[ \t\r]*\n\s*(?=\S)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r]*\n\s*")
# The first character of a sentence: after . ! ? … (and closing quotes or brackets) and white space, or after a
# CJK full stop, which needs no space.
_SENTENCE_START = re.compile(r"(?:[.!?…][\"'”’»)\]]*\s+|[。！？][」』”’）]*\s*)(?=\S)")
# Positions the text may start at without cutting a word: after white space, or after a CJK full stop.
_WORD_START = re.compile(r"(?:(?<=\s)|(?<=[。！？]))(?=\S)")
_NON_SPACE = re.compile(r"\S")


class ContextError(ValueError):
    """The prompt cannot be assembled (Memory too long, no room left); the message is meant for the user."""

    def __init__(self, message: str, over_by: int | None = None) -> None:
        super().__init__(message)
        self.over_by = over_by  # tokens over the budget, where that is what went wrong


@dataclass(frozen=True)
class AssembledContext:
    """The prompt for one generation and where its parts came from."""

    prompt: str  # exactly the text the model is given (its special tokens are added by the tokenizer)
    token_count: int  # tokens of `prompt`, special tokens included: always <= budget
    budget: int  # min(window, user_limit) - max_new_tokens
    context_start_char: int  # document offset of the first included character (== cursor when none fit)
    cursor: int  # document offset the text ends at
    cut: bool  # True when text before context_start_char was left out
    cut_at: CutKind | None  # the kind of boundary the text starts at when cut
    memory_span: tuple[int, int] | None  # [start, end) of Memory in `prompt`
    note_span: tuple[int, int] | None  # [start, end) of the Author's note in `prompt`
    notice: str | None  # one line for the user when the document was cut

    @property
    def chars_not_seen(self) -> int:
        return self.context_start_char


@dataclass(frozen=True)
class _Layout:
    """What stays fixed while the start of the included text moves: the parts and where the note goes."""

    document: str
    cursor: int
    memory: str
    note: str
    note_anchor: int  # document offset the note is inserted before (moved to the start when that is later)
    sep: str  # a paragraph break in the document's own line endings

    def build(self, start: int) -> tuple[str, tuple[int, int] | None, tuple[int, int] | None]:
        """(prompt, memory span, note span) with the document text from `start` to the cursor."""
        prompt, memory_span, note_span = "", None, None
        if self.memory:
            memory_span = (0, len(self.memory))
            prompt = self.memory + self.sep
        if not self.note:
            return prompt + self.document[start:self.cursor], memory_span, None
        anchor = max(start, self.note_anchor)
        before = self.document[start:anchor]
        prompt += before + _break_after(before, self.sep)
        note_span = (len(prompt), len(prompt) + len(self.note))
        prompt += self.note + self.sep + self.document[anchor:self.cursor]
        return prompt, memory_span, note_span


def assemble_context(document: str, cursor: int, tokenizer: Any, *, context_window: int, max_new_tokens: int,
                     user_limit: int | None = None, memory: str = "", authors_note: str = "",
                     note_depth: int = DEFAULT_NOTE_DEPTH) -> AssembledContext:
    """The prompt for continuing `document` at `cursor` (a str index), within the model's token budget.

    `tokenizer` is HF-style: `tokenizer(text, add_special_tokens=True)["input_ids"]`. `note_depth` counts the
    paragraphs after the Author's note, the cursor's own (even a part or an empty one) included: 0 puts it right
    at the cursor. Raises ContextError when Memory and the note leave no room, and ValueError for bad arguments.
    """
    budget = _check_arguments(document, cursor, context_window, max_new_tokens, user_limit, note_depth)
    memory, note = memory.strip(), authors_note.strip()
    layout = _Layout(document, cursor, memory, note, _note_anchor(document, cursor, note_depth),
                     _paragraph_break(document, cursor))
    counts: dict[int, int] = {}

    def fits(start: int) -> bool:
        if start not in counts:
            counts[start] = count_tokens(tokenizer, layout.build(start)[0])
        return counts[start] <= budget

    if not fits(cursor):
        raise _too_long(tokenizer, memory, counts[cursor], budget)
    estimate = _estimate_start(document, cursor, budget - counts[cursor], tokenizer)
    start = _first_fit(estimate, fits, lambda p: _word_start_at_or_after(document, p, cursor))
    kind: CutKind = "word"
    if start == cursor and _NON_SPACE.search(document, 0, cursor):
        # No word start fits (one unbroken run of text): only here is a cut inside a word accepted.
        start, kind = _first_fit(estimate, fits, lambda p: max(0, min(p, cursor))), "character"
    cut_at: CutKind | None = None
    if start > 0:
        start, cut_at = _prefer_boundary(document, start, cursor, fits, kind)
    prompt, memory_span, note_span = layout.build(start)
    return AssembledContext(prompt=prompt, token_count=counts[start], budget=budget, context_start_char=start,
                            cursor=cursor, cut=start > 0, cut_at=cut_at, memory_span=memory_span,
                            note_span=note_span, notice=_notice(document, start, cursor, cut_at))


def assemble_for_model(lm: Any, document: str, cursor: int, max_new_tokens: int, *, memory: str = "",
                       authors_note: str = "", note_depth: int = DEFAULT_NOTE_DEPTH,
                       context_limit: int | None = None) -> AssembledContext:
    """assemble_context with a loaded model's tokenizer and window: what the editor and `generate --document` use.

    `context_limit` (tokens, None or 0 for the model's whole window) lowers the window the context must fit.
    """
    return assemble_context(document, cursor, lm.tokenizer, context_window=lm.context_length,
                            max_new_tokens=max_new_tokens, user_limit=context_limit or None, memory=memory,
                            authors_note=authors_note, note_depth=note_depth)


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens the model is given for `text`, its special tokens (BOS) included, as the decoder encodes a prompt."""
    try:
        ids = tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"]
    except TypeError:  # a tokenizer without `verbose` (it only silences the "longer than the model" warning)
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    return len(ids)


def token_budget(context_window: int, max_new_tokens: int, user_limit: int | None = None) -> int:
    """Prompt tokens allowed: the smaller of the model's window and the user's limit, less the tokens to generate."""
    window = context_window if user_limit is None else min(context_window, user_limit)
    return window - max_new_tokens


def _check_arguments(document: str, cursor: int, context_window: int, max_new_tokens: int,
                     user_limit: int | None, note_depth: int) -> int:
    if not 0 <= cursor <= len(document):
        raise ValueError(f"cursor must be in [0, {len(document)}] (the document's length), got {cursor}")
    if context_window < 1:
        raise ValueError(f"context_window must be >= 1, got {context_window}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if user_limit is not None and user_limit < 1:
        raise ValueError(f"user_limit must be >= 1 or None, got {user_limit}")
    if note_depth < 0:
        raise ValueError(f"note_depth must be >= 0, got {note_depth}")
    budget = token_budget(context_window, max_new_tokens, user_limit)
    if budget < 1:
        window = context_window if user_limit is None else min(context_window, user_limit)
        raise ContextError(f"generating {max_new_tokens} tokens leaves no room for a prompt in a {window}-token "
                           f"context: lower the number of new tokens")
    return budget


def _too_long(tokenizer: Any, memory: str, fixed: int, budget: int) -> ContextError:
    alone = count_tokens(tokenizer, memory) if memory else 0
    if alone > budget:
        return ContextError(f"Memory is too long: {alone:,} tokens, {alone - budget:,} over the {budget:,}-token "
                            f"budget for the prompt; shorten it", over_by=alone - budget)
    return ContextError(f"Memory and the Author's note together are {fixed:,} tokens, {fixed - budget:,} over the "
                        f"{budget:,}-token budget for the prompt; shorten one of them", over_by=fixed - budget)


def _paragraph_break(document: str, cursor: int) -> str:
    """A blank line in the document's own line endings (CRLF where the text near the cursor uses it)."""
    return "\r\n\r\n" if document.find("\r\n", max(0, cursor - 65536), cursor) != -1 else "\n\n"


def _break_after(before: str, sep: str) -> str:
    """What must follow `before` so that the next text starts a paragraph (nothing when it already does)."""
    if not before:
        return ""
    newlines = before[len(before.rstrip()):].count("\n")
    return "" if newlines >= 2 else sep[: len(sep) // 2] * (2 - newlines)


def _note_anchor(document: str, cursor: int, depth: int) -> int:
    """Document offset of the paragraph start `depth` paragraphs back from the cursor (0 when there are fewer)."""
    if depth == 0:
        return cursor
    own_is_empty = _ends_with_break(document[max(0, cursor - 64):cursor])
    wanted = depth - 1 if own_is_empty else depth
    if wanted == 0:
        return cursor
    size = 4096
    while True:
        lo = max(0, cursor - size)
        # A break cut by the window's edge can only be missed, never invented, and it would be the earliest.
        starts = [m.end() for m in _PARAGRAPH_START.finditer(document, lo, cursor)]
        if len(starts) >= wanted:
            return starts[-wanted]
        if lo == 0:
            return 0
        size *= 4


def _ends_with_break(text: str) -> bool:
    stripped = text.rstrip()
    return stripped != text and text[len(stripped):].count("\n") >= 2


def _estimate_start(document: str, cursor: int, room: int, tokenizer: Any) -> int:
    """Where the last `room` tokens of the text before the cursor begin, from slices growing backwards."""
    if room <= 0:
        return cursor
    empty = count_tokens(tokenizer, "")
    size = min(cursor, max(_MIN_SLICE, room * _CHARS_PER_TOKEN_GUESS))
    while size > 0:
        lo = cursor - size
        offsets = _offsets(tokenizer, document[lo:cursor])
        n = len(offsets) if offsets is not None else count_tokens(tokenizer, document[lo:cursor]) - empty
        if n > room:
            return lo + offsets[-room][0] if offsets is not None else cursor - size * room // n
        if lo == 0:
            return 0
        size = min(cursor, max(int(size * 1.25), int(room * size / max(1, n) * 1.1) + 16))
    return 0


def _offsets(tokenizer: Any, text: str) -> list[tuple[int, int]] | None:
    """Character offsets of the tokens of `text` (no special tokens), or None for a tokenizer without them."""
    try:
        found = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [(int(a), int(b)) for a, b in found["offset_mapping"]]
    except (NotImplementedError, TypeError, KeyError, ValueError):
        return None


def _word_start_at_or_after(document: str, pos: int, cursor: int) -> int:
    """The first start at or after `pos` that cuts no word: the document's start, a word start, or the cursor."""
    if pos <= 0:
        return 0
    found = _WORD_START.search(document, min(pos, cursor), cursor)
    return found.start() if found else cursor


def _first_fit(estimate: int, fits: Callable[[int], bool], at: Callable[[int], int]) -> int:
    """The earliest start `at(p)` whose prompt fits, searched outward from `estimate`, then by bisection.

    `at` maps a character position to the start used there (the next word start, say); it must be
    non-decreasing, with at(0) the document's start and at(cursor) the cursor, where the prompt always fits.
    """
    step, good = 16, estimate
    if fits(at(estimate)):
        while True:  # gallop back until a start does not fit
            bad = max(0, good - step)
            if not fits(at(bad)):
                break
            if bad == 0:
                return at(0)
            good, step = bad, step * 2
    else:
        bad = estimate
        while True:  # gallop forward until one does
            good = bad + step
            if fits(at(good)):
                break
            bad, step = good, step * 2
    while good - bad > 1 and at(bad + 1) != at(good):
        mid = (bad + good) // 2
        if fits(at(mid)):
            good = mid
        else:
            bad = mid
    return at(good)


def _prefer_boundary(document: str, start: int, cursor: int, fits: Callable[[int], bool],
                     kind: CutKind) -> tuple[int, CutKind]:
    """Move a start that fits forward to a paragraph, else a sentence start, when that loses little text."""
    slack = int((cursor - start) * BOUNDARY_SLACK)
    kinds: tuple[tuple[CutKind, re.Pattern[str]], ...] = (("paragraph", _PARAGRAPH_START),
                                                           ("sentence", _SENTENCE_START))
    for better, pattern in kinds:
        if _is_boundary(document, start, pattern):
            return start, better
        found = pattern.search(document, start, min(cursor, start + slack + 64))
        if found and found.end() - start <= slack and found.end() < cursor and fits(found.end()):
            return found.end(), better
    return start, kind


def _is_boundary(document: str, start: int, pattern: re.Pattern[str]) -> bool:
    lo = max(0, start - 64)
    return any(m.end() == start for m in pattern.finditer(document, lo, start + 1))


def _notice(document: str, start: int, cursor: int, cut_at: CutKind | None) -> str | None:
    if start == 0:
        return None
    if start == cursor:
        return f"no document text fits beside Memory and the Author's note: {start:,} characters not seen"
    first = _NON_SPACE.search(document)
    lead = first.start() if first else 0
    paragraph = 1 + sum(1 for _ in _PARAGRAPH_BREAK.finditer(document, lead, start))
    where = {"paragraph": f"at paragraph {paragraph:,}",
             "sentence": f"inside paragraph {paragraph:,}, at a sentence",
             "word": f"inside paragraph {paragraph:,}, at a word",
             "character": f"inside paragraph {paragraph:,}, inside a word (the text has no space to start at)"}
    return f"context starts {where[cut_at or 'word']}: {start:,} earlier characters not seen"
