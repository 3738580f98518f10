"""PhraseRulesProcessor: ban phrases and bias them in every tokenisation, checked on the text.

A phrase can reach the text through many token sequences: " shivers down" is ["Ġsh", "ivers",
"Ġdown"] after a space but ["sh", "ivers", "Ġdown"] after a line break, and sampling can spell it
in odd pieces or single bytes. So the check is on text: at each step, the tokens whose text would
complete a banned phrase, given the text written so far, are set to -inf. Which tokens those are
is looked up, not searched for: per tokenizer and list, `compile_rules` precomputes for every
phrase and every split point k the tokens whose text starts with the phrase's rest phrase[k:];
per step a row only checks which prefixes phrase[:k] its text ends with (a few string
comparisons) and gathers those token lists.

transformers' NoBadWordsLogitsProcessor and SequenceBiasLogitsProcessor match fixed token sequences,
so each would need every tokenisation of every phrase listed in advance (after a space, at a line
start, split into pieces or bytes, in every case): the text-level check covers them all at once.
"""

from __future__ import annotations

import bisect
import codecs
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import LogitsProcessor

from engine.phrase_rules import PhraseRuleError, PhraseRules, normalise

PROMPT_TAIL_TOKENS = 64  # prompt tokens read for the text a phrase may begin in
# A step is flagged when a banned or biased token's probability moved by at least this much.
FLAG_SHIFT = 0.01
_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_EMPTY = np.zeros(0, dtype=np.int64)
_CACHE_SIZE = 8


# -- the text of every token --------------------------------------------------------------------

def _byte_level_decoder() -> dict[int, int]:
    """GPT-2's byte-level BPE alphabet: printable stand-in character (its ordinal) -> byte, a str.translate table."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = list(bs)
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return dict(zip(cs, bs, strict=True))


def token_bytes(tokenizer: Any) -> list[bytes]:
    """The exact bytes each token id adds to the text (b"" for special tokens such as end-of-text)."""
    n = len(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    special = {int(i) for i in getattr(tokenizer, "all_special_ids", [])}
    special |= {int(i) for i, tok in added.items() if getattr(tok, "special", False)}
    decoder = repr(getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None))
    byte_level = _byte_level_decoder() if "ByteLevel" in decoder else None
    sentencepiece = "ByteFallback" in decoder or "\u2581" in decoder
    out: list[bytes] = []
    for i, piece in enumerate(pieces):
        if i in special or piece is None:
            out.append(b"")
        elif i in added:
            out.append(str(getattr(added[i], "content", piece)).encode("utf-8"))
        elif byte_level is not None and (raw := _from_byte_level(piece, byte_level)) is not None:
            out.append(raw)
        elif sentencepiece:
            m = _BYTE_TOKEN.match(piece)
            out.append(bytes([int(m.group(1), 16)]) if m else piece.replace("\u2581", " ").encode("utf-8"))
        else:
            out.append(tokenizer.decode([i], skip_special_tokens=False,
                                        clean_up_tokenization_spaces=False).encode("utf-8"))
    return out


def _from_byte_level(piece: str, table: dict[int, int]) -> bytes | None:
    try:
        return piece.translate(table).encode("latin-1")
    except UnicodeEncodeError:  # a character outside the byte alphabet: not a byte-level piece
        return None


class _Index:
    """Token ids by normalised text: exact look-ups and prefix ranges (a sorted list and bisect)."""

    def __init__(self, texts: Sequence[str]) -> None:
        order = sorted(range(len(texts)), key=texts.__getitem__)
        self.keys = [texts[i] for i in order]
        self.ids = np.asarray(order, dtype=np.int64)

    def starting(self, prefix: str) -> np.ndarray:
        lo = bisect.bisect_left(self.keys, prefix)
        hi = bisect.bisect_left(self.keys, prefix + "\U0010ffff", lo)
        return self.ids[lo:hi]

    def exact(self, text: str) -> np.ndarray:
        lo = bisect.bisect_left(self.keys, text)
        return self.ids[lo:bisect.bisect_right(self.keys, text, lo)] if text else _EMPTY


@dataclass
class TokenTexts:
    """Per tokenizer and case mode: every token's bytes and normalised text, indexed."""

    data: list[bytes]
    norm: list[str]  # normalised text of each token alone
    norm_ls: list[str]  # ... without one leading space: its text after a space (runs of spaces are one)
    index: _Index
    index_ls: _Index
    suffix_index: _Index  # over reversed normalised texts: tokens ending in a given string
    writable: np.ndarray  # [V] bool: the token adds text (not a special token)
    visible: np.ndarray  # [V] bool: ... text with a whole character other than whitespace
    continuation: list[int]  # tokens starting with a UTF-8 continuation byte (they finish a pending character)

    @classmethod
    def build(cls, tokenizer: Any, ignore_case: bool) -> TokenTexts:
        data = token_bytes(tokenizer)
        norm = [normalise(b.decode("utf-8", "replace"), ignore_case) for b in data]
        norm_ls = [t[1:] if t.startswith(" ") else t for t in norm]
        return cls(data, norm, norm_ls, _Index(norm), _Index(norm_ls), _Index([t[::-1] for t in norm]),
                   np.asarray([bool(b) for b in data]),
                   np.asarray([bool(t.strip()) and "\ufffd" not in t for t in norm]),
                   [i for i, b in enumerate(data) if b and 0x80 <= b[0] < 0xC0])


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _ids(parts: Sequence[np.ndarray] | Sequence[list[int]]) -> np.ndarray:
    arrays = [np.asarray(p, dtype=np.int64) for p in parts if len(p)]
    return np.unique(np.concatenate(arrays)) if arrays else _EMPTY


# -- compiled rules ------------------------------------------------------------------------------

@dataclass
class _Phrase:
    """One phrase's token tables. k is a split point: the text written so far ends with text[:k]."""

    text: str  # normalised
    value: float  # -inf for a ban, else the bias
    word_start: bool  # it begins with a letter or digit: a bias holds only where it starts a word
    complete: dict[int, np.ndarray]  # k -> tokens whose text starts with text[k:]
    by_last_char: dict[str, list[int]]  # c -> the split points k with text[k-1] == c
    contains: np.ndarray  # tokens holding the whole phrase
    advance: dict[int, np.ndarray] = field(default_factory=dict)  # bias: k -> tokens writing more of text[k:]
    start_bare: np.ndarray = field(default_factory=lambda: _EMPTY)  # bias: tokens that are text[:m], m >= 2
    start_inner: np.ndarray = field(default_factory=lambda: _EMPTY)  # bias: tokens ending in a word-start text[:m]

    @property
    def banned(self) -> bool:
        return self.value == -math.inf

    def split_points(self, tail: str) -> list[int]:
        """The k (1 <= k < len) with tail ending in text[:k]."""
        if not tail:
            return []
        return [k for k in self.by_last_char.get(tail[-1], ()) if tail.endswith(self.text[:k])]

    def completes(self, tail: str, piece: str) -> bool:
        """Whether appending (normalised) `piece` to `tail` writes the phrase's last character."""
        if tail.endswith(" ") and piece.startswith(" "):
            piece = piece[1:]
        joined = tail + piece
        return joined.find(self.text, max(0, len(tail) - len(self.text) + 1)) >= 0


def _first_tokens(tokenizer: Any, phrase: str, ignore_case: bool) -> set[int]:
    """The first token of the phrase as the tokenizer writes it: alone, after a space, and (ignoring case)
    in lower, title and upper case."""
    bare = phrase.lstrip()
    forms = {phrase, bare, " " + bare}
    if ignore_case:
        forms |= {f.lower() for f in forms} | {f.upper() for f in forms} | {f[:1] + f[1:2].upper() + f[2:]
                                                                            for f in forms}
    first: set[int] = set()
    for f in forms:
        ids = tokenizer(f, add_special_tokens=False)["input_ids"]
        if ids:
            first.add(int(ids[0]))
    return first


def _compile_phrase(texts: TokenTexts, phrase: str, value: float, ignore_case: bool,
                    first: set[int] | None = None) -> _Phrase:
    t = normalise(phrase, ignore_case)
    n = len(t)
    complete: dict[int, np.ndarray] = {}
    by_last: dict[str, list[int]] = {}
    for k in range(1, n):
        index = texts.index_ls if t[k - 1] == " " else texts.index
        complete[k] = index.starting(t[k:])
        by_last.setdefault(t[k - 1], []).append(k)
    contains = np.asarray([i for i, s in enumerate(texts.norm) if t in s], dtype=np.int64)
    ph = _Phrase(t, value, _is_word(t[0]), complete, by_last, contains)
    if value == -math.inf:
        return ph
    for k in range(1, n):
        index = texts.index_ls if t[k - 1] == " " else texts.index
        ph.advance[k] = _ids([index.exact(t[k:k + j]) for j in range(1, n - k)])
    bare: list[int] = []
    inner: list[int] = []
    # A token that begins the phrase writes at least half of it, or is how the tokenizer itself begins
    # it: a positive bias on every short start (" s" for " sudden") would fill the text with them.
    for m in range(2, n):
        for i in texts.suffix_index.starting(t[:m][::-1]).tolist():
            if 2 * m < n and i not in (first or ()):
                continue
            before = texts.norm[i][:-m]
            if not before:
                bare.append(i)
            elif not ph.word_start or not _is_word(before[-1]):
                inner.append(i)
    ph.start_bare, ph.start_inner = _ids([bare]), _ids([inner])
    # A token gets a phrase's bias once: what holds in any context is left out of the per-step tables.
    static = _ids([ph.contains, ph.start_inner])
    ph.start_bare = np.setdiff1d(ph.start_bare, static)
    ph.complete = {k: np.setdiff1d(v, static) for k, v in ph.complete.items()}
    ph.advance = {k: np.setdiff1d(v, static) for k, v in ph.advance.items()}
    return ph


@dataclass
class CompiledRules:
    """PhraseRules for one tokenizer: the token tables the processor reads at each step."""

    rules: PhraseRules
    texts: TokenTexts
    phrases: list[_Phrase]
    ban_always: np.ndarray  # tokens banned in any context (they hold a banned phrase)
    bias_always: tuple[np.ndarray, np.ndarray]  # (ids, summed bias) added in any context
    tail_chars: int  # normalised text kept per row: enough for the longest phrase and the character before it
    n_writable: int  # tokens that add text: a row can only lose them all with at least this many banned


_lock = threading.Lock()
_texts_cache: dict[tuple[int, bool], tuple[Any, TokenTexts]] = {}
_rules_cache: dict[tuple[int, PhraseRules], tuple[Any, CompiledRules]] = {}


def _cached(cache: dict[Any, tuple[Any, Any]], key: Any, tokenizer: Any) -> Any:
    hit = cache.get(key)
    return hit[1] if hit is not None and hit[0] is tokenizer else None


def _store(cache: dict[Any, tuple[Any, Any]], key: Any, tokenizer: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = (tokenizer, value)


def compile_rules(tokenizer: Any, rules: PhraseRules) -> CompiledRules:
    """`rules` for `tokenizer` (cached); PhraseRuleError when the bans leave the model no token to write."""
    with _lock:
        hit = _cached(_rules_cache, (id(tokenizer), rules), tokenizer)
        if hit is not None:
            return hit
        texts = _cached(_texts_cache, (id(tokenizer), rules.ignore_case), tokenizer)
        if texts is None:
            texts = TokenTexts.build(tokenizer, rules.ignore_case)
            _store(_texts_cache, (id(tokenizer), rules.ignore_case), tokenizer, texts)
    banned = set(rules.bans)
    phrases = [_compile_phrase(texts, p, -math.inf, rules.ignore_case) for p in rules.bans]
    phrases += [_compile_phrase(texts, p, v, rules.ignore_case, _first_tokens(tokenizer, p, rules.ignore_case))
                for p, v in rules.biases if v != 0 and p not in banned]
    ban_always = _ids([p.contains for p in phrases if p.banned])
    allowed = texts.visible.copy()
    allowed[ban_always] = False
    if texts.visible.any() and not allowed.any():
        raise PhraseRuleError("the banned phrases would ban every token that writes a visible character; ban "
                              "fewer or longer phrases")
    bias = np.zeros(len(texts.data), dtype=np.float32)
    for p in phrases:
        if not p.banned:
            bias[_ids([p.contains, p.start_inner])] += p.value
    bias_ids = np.flatnonzero(bias)
    compiled = CompiledRules(rules, texts, phrases, ban_always, (bias_ids, bias[bias_ids]),
                             max((len(p.text) for p in phrases), default=0) + 1, int(texts.writable.sum()))
    with _lock:
        _store(_rules_cache, (id(tokenizer), rules), tokenizer, compiled)
    return compiled


# -- the processor -------------------------------------------------------------------------------

class _Tail:
    """The end of one row's text, normalised, fed token by token (bytes, so split characters join up)."""

    __slots__ = ("decoder", "ignore_case", "limit", "text")

    def __init__(self, limit: int, ignore_case: bool) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.text = ""
        self.limit, self.ignore_case = limit, ignore_case

    def push(self, data: bytes) -> None:
        piece = self.decoder.decode(data)
        if not piece:
            return
        piece = normalise(piece, self.ignore_case)
        if self.text.endswith(" ") and piece.startswith(" "):
            piece = piece[1:]
        self.text = (self.text + piece)[-self.limit:]

    def pending(self) -> bytes:
        """Bytes of a character begun but not finished."""
        return bytes(self.decoder.getstate()[0])


@dataclass
class RulesState:
    """What the processor did at its latest call, for the per-token records."""

    adjusted: list[bool] | None = None  # per row: a banned or biased token's probability moved >= FLAG_SHIFT


class PhraseRulesProcessor(LogitsProcessor):
    """Set banned phrases' completing tokens to -inf and add phrase biases, per row of a batch.

    `__call__(input_ids [B, L], scores [B, V]) -> [B, V]` returns new scores. The processor follows
    each row's text from `input_ids` (the last PROMPT_TAIL_TOKENS of the prompt, then one token per
    call), so one instance serves one decode. A row whose every token would be banned is left as it
    was rather than sampled from nothing.
    """

    def __init__(self, compiled: CompiledRules, state: RulesState | None = None) -> None:
        if not isinstance(compiled, CompiledRules):
            raise TypeError(f"compiled must be CompiledRules (see compile_rules), got {type(compiled).__name__}")
        self.compiled, self.state = compiled, state
        self._tails: list[_Tail] = []
        self._seen = -1

    def _sync(self, input_ids: torch.Tensor) -> None:
        c = self.compiled
        B, L = input_ids.shape
        data = c.texts.data
        if len(self._tails) != B or L != self._seen + 1:
            self._tails = [_Tail(c.tail_chars, c.rules.ignore_case) for _ in range(B)]
            for tail, row in zip(self._tails, input_ids[:, -PROMPT_TAIL_TOKENS:].tolist(), strict=True):
                tail.push(b"".join(data[t] if 0 <= t < len(data) else b"" for t in row))
        else:
            for tail, t in zip(self._tails, input_ids[:, -1].tolist(), strict=True):
                tail.push(data[t] if 0 <= t < len(data) else b"")
        self._seen = L

    def _row(self, tail: _Tail) -> tuple[np.ndarray, list[tuple[np.ndarray, float]]]:
        """(banned ids, [(biased ids, bias)]) for one row, beyond what holds in any context."""
        c = self.compiled
        text = tail.text
        bans: list[np.ndarray] = []
        biases: list[tuple[np.ndarray, float]] = []
        for ph in c.phrases:
            parts: list[np.ndarray] = []
            for k in ph.split_points(text):
                if ph.banned:
                    parts.append(ph.complete[k])
                elif not (ph.word_start and len(text) > k and _is_word(text[-k - 1])):
                    parts += [ph.complete[k], ph.advance[k]]
            if not ph.banned and (not text or not ph.word_start or not _is_word(text[-1])):
                parts.append(ph.start_bare)
            if ph.banned:
                bans += parts
            elif parts:
                biases.append((_ids(parts), ph.value))
        pending = tail.pending()
        if pending:
            for ph in c.phrases:
                hit = [i for i in c.texts.continuation
                       if ph.completes(text, normalise((pending + c.texts.data[i]).decode("utf-8", "replace"),
                                                       c.rules.ignore_case))]
                if hit and ph.banned:
                    bans.append(np.asarray(hit, dtype=np.int64))
                elif hit:
                    biases.append((np.asarray(hit, dtype=np.int64), ph.value))
        return _ids(bans), biases

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        c = self.compiled
        self._sync(input_ids)
        width = scores.shape[-1]
        device = scores.device

        def fit(ids: np.ndarray) -> np.ndarray:
            return ids[ids < width]

        always_ban = fit(c.ban_always)
        bias_ids, bias_vals = c.bias_always
        keep = bias_ids < width
        bias_ids, bias_vals = bias_ids[keep], bias_vals[keep]
        out = scores.clone()
        # Only the touched columns are read or written: a V-sized pass per row costs more than the rules.
        lse = torch.logsumexp(scores.float(), dim=-1).tolist() if self.state is not None else None
        adjusted: list[bool] = []
        for b, tail in enumerate(self._tails):
            banned, biases = self._row(tail)
            banned = np.union1d(always_ban, fit(banned))
            delta = np.zeros(0, dtype=np.float32)
            touched = bias_ids
            if biases or bias_ids.size:
                acc: dict[int, float] = dict(zip(bias_ids.tolist(), bias_vals.tolist(), strict=True))
                for ids, value in biases:
                    for i in fit(ids).tolist():
                        acc[i] = acc.get(i, 0.0) + value
                touched = np.fromiter(acc.keys(), dtype=np.int64, count=len(acc))
                delta = np.fromiter(acc.values(), dtype=np.float32, count=len(acc))
            row = scores[b]
            cols = torch.from_numpy(np.union1d(touched, banned)).to(device)
            if touched.size:
                t_idx = torch.from_numpy(touched).to(device)
                out[b, t_idx] = row[t_idx] + torch.from_numpy(delta).to(device, row.dtype)
            if banned.size:
                out[b, torch.from_numpy(banned).to(device)] = -math.inf
                if banned.size >= c.n_writable and not bool(torch.isfinite(out[b]).any()):
                    out[b] = row  # every token banned here: better an unbanned step than a sample from nothing
            if lse is not None:
                # float64: a bias of +100 overflows exp() in float32
                p_before = torch.exp(row[cols].double() - lse[b])
                p_after = torch.exp(out[b, cols].double() - lse[b])
                p_after = p_after / (1.0 - p_before.sum() + p_after.sum()).clamp_min(1e-30)
                adjusted.append(bool(cols.numel()) and float((p_after - p_before).abs().max()) >= FLAG_SHIFT)
        if self.state is not None:
            self.state.adjusted = adjusted
        return out  # type: ignore[return-value]
