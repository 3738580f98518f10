"""The decoding loop: an explicit KV-cache generator yielding one TokenStep per generated token."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import torch
from transformers import (
    DynamicCache,
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from engine.bans import PhraseRulesProcessor, RulesState, compile_rules
from engine.divergence import js_bits, js_bits_np, log_softmax_np
from engine.kvcache import PrefixCache, repeat_rows
from engine.models import LoadedModel
from engine.prior import Prior
from engine.steering import SteeringState, StyleSteeringProcessor
from engine.types import DEFAULT_BUDGET_BITS, Alternative, Mode, SamplingConfig, Side, Summary, TokenStep

ANCHOR_TOKENS = 4  # prompt tokens decoded with the continuation so leading spaces come out right


class PromptError(ValueError):
    """The prompt cannot be used as it is (empty, or no room left in the context window)."""


# -- text ----------------------------------------------------------------------------------------

class TextTracker:
    """Turns a growing list of token ids into exact text pieces.

    The pieces join to `decode(anchor + ids)` minus `decode(anchor)`, where the anchor is the end of
    the prompt: SentencePiece's leading space and multi-byte characters split over several byte
    tokens come out right. A token that ends in the middle of a character adds "" until the
    character is complete.
    """

    def __init__(self, tokenizer: Any, prompt_ids: Sequence[int]) -> None:
        self.tokenizer = tokenizer
        self.anchor = list(prompt_ids[-ANCHOR_TOKENS:])
        self.anchor_text = self._decode(self.anchor)
        self.ids: list[int] = []
        self.emitted = 0

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    @property
    def text(self) -> str:
        full = self._decode(self.anchor + self.ids)
        if full.startswith(self.anchor_text):
            return full[len(self.anchor_text):]
        return self._decode(self.ids)

    def push(self, token_id: int) -> str:
        self.ids.append(int(token_id))
        text = self.text
        if text.endswith("\ufffd"):
            return ""  # an incomplete multi-byte character: wait for the rest of it
        piece = text[self.emitted:]
        self.emitted = len(text)
        return piece


# -- the loop ------------------------------------------------------------------------------------

@dataclass
class _Step:
    """What the loop produced for all rows at one step."""

    index: int
    tokens: list[int]
    active: list[bool]  # rows that produced a real token at this step
    base: torch.Tensor  # [B, V] raw model logits
    steered: torch.Tensor  # [B, V] logits after steering (before sampling transforms)
    lams: list[float]
    # log p_base(chosen token | history) under the frozen model, per row: base PPL without a second forward
    base_logprobs: list[float]
    adjusted: list[bool] | None = None  # rows where a banned or biased token's probability moved


def _encode_prompt(lm: LoadedModel, prompt: str | Sequence[int], max_new_tokens: int,
                   notices: list[str]) -> list[int]:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise PromptError("the prompt is empty: write something to continue")
        ids = lm.tokenizer(prompt, add_special_tokens=True)["input_ids"]
    else:
        ids = [int(i) for i in prompt]
    if not ids:
        raise PromptError("the prompt is empty: write something to continue")
    room = lm.context_length - max_new_tokens
    if room < 1:
        raise PromptError(f"max_new_tokens ({max_new_tokens}) leaves no room for the prompt in the "
                          f"{lm.context_length}-token context window")
    if len(ids) > room:
        notices.append(f"the prompt is longer than the context window allows ({len(ids)} tokens); "
                       f"using its last {room} tokens")
        ids = ids[-room:]
    return ids


def _check_rules(lm: LoadedModel, sampling: SamplingConfig) -> None:
    """Compile the phrase rules now (they are cached): a list that bans every token fails before decoding."""
    if sampling.rules is not None and not sampling.rules.empty:
        compile_rules(lm.tokenizer, sampling.rules)


def sampler_chain(sampling: SamplingConfig, steering: LogitsProcessor | None = None,
                  rules: LogitsProcessor | None = None) -> LogitsProcessorList:
    """The one chain every decode path turns logits into choice scores with.

    [steering, phrase bans and biases, repetition penalty, temperature, top-k, top-p], each only where it
    does something; greedy decoding leaves out the last three, which cannot change the argmax.
    """
    chain = LogitsProcessorList([p for p in (steering, rules) if p is not None])
    if sampling.repetition_penalty != 1.0:
        chain.append(RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty))
    if not sampling.greedy:
        if sampling.temperature != 1.0:
            chain.append(TemperatureLogitsWarper(sampling.temperature))
        if sampling.top_k > 0:
            chain.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            chain.append(TopPLogitsWarper(sampling.top_p))
    return chain


def _cache_keyword(model: Any) -> str:
    """transformers renamed `past_key_values` to `cache` in 5.x; accept both."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _left_padded(rows: list[list[int]], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask), both [B, width], the rows aligned at the right."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[b, width - len(r):] = 1
    return ids.to(device), mask.to(device)


def _row_generators(seeds: list[int | None], device: torch.device) -> list[torch.Generator]:
    """One generator per row; a row without a seed gets a fresh random one (the global RNG is left alone)."""
    generators = []
    for s in seeds:
        g = torch.Generator(device=device)
        if s is None:
            g.seed()
        else:
            g.manual_seed(s)
        generators.append(g)
    return generators


def _choose(scores: torch.Tensor, greedy: bool, generators: list[torch.Generator]) -> torch.Tensor:
    """[B] token ids from the chain's scores: argmax, or one draw per row from its own generator."""
    if greedy:
        return scores.argmax(-1)
    probs = torch.softmax(scores, dim=-1)
    return torch.cat([torch.multinomial(probs[b], 1, generator=g) for b, g in enumerate(generators)])


def _decode_rows(lm: LoadedModel, rows: list[list[int]], sampling: SamplingConfig,
                 steering: StyleSteeringProcessor | None, cancel: threading.Event | None,
                 seeds: list[int | None], row_scale: Sequence[float] | None = None,
                 prefix: PrefixCache | None = None) -> Iterator[_Step]:
    """Decode several prompts in one batch (left-padded), one forward per step for all rows.

    `row_scale` multiplies the steering lambda per row (None: every row gets it). Identical rows are
    prefilled once; with `prefix` that prefill reuses the cached keys and values of the longest prefix
    the prompt shares with the last generation, and leaves the new ones there for the next.
    """
    model, device, B = lm.model, lm.device, len(rows)
    pad = lm.tokenizer.pad_token_id
    if pad is None:
        pad = next(iter(lm.eos_token_ids), 0)
    ids, mask = _left_padded(rows, pad, device)
    position = (mask.cumsum(-1) - 1).clamp_min(0)
    state = SteeringState()
    rules_state = RulesState()
    rules = PhraseRulesProcessor(compile_rules(lm.tokenizer, sampling.rules), rules_state) \
        if sampling.rules is not None and not sampling.rules.empty else None
    chain = sampler_chain(sampling, steering.for_decode(state, row_scale) if steering is not None else None, rules)
    generators = _row_generators(seeds, device)
    eos = _stop_ids(lm, sampling)
    done = [False] * B
    history = ids
    cache = {_cache_keyword(model): DynamicCache(config=model.config)}
    # Without padding the causal mask is implicit; building an explicit one every step costs
    # more than the attention itself for a small model on the CPU.
    padded = any(len(r) != ids.shape[1] for r in rows)
    fed = list(rows[0])  # row 0's ids so far: in a batch of one, what its cache holds (`prefix` keeps both)
    with torch.inference_mode():
        if all(r == rows[0] for r in rows):
            out = _prefill(lm, fed, B, prefix, cache)
        else:
            out = model(input_ids=ids, attention_mask=mask if padded else None, position_ids=position,
                        use_cache=True, logits_to_keep=1, **cache)
        for index in range(sampling.max_new_tokens):
            base = out.logits[:, -1, :].to(dtype=torch.float32)
            tokens = _choose(chain(cast(torch.LongTensor, history), base), sampling.greedy, generators)
            steered = state.scores if steering is not None and state.scores is not None else base
            lams = state.lams.tolist() if steering is not None and state.lams is not None else [0.0] * B
            token_list = tokens.tolist()
            active = [not d for d in done]
            base_lp = (base.gather(-1, tokens.view(B, 1))[:, 0] - torch.logsumexp(base, dim=-1)).tolist()
            yield _Step(index, token_list, active, base, steered, lams, base_lp, rules_state.adjusted)
            for b, t in enumerate(token_list):
                done[b] = done[b] or (active[b] and t in eos)
            if all(done) or index + 1 == sampling.max_new_tokens or (cancel is not None and cancel.is_set()):
                return
            next_ids = torch.tensor([[t if not d else pad] for t, d in zip(token_list, done, strict=True)],
                                    dtype=torch.long, device=device)
            history = torch.cat([history, next_ids], dim=-1)
            position = position[:, -1:] + 1
            if padded:
                mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=device)], dim=-1)
            out = model(input_ids=next_ids, attention_mask=mask if padded else None, position_ids=position,
                        use_cache=True, **cache)
            fed.append(token_list[0])


def _prefill(lm: LoadedModel, ids: list[int], rows: int, prefix: PrefixCache | None, cache: dict[str, Any]) -> Any:
    """Prefill `rows` identical rows `ids` once; the model output, its logits [rows, 1, V].

    Only the tokens `prefix` does not hold are fed. The cache it leaves in `cache` holds `ids`; a batch
    of one shares it (and `ids`, which the loop extends) with `prefix`, a larger batch gets a copy.
    """
    model, keyword = lm.model, next(iter(cache))
    kv, start = prefix.take(model, ids) if prefix is not None else (None, 0)
    if kv is None:
        kv, start = cache[keyword], 0
    new = torch.tensor([ids[start:]], dtype=torch.long, device=lm.device)
    position = torch.arange(start, len(ids), dtype=torch.long, device=lm.device).unsqueeze(0)
    out = model(input_ids=new, position_ids=position, use_cache=True, logits_to_keep=1, **{keyword: kv})
    if prefix is not None:
        prefix.put(model, kv, ids if rows == 1 else list(ids))
    if rows == 1:
        cache[keyword] = kv
        return out
    cache[keyword] = repeat_rows(kv, rows, model.config)
    return SimpleNamespace(logits=out.logits[:, -1:, :].repeat(rows, 1, 1))


def _stop_ids(lm: LoadedModel, sampling: SamplingConfig) -> set[int]:
    return lm.eos_token_ids if sampling.stop_at_eos else set()


class _AltText:
    """Cached text of single tokens, for the alternatives list."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.cache: dict[int, str] = {}

    def __call__(self, token_id: int) -> str:
        text = self.cache.get(token_id)
        if text is None:
            text = self.tokenizer.decode([token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            self.cache[token_id] = text
        return text


def _top(logp: np.ndarray, k: int, alt_text: _AltText) -> list[Alternative]:
    if k <= 0:
        return []
    idx = np.argpartition(logp, -k)[-k:]
    idx = idx[np.argsort(-logp[idx], kind="stable")]
    return [(int(t), alt_text(int(t)), float(np.exp(logp[t]))) for t in idx]


def _row(t: torch.Tensor, row: int) -> np.ndarray:
    return t[row].detach().to("cpu", torch.float32).numpy()


@dataclass
class _SideState:
    side: Side
    tracker: TextTracker
    steps: list[TokenStep] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    js: list[float] = field(default_factory=list)
    base_lp: list[float] = field(default_factory=list)  # frozen model's log-prob of each token
    stop_reason: str = "length"
    finished: bool = False

    def accept(self, step: _Step, row: int, eos: set[int]) -> bool:
        """Take row's token of this step; False (and finished) when it is an end-of-sequence token."""
        token = step.tokens[row]
        if token in eos:
            self.finished, self.stop_reason = True, "eos"
            return False
        self.token_ids.append(token)
        self.base_lp.append(step.base_logprobs[row])
        return True

    def note_cancel(self, cancel: threading.Event | None, max_new_tokens: int) -> None:
        if cancel is not None and cancel.is_set() and not self.finished and len(self.token_ids) < max_new_tokens:
            self.stop_reason = "cancelled"

    def summary(self, lm: LoadedModel, prompt_ids: list[int], prior: Prior | None,
                top_ids: set[int] | None = None) -> Summary:
        from engine.metrics import compute_metrics, perplexity

        metrics = compute_metrics(lm, prompt_ids, self.token_ids, self.js, prior, base=perplexity(self.base_lp),
                                  top_ids=top_ids)
        return Summary(self.side, self.tracker.text, list(self.token_ids), metrics, self.stop_reason)


def _record(state: _SideState, step: _Step, row: int, sampling: SamplingConfig, alt_text: _AltText,
            eos: set[int], steered_row: bool) -> TokenStep | None:
    """Turn one row of a step into a TokenStep (None when the row ended with EOS)."""
    if not state.accept(step, row, eos):
        return None
    token = step.tokens[row]
    piece = state.tracker.push(token)
    lam = step.lams[row] if steered_row else 0.0
    adjusted = bool(step.adjusted and step.adjusted[row])
    steered = steered_row and lam > 0
    if sampling.diagnostics:
        lp = log_softmax_np(_row(step.base, row))
        lq = log_softmax_np(_row(step.steered, row)) if steered else lp
        js = js_bits_np(lp, lq) if steered else 0.0
        k = sampling.n_alternatives
        top_base = _top(lp, k, alt_text)
        top_steered = _top(lq, k, alt_text) if steered else top_base
        rec = TokenStep(state.side, step.index, token, piece, float(np.exp(lp[token])), float(np.exp(lq[token])),
                        js, lam, top_base, top_steered, adjusted)
    else:
        js = js_bits_np(log_softmax_np(_row(step.base, row)), log_softmax_np(_row(step.steered, row))) \
            if steered else 0.0
        rec = TokenStep(state.side, step.index, token, piece, float("nan"), float("nan"), js, lam,
                        adjusted=adjusted)
    state.js.append(rec.js_bits)
    state.steps.append(rec)
    return rec


class Generation:
    """One streamed continuation. Iterate for TokenSteps; then read the result and `summary()`."""

    def __init__(self, lm: LoadedModel, prompt: str | Sequence[int], sampling: SamplingConfig,
                 steering: StyleSteeringProcessor | None = None, cancel: threading.Event | None = None,
                 prefix: PrefixCache | None = None) -> None:
        sampling.validate()
        self.lm, self.sampling, self.steering, self.cancel = lm, sampling, steering, cancel
        self.prefix = prefix
        self.notices: list[str] = []
        self.prompt_ids = _encode_prompt(lm, prompt, sampling.max_new_tokens, self.notices)
        _check_rules(lm, sampling)
        self._state = _SideState("steered" if steering is not None else "baseline",
                                 TextTracker(lm.tokenizer, self.prompt_ids))
        self._started = False

    def __iter__(self) -> Iterator[TokenStep]:
        if self._started:
            raise RuntimeError("a Generation can be iterated once")
        self._started = True
        alt_text, eos = _AltText(self.lm.tokenizer), _stop_ids(self.lm, self.sampling)
        state = self._state
        for step in _decode_rows(self.lm, [self.prompt_ids], self.sampling, self.steering, self.cancel,
                                 [self.sampling.seed], prefix=self.prefix):
            rec = _record(state, step, 0, self.sampling, alt_text, eos, self.steering is not None)
            if rec is None:
                return
            yield rec
        state.note_cancel(self.cancel, self.sampling.max_new_tokens)

    @property
    def steps(self) -> list[TokenStep]:
        return self._state.steps

    @property
    def token_ids(self) -> list[int]:
        return self._state.token_ids

    @property
    def stop_reason(self) -> str:
        return self._state.stop_reason

    @property
    def text(self) -> str:
        return self._state.tracker.text

    def summary(self, prior: Prior | None = None) -> Summary:
        """Metrics of the continuation (style metrics under `prior`, by default the steering prior)."""
        prior = prior if prior is not None else (self.steering.prior if self.steering is not None else None)
        return self._state.summary(self.lm, self.prompt_ids, prior)


def stream(lm: LoadedModel, prompt: str | Sequence[int], sampling: SamplingConfig,
           steering: StyleSteeringProcessor | None = None, cancel: threading.Event | None = None,
           prefix: PrefixCache | None = None) -> Generation:
    """A streamed continuation of `prompt`; steered when `steering` is given.

    With `prefix`, the context's keys and values are reused from the last generation as far as the
    token ids agree, and this one's are left there for the next.
    """
    return Generation(lm, prompt, sampling, steering, cancel, prefix)


class CompareGeneration:
    """Baseline and steered continuations of one prompt with one seed, decoded in one batch."""

    def __init__(self, lm: LoadedModel, prompt: str | Sequence[int], sampling: SamplingConfig,
                 steering: StyleSteeringProcessor, cancel: threading.Event | None = None,
                 prefix: PrefixCache | None = None) -> None:
        sampling.validate()
        if steering is None:
            raise ValueError("compare mode needs a steering processor (a style)")
        self.lm, self.sampling, self.steering, self.cancel = lm, sampling, steering, cancel
        self.prefix = prefix
        self.notices: list[str] = []
        self.prompt_ids = _encode_prompt(lm, prompt, sampling.max_new_tokens, self.notices)
        _check_rules(lm, sampling)
        self.baseline = _SideState("baseline", TextTracker(lm.tokenizer, self.prompt_ids))
        self.steered = _SideState("steered", TextTracker(lm.tokenizer, self.prompt_ids))

    def __iter__(self) -> Iterator[tuple[TokenStep | None, TokenStep | None]]:
        alt_text, eos = _AltText(self.lm.tokenizer), _stop_ids(self.lm, self.sampling)
        sides = (self.baseline, self.steered)
        # Row 0 is the baseline (lambda x 0), row 1 follows the live lambda.
        for step in _decode_rows(self.lm, [self.prompt_ids, self.prompt_ids], self.sampling, self.steering,
                                 self.cancel, [self.sampling.seed, self.sampling.seed], row_scale=(0.0, 1.0),
                                 prefix=self.prefix):
            pair: list[TokenStep | None] = [None, None]
            for row, state in enumerate(sides):
                if not state.finished and step.active[row]:
                    pair[row] = _record(state, step, row, self.sampling, alt_text, eos, row == 1)
            if all(s.finished for s in sides):
                return
            if pair[0] is not None or pair[1] is not None:
                yield pair[0], pair[1]
        for s in sides:
            s.note_cancel(self.cancel, self.sampling.max_new_tokens)

    def summaries(self) -> tuple[Summary, Summary]:
        from styles.prior import TOP_UNIGRAMS

        prior = self.steering.prior
        top_ids = prior.top_unigram_ids(TOP_UNIGRAMS)  # once for both sides
        return (self.baseline.summary(self.lm, self.prompt_ids, prior, top_ids),
                self.steered.summary(self.lm, self.prompt_ids, prior, top_ids))


def compare_stream(lm: LoadedModel, prompt: str | Sequence[int], sampling: SamplingConfig,
                   steering: StyleSteeringProcessor, cancel: threading.Event | None = None,
                   prefix: PrefixCache | None = None) -> CompareGeneration:
    """Baseline and steered side by side, streamed as (baseline, steered) pairs (`prefix` as for `stream`)."""
    return CompareGeneration(lm, prompt, sampling, steering, cancel, prefix)


# -- batches (the sweep) ------------------------------------------------------------------------

@dataclass
class BatchResult:
    """One row of a batch: its prompt, continuation and per-step JS."""

    prompt_ids: list[int]
    token_ids: list[int]
    text: str
    js_bits: list[float]
    stop_reason: str
    lam: float = 0.0
    # log p_base(x_t | prompt, x_<t) of each generated token under the frozen model: its base PPL
    # without a second forward pass.
    base_logprobs: list[float] = field(default_factory=list)


def generate_batch(lm: LoadedModel, prompts: Sequence[str | Sequence[int]], lams: Sequence[float], *, mode: Mode,
                   prior: Prior | None, sampling: SamplingConfig, budget_bits: float = DEFAULT_BUDGET_BITS,
                   cancel: threading.Event | None = None, progress: Any = None,
                   seeds: Sequence[int | None] | None = None) -> list[BatchResult]:
    """Decode every (prompt, lam) row in one batch: one forward per step for all rows.

    progress(step, max_new_tokens) is called after every step. `seeds` gives each row its own seed
    (default: every row gets sampling.seed).
    """
    if len(prompts) != len(lams):
        raise ValueError(f"prompts and lams differ in length ({len(prompts)} vs {len(lams)})")
    sampling.validate()
    notices: list[str] = []
    rows = [_encode_prompt(lm, p, sampling.max_new_tokens, notices) for p in prompts]
    _check_rules(lm, sampling)
    steering = None
    if prior is not None and any(lam > 0 for lam in lams):
        # lambda 1 scaled per row by the row's own lambda
        steering = StyleSteeringProcessor(prior, lam=1.0, mode=mode, budget_bits=budget_bits)
    states = [_SideState("steered", TextTracker(lm.tokenizer, r)) for r in rows]
    eos = _stop_ids(lm, sampling)
    row_seeds = list(seeds) if seeds is not None else [sampling.seed] * len(rows)
    if len(row_seeds) != len(rows):
        raise ValueError(f"seeds and prompts differ in length ({len(row_seeds)} vs {len(rows)})")
    row_scale = [float(x) for x in lams]
    for step in _decode_rows(lm, rows, sampling, steering, cancel, row_seeds, row_scale=row_scale):
        js = js_bits(torch.log_softmax(step.base, dim=-1), torch.log_softmax(step.steered, dim=-1)).tolist() \
            if steering is not None else None
        for b, state in enumerate(states):
            if state.finished or not step.active[b] or not state.accept(step, b, eos):
                continue
            state.tracker.ids.append(step.tokens[b])
            state.js.append(js[b] if js is not None and lams[b] > 0 else 0.0)
        if progress is not None:
            progress(step.index + 1, sampling.max_new_tokens)
    out = []
    for r, s, lam in zip(rows, states, lams, strict=True):
        s.note_cancel(cancel, sampling.max_new_tokens)
        out.append(BatchResult(r, s.token_ids, s.tracker.text, s.js, s.stop_reason, float(lam), s.base_lp))
    return out
