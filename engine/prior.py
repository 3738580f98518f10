"""The interface a style prior offers the steering processor and the metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Prior(Protocol):
    """A style prior over one tokenizer's vocabulary.

    `styles.prior.StylePrior` is the implementation; tests may pass any object with
    these members. Every returned tensor is float32, finite, on `device`.
    """

    vocab_size: int
    tokenizer_fingerprint: str
    device: torch.device

    def paper_delta(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, T] ids -> [B, V]: sum over orders n whose context was seen of
        w_n * log P_n(i | ctx_n) for the tokens i in that context's top-K table, 0 elsewhere."""
        ...

    def log_mix(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, T] ids -> [B, V]: log P_mix(i | ctx) for every token (the fallback when no order's context was seen)."""
        ...

    def log_prob(self, context: Sequence[int], token: int) -> float:
        """log P_mix(token | context), natural log."""
        ...

    def top_unigram_ids(self, k: int = 5000) -> set[int]:
        """The k most frequent unigrams of the style corpus."""
        ...

    def has_bigram(self, a: int, b: int) -> bool:
        """Whether the bigram (a, b) occurs at least once in the style corpus."""
        ...
