"""StyleSteeringProcessor: inject a style prior into the logits (paper, dense or budget mode)."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from transformers import LogitsProcessor

from engine.divergence import LN2, js_bits
from engine.prior import Prior
from engine.types import DEFAULT_BUDGET_BITS, DEFAULT_LAM, DEFAULT_MODE, Mode, parse_mode
from styles.errors import check_tokenizer

BUDGET_ITERATIONS = 14  # bisection steps: lambda resolved to BUDGET_MAX_LAM / 2**14
# Budget mode's reference uncertainty: where the model's next-token entropy is this many bits (as unsure as between
# 16 equally likely words), a row at lambda may spend lam * tau_max bits of JS; a surer step less, a less sure one
# more, in proportion to the entropy.
BUDGET_REF_ENTROPY_BITS = 4.0
# Budget mode's strongest steering: the dense term at full weight, spent only where the divergence budget allows.
BUDGET_MAX_LAM = 1.0
# Budget mode's plausibility floor: while a row is steered, a token the model itself gives less than this fraction of
# its likeliest token's probability cannot be chosen (the adaptive plausibility constraint of contrastive decoding):
# the style chooses among words the model finds plausible here, rather than pulling in ones it does not. Chosen from
# the sweeps in docs/results.md.
BUDGET_PLAUSIBILITY = 0.1


def check_compatible(prior: Prior, lm: Any) -> None:
    """Raise styles.errors.TokenizerMismatch unless the prior was built with `lm`'s tokenizer."""
    check_tokenizer(getattr(prior, "name", "") or "NAME", prior.tokenizer_fingerprint, lm.fingerprint, model=lm.name)


class Steered(NamedTuple):
    """One call's outcome: the steered scores and the lambda each row got."""

    scores: torch.Tensor  # [B, V'] float
    lams: torch.Tensor  # [B] float32: budget mode may apply less than asked


@dataclass
class SteeringState:
    """What a processor applied at its latest call, kept apart from its settings.

    The processor writes it (when given one at construction); the decode loop reads it after running
    the sampler chain, for the per-token records. Nothing else writes it.
    """

    lams: torch.Tensor | None = None  # [B] the lambda each row got
    scores: torch.Tensor | None = None  # [B, V'] the steered scores, before any sampling transform


class LiveLambda:
    """A lambda in [0, 1] that another thread may change while tokens stream; each read sees one whole value."""

    def __init__(self, value: float) -> None:
        self._lock = threading.Lock()
        self._value = 0.0
        self.set(value)

    def get(self) -> float:
        with self._lock:
            return self._value

    def set(self, value: float) -> None:
        value = float(value)
        if not (0.0 <= value <= 1.0) or math.isnan(value):
            raise ValueError(f"lam must be in [0, 1], got {value}")
        with self._lock:
            self._value = value


def _row_scale_tensor(row_scale: Sequence[float] | torch.Tensor | None) -> torch.Tensor | None:
    if row_scale is None:
        return None
    scale = torch.as_tensor(row_scale, dtype=torch.float32).detach().clone()
    if scale.dim() != 1 or scale.numel() == 0:
        raise ValueError(f"row_scale must be a non-empty sequence of numbers, got shape {tuple(scale.shape)}")
    if not bool(((scale >= 0) & (scale <= 1)).all()):
        raise ValueError(f"row_scale values must be in [0, 1], got {scale.tolist()}")
    return scale


def step_budget_bits(logprobs: torch.Tensor, lams: torch.Tensor, tau_max: float) -> torch.Tensor:
    """Budget mode's JS budget per row: lam * tau_max * H(p) / BUDGET_REF_ENTROPY_BITS, in bits.

    logprobs [B, V] are the model's log-probabilities (natural log), lams [B]; returns [B]. The budget follows both
    the slider and the model's uncertainty at this step (its entropy H, in bits).
    """
    p = logprobs.exp()
    entropy_bits = -(p * logprobs.clamp_min(torch.finfo(logprobs.dtype).min)).sum(dim=-1) / LN2
    return lams * tau_max * entropy_bits.clamp_min(0.0) / BUDGET_REF_ENTROPY_BITS


def plausible_only(base: torch.Tensor, steered: torch.Tensor, lams: torch.Tensor,
                   floor: float = BUDGET_PLAUSIBILITY) -> torch.Tensor:
    """Budget mode's plausibility floor: `steered` [B, V] with -inf where a steered row's (lams [B] > 0) base
    probability (from the scores `base` [B, V]) is under `floor` times the row's highest. Rows at lambda 0 stay as
    they are; every other score keeps its value (and so its scale, which the repetition penalty depends on)."""
    steered_rows = lams > 0
    if floor <= 0 or not bool(steered_rows.any()):
        return steered
    base = base.float()  # p_i < floor * p_max  <=>  z_i < z_max + log(floor): no softmax needed
    cut = (base < base.amax(dim=-1, keepdim=True) + math.log(floor)) & steered_rows.to(base.device)[:, None]
    return steered.masked_fill(cut, float("-inf"))


class StyleSteeringProcessor(LogitsProcessor):
    """Add lambda times a style term to the logits.

    Modes (METHOD.md):
      - "paper":  z + lam * sum_n w_n log P_n(i | ctx_n), only for tokens in a seen context's table;
      - "dense":  z + lam * log P_mix(i | ctx) for every token (product of experts);
      - "budget": dense with, per row and step, the largest lam_t in [0, 1] with JS(base, steered) <= tau, where
        tau = lam * tau_max * H(base) / BUDGET_REF_ENTROPY_BITS (`step_budget_bits`): the slider sets the divergence
        each token may spend, so every position of it acts, and a step where the model is sure of its next token is
        moved less than one where many words would do. Then the plausibility floor (`plausible_only`): while a row is
        steered, a token the model gives under BUDGET_PLAUSIBILITY of its likeliest token's probability is cut. The
        state keeps the scores before the cut: the style's own change.

    Shapes: input_ids [B, T] (long), scores [B, V'] (float); returns a new [B, V'] tensor (the input is
    never modified). V' may exceed the prior's vocabulary (padded embeddings): the style leaves those columns alone
    (budget mode's floor may still cut them, as any implausible token).

    Args:
        prior: the style prior (`engine.prior.Prior`), built with the model's tokenizer.
        lam: lambda in [0, 1]; `set_lam` changes it from any thread, and each call reads it once.
        mode: "paper", "dense" or "budget".
        budget_bits: budget mode's tau_max, in bits (> 0): the JS divergence a token may spend at lam = 1 where the
            model's entropy is BUDGET_REF_ENTROPY_BITS; a row asking for lam may spend lam * budget_bits there.
        row_scale: per-row multipliers of lam, each in [0, 1] (compare mode: (0, 1) keeps the baseline
            row unsteered; a sweep batch: lam 1 and one lambda per row); None steers every row by lam.
        state: a SteeringState that each call fills with the lambdas applied and the steered scores.

    Examples:
        >>> import torch
        >>> from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessorList
        >>> from styles.ngrams import count_ngrams
        >>> from styles.prior import StylePrior
        >>> _ = torch.manual_seed(0)
        >>> model = LlamaForCausalLM(LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=16,
        ...                                      num_hidden_layers=1, num_attention_heads=2)).eval()
        >>> prior = StylePrior.from_counts(count_ngrams([[3, 5, 7, 3, 5, 7, 3, 5]], 16), vocab_size=16,
        ...                                tokenizer_fingerprint="tiny")
        >>> steer = StyleSteeringProcessor(prior, lam=1.0, mode="dense")
        >>> out = model.generate(torch.tensor([[3, 5]]), max_new_tokens=6, do_sample=False, pad_token_id=0,
        ...                      logits_processor=LogitsProcessorList([steer]))
        >>> out.shape
        torch.Size([1, 8])
    """

    def __init__(self, prior: Prior, lam: float = DEFAULT_LAM, mode: Mode = DEFAULT_MODE,
                 budget_bits: float = DEFAULT_BUDGET_BITS, *, row_scale: Sequence[float] | torch.Tensor | None = None,
                 state: SteeringState | None = None) -> None:
        if not (callable(getattr(prior, "paper_delta", None)) and callable(getattr(prior, "log_mix", None))):
            raise TypeError(f"prior must be a style prior with paper_delta and log_mix, got {type(prior).__name__}")
        self.mode: Mode = parse_mode(mode)
        budget_bits = float(budget_bits)
        if not budget_bits > 0 or math.isinf(budget_bits):
            raise ValueError(f"budget_bits must be a finite number > 0, got {budget_bits}")
        self.prior = prior
        self.budget_bits = budget_bits
        self.row_scale = _row_scale_tensor(row_scale)
        self.state = state
        self._lam = LiveLambda(lam)

    @property
    def lam(self) -> float:
        return self._lam.get()

    @lam.setter
    def lam(self, value: float) -> None:
        self._lam.set(value)

    def set_lam(self, value: float) -> None:
        """Change lambda from any thread; it applies from the next call (the next token of a stream)."""
        self._lam.set(value)

    def for_decode(self, state: SteeringState | None = None,
                   row_scale: Sequence[float] | torch.Tensor | None = None) -> StyleSteeringProcessor:
        """This processor for one decode: same prior, mode, budget and *live* lambda (`set_lam` on either
        acts on both), with its own per-row multipliers and state."""
        bound = StyleSteeringProcessor(self.prior, 0.0, self.mode, self.budget_bits, row_scale=row_scale,
                                       state=state)
        bound._lam = self._lam
        return bound

    def row_lams(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """[batch] float32: the lambda each row is asked for now (lam times row_scale)."""
        lams = torch.full((batch,), self._lam.get(), dtype=torch.float32, device=device)
        if self.row_scale is not None:
            if self.row_scale.shape != (batch,):
                raise ValueError(f"row_scale has {self.row_scale.numel()} rows, the scores have {batch}")
            lams = lams * self.row_scale.to(device)
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

    def steer(self, input_ids: torch.Tensor, scores: torch.Tensor) -> Steered:
        """The steered scores and the lambda each row got; changes nothing (not even `state`)."""
        lams = self.row_lams(scores.shape[0], scores.device)
        if not bool((lams > 0).any()):
            return Steered(scores, lams)
        term = self.style_term(input_ids, scores.shape[-1]).to(device=scores.device, dtype=scores.dtype)
        if self.mode == "budget":
            lams = self._budgeted(scores, term, lams)
        # The prior's terms are finite by contract (smoothed log-probabilities), so the sum
        # is finite wherever the model's logits are.
        return Steered(torch.addcmul(scores, lams.to(scores.dtype)[:, None], term), lams)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = self.steer(input_ids, scores)
        if self.state is not None:  # the style's own change, before the floor: what the tint and inspector show
            self.state.lams, self.state.scores = out.lams, out.scores
        if self.mode != "budget":
            return out.scores  # type: ignore[return-value]
        return plausible_only(scores, out.scores, out.lams)  # type: ignore[return-value]

    def _budgeted(self, scores: torch.Tensor, term: torch.Tensor, lams: torch.Tensor) -> torch.Tensor:
        """Per row, the largest lam_t in [0, BUDGET_MAX_LAM] with JS(base, base + lam_t * term) <= `step_budget_bits`.

        A row asking for lam 0 gets 0. JS grows with lam_t along this path, so a bisection finds lam_t; a row whose
        strongest steering already fits keeps it. The base distribution is computed once; each bisection step costs
        one log-softmax and one JS.
        """
        base = scores.float()
        lp = torch.log_softmax(base, dim=-1)
        term = term.float()
        tau = step_budget_bits(lp, lams.float(), self.budget_bits)

        def within(lam_t: torch.Tensor) -> torch.Tensor:
            return js_bits(lp, torch.log_softmax(base + lam_t[:, None] * term, dim=-1)) <= tau

        strongest = torch.where(lams > 0, torch.full_like(lams, BUDGET_MAX_LAM), torch.zeros_like(lams))
        ok = within(strongest) | (lams <= 0)
        if bool(ok.all()):
            return strongest
        lo = torch.zeros_like(lams)
        hi = strongest.clone()
        for _ in range(BUDGET_ITERATIONS):
            mid = (lo + hi) / 2
            fits = within(mid)
            lo = torch.where(fits, mid, lo)
            hi = torch.where(fits, hi, mid)
        return torch.where(ok, strongest, lo)
