"""Blended styles: a weighted mixture of several styles' priors, parsed from `NAME:W,NAME:W`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from styles.errors import StyleError, TokenizerMismatch
from styles.prior import TOP_UNIGRAMS, StylePrior


class BlendError(StyleError):
    """A blend spec or saved blend the user must fix (bad weight, missing part, ...)."""


@dataclass(frozen=True)
class BlendSpec:
    """Styles and their weights, normalised to sum to 1, zero weights dropped, in the order given."""

    parts: tuple[tuple[str, float], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.parts]

    def text(self) -> str:
        """The canonical `NAME:W,NAME:W` form (what the app shows and passes around)."""
        return ",".join(f"{name}:{weight:.4g}" for name, weight in self.parts)


def normalise(parts: Sequence[tuple[str, float]]) -> BlendSpec:
    """Check weights (finite, >= 0, positive total, each style once) and scale them to sum to 1."""
    if not parts:
        raise BlendError("a blend needs at least one style")
    seen: set[str] = set()
    for name, weight in parts:
        if not name.strip():
            raise BlendError("a blend part has no style name (write NAME:WEIGHT)")
        if not math.isfinite(weight):
            raise BlendError(f"the weight of '{name}' in the blend must be a finite number, got {weight}")
        if weight < 0:
            raise BlendError(f"blend weights cannot be negative: '{name}' has {weight:g}")
        if name.strip().casefold() in seen:
            raise BlendError(f"style '{name.strip()}' appears twice in the blend")
        seen.add(name.strip().casefold())
    total = math.fsum(w for _, w in parts)
    if total <= 0:
        raise BlendError("blend weights add up to zero: give at least one style a positive weight")
    return BlendSpec(tuple((name.strip(), w / total) for name, w in parts if w > 0))


def is_blend_text(text: str) -> bool:
    """Whether `text` is written as a blend (`NAME:W[,NAME:W...]`) rather than one style's name."""
    return ":" in text


def parse_blend(text: str) -> BlendSpec:
    """`holmes:0.7,austen:0.3` -> a normalised BlendSpec; BlendError (one line) when malformed.

    A part is split at its last ':', so a name may hold ':'; names holding ',' can only be blended
    in a saved blend (the app's blend editor).
    """
    parts: list[tuple[str, float]] = []
    for raw in text.split(","):
        if not raw.strip():
            raise BlendError(f"empty part in the blend '{text}' (write NAME:WEIGHT,NAME:WEIGHT)")
        name, sep, weight = raw.rpartition(":")
        if not sep or not name.strip():
            raise BlendError(f"'{raw.strip()}' in the blend is not NAME:WEIGHT")
        try:
            value = float(weight)
        except ValueError:
            raise BlendError(f"the weight of '{name.strip()}' in the blend is not a number: '{weight.strip()}'") \
                from None
        parts.append((name, value))
    return normalise(parts)


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
        self._log_w = torch.tensor([math.log(w) for _, w in self.parts], dtype=torch.float32)

    def paper_delta(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, V]: sum_s w_s * paper_delta_s."""
        if len(self.parts) == 1:
            return self.parts[0][0].paper_delta(input_ids)
        out = None
        for prior, w in self.parts:
            term = prior.paper_delta(input_ids) * w
            out = term if out is None else out + term
        assert out is not None
        return out

    def log_mix(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, V]: log sum_s w_s P_mix,s(i | ctx); finite everywhere."""
        if len(self.parts) == 1:
            return self.parts[0][0].log_mix(input_ids)
        stacked = torch.stack([prior.log_mix(input_ids) for prior, _ in self.parts])  # [S, B, V]
        return torch.logsumexp(stacked + self._log_w.to(stacked.device).view(-1, 1, 1), dim=0)

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
