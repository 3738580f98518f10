"""StylePrior: smoothed 1-3-gram conditionals of a style, held in memory as tensors for steering."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from styles.errors import TokenizerMismatch
from styles.ngrams import ORDERS, Counts, context_keys

# The paper's unigram overlap compares a text with the style's this many most frequent unigrams.
TOP_UNIGRAMS = 5000


@dataclass(frozen=True)
class PriorSettings:
    """The paper's hyper-parameters (METHOD.md), all settable.

    fallback: probability given to every token when no order's context was seen (only possible
    for an empty style). None means uniform 1/V, which leaves the model's distribution unchanged
    in dense mode: the "small uniform distribution" the paper leaves unspecified.
    """

    k: float = 1e-3
    top_k: int = 512
    weights: tuple[float, float, float] = (0.1, 0.3, 0.6)
    fallback: float | None = None

    def __post_init__(self) -> None:
        if not self.k > 0:
            raise ValueError(f"k must be > 0, got {self.k}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if len(self.weights) != 3 or any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ValueError(f"weights must be three non-negative numbers with a positive sum, got {self.weights}")
        if self.fallback is not None and not 0 < self.fallback <= 1:
            raise ValueError(f"fallback must be in (0, 1], got {self.fallback}")


class _OrderTable:
    """One order's top-K tables: sorted context keys with offsets into token / probability arrays."""

    def __init__(self, ctx: np.ndarray, tok: np.ndarray, cnt: np.ndarray, *, n: int, vocab_size: int,
                 settings: PriorSettings) -> None:
        self.n = n
        V, k = vocab_size, settings.k
        keys = context_keys(ctx.reshape(len(tok), n - 1), V) if len(tok) else np.zeros(0, np.int64)
        tok = tok.astype(np.int64)
        cnt = cnt.astype(np.int64)
        # Merge duplicate (context, token) rows, if any, then sort by context, count desc, token.
        if len(tok):
            pair = keys * V + tok
            pair, inv = np.unique(pair, return_inverse=True)
            cnt = np.bincount(inv, weights=cnt).astype(np.int64)
            keys, tok = pair // V, pair % V
        order = np.lexsort((tok, -cnt, keys))
        keys, tok, cnt = keys[order], tok[order], cnt[order]
        uniq, starts, sizes = np.unique(keys, return_index=True, return_counts=True)
        totals = np.add.reduceat(cnt, starts) if len(cnt) else np.zeros(0, np.int64)
        # Truncate every context to its top-K tokens; N(ctx) stays the full count.
        rank = np.arange(len(keys)) - np.repeat(starts, sizes)
        keep = rank < settings.top_k
        kept_sizes = np.minimum(sizes, settings.top_k)
        denom = np.repeat(totals + k * V, kept_sizes).astype(np.float64)
        p = (cnt[keep] + k) / denom
        self.keys = uniq
        self.offsets = np.concatenate([[0], np.cumsum(kept_sizes)]).astype(np.int64)
        self.floor = (k / (totals + k * V)).astype(np.float32)  # P_n of a token outside the table
        # Per-step work runs in NumPy: on a busy 2-core machine, torch's thread pool turns these
        # small vector operations from ~0.1 ms into tens of ms.
        self.tokens = tok[keep].copy()
        self.p = p.astype(np.float32)
        self.logp = np.log(self.p)

    def lookup(self, key: int) -> int:
        """Row index of a context key, or -1 when the context was never seen."""
        i = int(np.searchsorted(self.keys, key))
        return i if i < len(self.keys) and self.keys[i] == key else -1

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.tokens[a:b], self.logp[a:b], self.p[a:b]


class StylePrior:
    """A style's n-gram prior for one tokenizer, served from memory (no SQL per token)."""

    def __init__(self, tables: dict[int, _OrderTable], unigram_counts: np.ndarray, bigram_keys: np.ndarray, *,
                 vocab_size: int, tokenizer_fingerprint: str, settings: PriorSettings, device: torch.device,
                 name: str = "") -> None:
        self.name = name  # the style's, where known (it names the style in messages)
        self.tables = tables
        self.unigram_counts = unigram_counts
        self._bigram_keys = bigram_keys  # all seen bigrams (untruncated), packed a*V+b, sorted
        self.vocab_size = vocab_size
        self.tokenizer_fingerprint = tokenizer_fingerprint
        self.settings = settings
        self.device = device
        self.n_tokens = int(unigram_counts.sum())
        fallback = settings.fallback if settings.fallback is not None else 1.0 / vocab_size
        self._log_fallback = math.log(fallback)
        self._weights = dict(zip(ORDERS, settings.weights, strict=True))

    @classmethod
    def from_counts(cls, counts: Counts, *, vocab_size: int, tokenizer_fingerprint: str,
                    settings: PriorSettings | None = None, device: str | torch.device = "cpu",
                    name: str = "") -> StylePrior:
        """Build from raw n-gram counts (the store's `load_counts` format)."""
        settings = settings or PriorSettings()
        device = torch.device(device)
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        tables = {}
        empty = (np.zeros((0, 0), np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        for n in ORDERS:
            ctx, tok, cnt = counts.get(n, empty)
            tok = np.asarray(tok, dtype=np.int64)
            if len(tok) and (tok.min() < 0 or tok.max() >= vocab_size):
                raise TokenizerMismatch(f"order-{n} counts hold token ids outside [0, {vocab_size}): the style "
                                        f"'{name or 'NAME'}' was built with another tokenizer; run "
                                        f"`stylesteer styles rebuild {name or 'NAME'} --model MODEL`")
            ctx = np.asarray(ctx, dtype=np.int64).reshape(len(tok), n - 1)
            tables[n] = _OrderTable(ctx, tok, np.asarray(cnt), n=n, vocab_size=vocab_size, settings=settings)
        _ctx1, tok1, cnt1 = counts.get(1, empty)
        unigram = np.bincount(np.asarray(tok1, np.int64), weights=np.asarray(cnt1, np.float64),
                              minlength=vocab_size).astype(np.int64)
        ctx2, tok2, _ = counts.get(2, empty)
        bigram_keys = np.unique(np.asarray(ctx2, np.int64).reshape(-1) * vocab_size + np.asarray(tok2, np.int64)) \
            if len(tok2) else np.zeros(0, np.int64)
        return cls(tables, unigram, bigram_keys, vocab_size=vocab_size, tokenizer_fingerprint=tokenizer_fingerprint,
                   settings=settings, device=device, name=name)

    # -- context lookup ------------------------------------------------------------------------
    def _seen_rows(self, context: Sequence[int]) -> list[tuple[int, int]]:
        """(order, row index) for every order whose context (the last n-1 ids) was seen."""
        seen = []
        V = self.vocab_size
        for n in ORDERS:
            if self._weights[n] == 0 or len(context) < n - 1:
                continue
            key = 0
            for t in context[len(context) - (n - 1):] if n > 1 else ():
                if not 0 <= t < V:
                    key = -1
                    break
                key = key * V + int(t)
            if key < 0:
                continue
            i = self.tables[n].lookup(key)
            if i >= 0:
                seen.append((n, i))
        return seen

    @staticmethod
    def _tail(input_ids: torch.Tensor | Sequence[Sequence[int]]) -> list[list[int]]:
        if not isinstance(input_ids, torch.Tensor):
            return [list(r)[-2:] for r in input_ids]
        return input_ids[:, -2:].tolist() if input_ids.shape[-1] else [[] for _ in range(input_ids.shape[0])]

    # -- what steering needs -----------------------------------------------------------------
    def _to_device(self, out: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(out).to(self.device)

    def paper_delta(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, V]: sum_n w_n log P_n(i | ctx_n) over each seen order's table entries; 0 elsewhere."""
        return self._to_device(self.paper_delta_array(input_ids))

    def paper_delta_array(self, input_ids: torch.Tensor) -> np.ndarray:
        """paper_delta as a float32 NumPy array (what a blend combines, without torch per step)."""
        out = np.zeros((input_ids.shape[0], self.vocab_size), dtype=np.float32)
        for b, ctx in enumerate(self._tail(input_ids)):
            for n, i in self._seen_rows(ctx):
                toks, logp, _ = self.tables[n].row(i)
                out[b, toks] += logp * np.float32(self._weights[n])  # ids are unique within a table
        return out

    def _mix_row(self, ctx: Sequence[int], out: np.ndarray) -> None:
        seen = self._seen_rows(ctx)
        if not seen:
            out.fill(self._log_fallback)
            return
        wsum = sum(self._weights[n] for n, _ in seen)
        weights = [(self._weights[n] / wsum, self.tables[n], i) for n, i in seen]
        base = sum(w * float(table.floor[i]) for w, table, i in weights)
        out.fill(base)
        for w, table, i in weights:
            toks, _, p = table.row(i)
            out[toks] += (p - table.floor[i]) * np.float32(w)
        np.log(out, out=out)

    def log_mix(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, V]: log P_mix(i | ctx) for every token; finite everywhere."""
        return self._to_device(self.log_mix_array(input_ids))

    def log_mix_array(self, input_ids: torch.Tensor) -> np.ndarray:
        """log_mix as a float32 NumPy array (what a blend combines, without torch per step)."""
        out = np.empty((input_ids.shape[0], self.vocab_size), dtype=np.float32)
        for b, ctx in enumerate(self._tail(input_ids)):
            self._mix_row(ctx, out[b])
        return out

    def log_prob(self, context: Sequence[int], token: int) -> float:
        """log P_mix(token | context) (natural log)."""
        seen = self._seen_rows(list(context)[-2:])
        if not seen:
            return self._log_fallback
        wsum = sum(self._weights[n] for n, _ in seen)
        total = 0.0
        for n, i in seen:
            toks, _, probs = self.tables[n].row(i)
            hit = np.flatnonzero(toks == token)
            p = float(probs[hit[0]]) if len(hit) else float(self.tables[n].floor[i])
            total += self._weights[n] / wsum * p
        return math.log(total)

    def top_unigram_ids(self, k: int = TOP_UNIGRAMS) -> set[int]:
        """The k most frequent unigrams (ties by id), from the untruncated counts."""
        nz = np.flatnonzero(self.unigram_counts)
        order = nz[np.lexsort((nz, -self.unigram_counts[nz]))]
        return set(order[:k].tolist())

    def has_bigram(self, a: int, b: int) -> bool:
        key = int(a) * self.vocab_size + int(b)
        i = int(np.searchsorted(self._bigram_keys, key))
        return i < len(self._bigram_keys) and int(self._bigram_keys[i]) == key

    def to(self, device: str | torch.device) -> StylePrior:
        """Serve the prior's tensors on another device (returns self)."""
        self.device = torch.device(device)
        return self

    def __repr__(self) -> str:
        sizes = {n: len(t.keys) for n, t in self.tables.items()}
        return f"StylePrior(V={self.vocab_size}, tokens={self.n_tokens}, contexts={sizes})"
