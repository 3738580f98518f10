"""BlendPrior: the weighted mixture of several styles' priors, used like one style's prior."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from styles.blend import BlendError
from styles.errors import TokenizerMismatch
from styles.prior import TOP_UNIGRAMS, StylePrior


class BlendPrior:
    """The weighted mixture of several styles' priors (engine.prior.Prior).

    dense/budget: P_mix = sum_s w_s P_mix,s, i.e. log_mix = logsumexp_s(log w_s + log P_mix,s).
    paper: the weighted sum of the styles' sparse terms, sum_s w_s * paper_delta_s, so each style's
    seen tokens are moved by its own tables, in proportion to its weight (unseen by all: unchanged).
    Metrics see the blend as one style: log_prob is the mixture's, the top unigrams are those of the
    weighted mixture of the styles' unigram distributions, a bigram is seen if any style saw it.
    A single part (weights 1/0) returns that style's tensors unchanged, so it steers exactly like it.
    """

    def __init__(self, parts: Sequence[tuple[StylePrior, float]], *, name: str = "") -> None:
        if not parts:
            raise BlendError("a blend needs at least one style")
        first = parts[0][0]
        for prior, weight in parts:
            if not weight > 0:
                raise BlendError(f"blend weights must be > 0 here, got {weight}")
            if prior.tokenizer_fingerprint != first.tokenizer_fingerprint or prior.vocab_size != first.vocab_size:
                raise TokenizerMismatch(
                    f"the styles '{first.name}' and '{prior.name}' in the blend were built with different tokenizers; "
                    f"rebuild them for one model: `stylesteer styles rebuild {prior.name} --model MODEL`")
        total = math.fsum(w for _, w in parts)
        self.parts = [(prior, w / total) for prior, w in parts]
        self.name = name or ",".join(f"{p.name}:{w:.4g}" for p, w in self.parts)
        self.vocab_size = first.vocab_size
        self.tokenizer_fingerprint = first.tokenizer_fingerprint
        self.device = first.device
        self.n_tokens = sum(p.n_tokens for p, _ in self.parts)

    # The per-step work runs in NumPy, as StylePrior's does: on a busy machine torch's thread pool
    # makes these V-sized operations a thousand times slower (measured: ~0.4 s against ~1 ms).
    def paper_delta(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, V]: sum_s w_s * paper_delta_s."""
        if len(self.parts) == 1:
            return self.parts[0][0].paper_delta(input_ids)
        out = np.zeros((input_ids.shape[0], self.vocab_size), dtype=np.float32)
        for prior, w in self.parts:
            term = prior.paper_delta_array(input_ids)
            term *= np.float32(w)
            out += term
        return torch.from_numpy(out).to(self.device)

    def log_mix(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, V]: log sum_s w_s P_mix,s(i | ctx); finite everywhere.

        Summed as probabilities: every P_mix,s is at least its smoothed floor (k / (N + kV) or the
        fallback), far above float32's smallest normal, so exp() cannot underflow to 0."""
        if len(self.parts) == 1:
            return self.parts[0][0].log_mix(input_ids)
        out = np.zeros((input_ids.shape[0], self.vocab_size), dtype=np.float32)
        for prior, w in self.parts:
            p = prior.log_mix_array(input_ids)
            np.exp(p, out=p)
            p *= np.float32(w)
            out += p
        np.log(out, out=out)
        return torch.from_numpy(out).to(self.device)

    def log_prob(self, context: Sequence[int], token: int) -> float:
        """log P(token | context) under the mixture (natural log)."""
        if len(self.parts) == 1:
            return self.parts[0][0].log_prob(context, token)
        terms = [math.log(w) + prior.log_prob(context, token) for prior, w in self.parts]
        top = max(terms)
        return top + math.log(math.fsum(math.exp(t - top) for t in terms))

    def top_unigram_ids(self, k: int = TOP_UNIGRAMS) -> set[int]:
        """The k most probable unigrams of the weighted mixture of the styles' unigram distributions."""
        if len(self.parts) == 1:
            return self.parts[0][0].top_unigram_ids(k)
        mix = np.zeros(self.vocab_size, dtype=np.float64)
        for prior, w in self.parts:
            counts = prior.unigram_counts.astype(np.float64)
            if counts.sum() > 0:
                mix += w * counts / counts.sum()
        nz = np.flatnonzero(mix)
        order = nz[np.lexsort((nz, -mix[nz]))]
        return set(order[:k].tolist())

    def has_bigram(self, a: int, b: int) -> bool:
        return any(prior.has_bigram(a, b) for prior, _ in self.parts)

    def to(self, device: str | torch.device) -> BlendPrior:
        for prior, _ in self.parts:
            prior.to(device)
        self.device = torch.device(device)
        return self

    def __repr__(self) -> str:
        return f"BlendPrior({self.name!r}, V={self.vocab_size})"
