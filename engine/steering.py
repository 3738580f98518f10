"""StyleSteeringProcessor: inject a style prior into the logits (paper, dense or budget mode)."""

from __future__ import annotations

import math
import threading
from typing import Any

import torch
from transformers import LogitsProcessor

from engine.prior import Prior
from engine.types import DEFAULT_BUDGET_BITS, DEFAULT_LAM, DEFAULT_MODE, MODES
from styles.errors import check_tokenizer

LN2 = math.log(2.0)
BUDGET_ITERATIONS = 14  # bisection steps: lambda resolved to lam / 2**14


def check_compatible(prior: Prior, lm: Any) -> None:
    """Raise styles.errors.TokenizerMismatch unless the prior was built with `lm`'s tokenizer."""
    check_tokenizer(getattr(prior, "name", "") or "NAME", prior.tokenizer_fingerprint, lm.fingerprint, model=lm.name)


def js_bits_from_logits(base: torch.Tensor, steered: torch.Tensor) -> torch.Tensor:
    """Row-wise Jensen-Shannon divergence in bits between softmax(base) and softmax(steered)."""
    lp = torch.log_softmax(base.float(), dim=-1)
    lq = torch.log_softmax(steered.float(), dim=-1)
    p, q = lp.exp(), lq.exp()
    lm = torch.logaddexp(lp, lq) - LN2  # log of the midpoint (p + q) / 2
    js = 0.5 * (p * (lp - lm)).nan_to_num().sum(-1) + 0.5 * (q * (lq - lm)).nan_to_num().sum(-1)
    return js.clamp_min(0.0) / LN2


class StyleSteeringProcessor(LogitsProcessor):
    """Add lambda times a style term to the logits.

    Modes (METHOD.md):
      - "paper":  z + lam * sum_n w_n log P_n(i | ctx_n), only for tokens in a seen context's table;
      - "dense":  z + lam * log P_mix(i | ctx) for every token (product of experts);
      - "budget": dense with, per row and step, the largest lam_t <= lam whose JS(base, steered) <= budget_bits.

    Shapes: input_ids [B, T] (long), scores [B, V'] (float); returns a new [B, V'] tensor (no in-place
    mutation). V' may exceed the prior's vocabulary (padded embeddings): those columns are left alone.
    `lam` may be changed from another thread while tokens stream; each call reads it once.
    """

    def __init__(self, prior: Prior, lam: float = DEFAULT_LAM, mode: str = DEFAULT_MODE,
                 budget_bits: float = DEFAULT_BUDGET_BITS) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not budget_bits > 0:
            raise ValueError(f"budget_bits must be > 0, got {budget_bits}")
        self.prior = prior
        self.mode = mode
        self.budget_bits = float(budget_bits)
        self._lock = threading.Lock()
        self._lam = 0.0
        self.lam = lam
        # Per-row multipliers of lam (compare mode: [0, 1] keeps the baseline row untouched) or
        # per-row lambdas (the sweep decodes several lambdas in one batch); None = lam for all rows.
        self.row_scale: torch.Tensor | None = None
        self.row_lams: torch.Tensor | None = None
        self.last_lams: torch.Tensor | None = None  # lambda actually applied per row at the last call

    @property
    def lam(self) -> float:
        return self._lam

    @lam.setter
    def lam(self, value: float) -> None:
        value = float(value)
        if not (0.0 <= value <= 1.0) or math.isnan(value):
            raise ValueError(f"lam must be in [0, 1], got {value}")
        with self._lock:
            self._lam = value

    def _row_lams(self, batch: int, device: torch.device) -> torch.Tensor:
        if self.row_lams is not None:
            lams = self.row_lams.to(device=device, dtype=torch.float32)
        else:
            lams = torch.full((batch,), self._lam, dtype=torch.float32, device=device)
            if self.row_scale is not None:
                lams = lams * self.row_scale.to(device=device, dtype=torch.float32)
        if lams.shape != (batch,):
            raise ValueError(f"per-row lambdas have shape {tuple(lams.shape)}, expected ({batch},)")
        return lams

    def style_term(self, input_ids: torch.Tensor, width: int) -> torch.Tensor:
        """The [B, width] term that lam multiplies (padded with zeros past the prior's vocabulary)."""
        term = self.prior.paper_delta(input_ids) if self.mode == "paper" else self.prior.log_mix(input_ids)
        V = term.shape[-1]
        if V < width:
            term = torch.nn.functional.pad(term, (0, width - V))
        elif V > width:
            term = term[:, :width]
        return term

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        lams = self._row_lams(scores.shape[0], scores.device)
        if not bool((lams > 0).any()):
            self.last_lams = lams
            return scores
        term = self.style_term(input_ids, scores.shape[-1]).to(device=scores.device, dtype=scores.dtype)
        if self.mode == "budget":
            lams = self._budgeted(scores, term, lams)
        self.last_lams = lams
        # The prior's terms are finite by contract (smoothed log-probabilities), so the sum
        # is finite wherever the model's logits are.
        return torch.addcmul(scores, lams.to(scores.dtype)[:, None], term)

    def _budgeted(self, scores: torch.Tensor, term: torch.Tensor, lams: torch.Tensor) -> torch.Tensor:
        """Per row, the largest lam_t in [0, lam] with JS(base, base + lam_t * term) <= budget (bisection).

        The base distribution is computed once; each bisection step costs one log-softmax and one JS.
        """
        tau = self.budget_bits
        lp = torch.log_softmax(scores.float(), dim=-1)
        p = lp.exp()
        term = term.float()

        def js(lam_t: torch.Tensor) -> torch.Tensor:
            lq = torch.log_softmax(scores.float() + lam_t[:, None] * term, dim=-1)
            lm = torch.logaddexp(lp, lq) - LN2
            d = p * (lp - lm) + lq.exp() * (lq - lm)
            return d.nan_to_num_().sum(-1).mul_(0.5 / LN2)

        ok = js(lams) <= tau
        if bool(ok.all()):
            return lams
        lo = torch.zeros_like(lams)
        hi = lams.clone()
        for _ in range(BUDGET_ITERATIONS):
            mid = (lo + hi) / 2
            within = js(mid) <= tau
            lo = torch.where(within, mid, lo)
            hi = torch.where(within, hi, mid)
        return torch.where(ok, lams, lo)
