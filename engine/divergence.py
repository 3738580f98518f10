"""Jensen-Shannon divergence in bits: one torch implementation, and one NumPy twin for the per-token hot path."""

from __future__ import annotations

import math

import numpy as np
import torch

LN2 = math.log(2.0)


def js_bits(lp: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """Row-wise JS divergence in bits between two log-distributions [..., V] -> [...] (0 <= JS <= 1).

    Zero probabilities (log -inf) contribute nothing. Pass log_softmax(logits) for logits.
    """
    lm = torch.logaddexp(lp, lq) - LN2  # log of the midpoint (p + q) / 2
    # 0 * log 0 is nan here: each half drops its own, so the other half's term survives.
    d = (lp.exp() * (lp - lm)).nan_to_num_() + (lq.exp() * (lq - lm)).nan_to_num_()
    return d.sum(-1).mul_(0.5 / LN2).clamp_min_(0.0)


def js_bits_np(lp: np.ndarray, lq: np.ndarray) -> float:
    """js_bits for one pair of log-distributions [V] in NumPy: one vector per token is too small for torch's threads."""
    lm = np.logaddexp(lp, lq) - LN2
    js = 0.5 * float(np.dot(np.exp(lp), lp - lm)) + 0.5 * float(np.dot(np.exp(lq), lq - lm))
    return max(js, 0.0) / LN2


def log_softmax_np(z: np.ndarray) -> np.ndarray:
    """log_softmax of one logit vector in NumPy."""
    shifted = z - z.max()
    return shifted - np.log(np.exp(shifted).sum())
