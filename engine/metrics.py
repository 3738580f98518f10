"""The paper's metrics as pure functions: style PPL, base PPL, JS, unigram overlap, bigram seen rate, distinct-n."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Collection, Sequence
from typing import Any

import torch

from engine.prior import Prior
from styles.prior import TOP_UNIGRAMS


def perplexity(log_probs: Sequence[float]) -> float | None:
    """exp of the mean negative log-probability (natural logs); None for an empty sequence."""
    if not log_probs:
        return None
    return math.exp(-sum(log_probs) / len(log_probs))


def style_ppl(prior: Prior, context_ids: Sequence[int], token_ids: Sequence[int]) -> float | None:
    """Style PPL = exp(-(1/T) sum_t log P_mix(x_t | x_<t)) over the generated tokens."""
    history = list(context_ids)[-2:]
    lps = []
    for t in token_ids:
        lps.append(prior.log_prob(history, int(t)))
        history = ([*history, int(t)])[-2:]
    return perplexity(lps)


def base_ppl_batch(lm: Any, prompt_ids_list: Sequence[Sequence[int]], token_ids_list: Sequence[Sequence[int]],
                   batch_size: int = 8) -> list[float | None]:
    """Perplexity of each continuation given its prompt under the frozen, unsteered model."""
    out: list[float | None] = [None] * len(prompt_ids_list)
    todo = [i for i, t in enumerate(token_ids_list) if len(t) > 0]
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        seqs = [list(prompt_ids_list[i]) + list(token_ids_list[i]) for i in chunk]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for b, s in enumerate(seqs):  # right padding: positions stay 0..n-1 without position ids
            ids[b, :len(s)] = torch.tensor(s)
            mask[b, :len(s)] = 1
        with torch.inference_mode():
            logits = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        targets = ids[:, 1:].to(lm.device)
        picked = logp.gather(-1, targets[..., None])[..., 0]
        for b, i in enumerate(chunk):
            n_prompt, n_tok = len(prompt_ids_list[i]), len(token_ids_list[i])
            lp = picked[b, n_prompt - 1:n_prompt - 1 + n_tok]
            out[i] = math.exp(-float(lp.mean()))
    return out


def base_ppl(lm: Any, prompt_ids: Sequence[int], token_ids: Sequence[int]) -> float | None:
    """Perplexity of the continuation given its prompt under the frozen model (the fluency proxy)."""
    return base_ppl_batch(lm, [prompt_ids], [token_ids])[0]


def mean_median(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.median(values)


def unigram_overlap(token_ids: Sequence[int], top_ids: Collection[int]) -> float | None:
    """Share of generated tokens among the style corpus's top unigrams."""
    if not token_ids:
        return None
    return sum(1 for t in token_ids if t in top_ids) / len(token_ids)


def bigram_seen_rate(token_ids: Sequence[int], has_bigram: Callable[[int, int], bool]) -> float | None:
    """Share of generated bigrams seen at least once in the style corpus."""
    pairs = list(itertools.pairwise(token_ids))
    if not pairs:
        return None
    return sum(1 for a, b in pairs if has_bigram(a, b)) / len(pairs)


def distinct_n(token_ids: Sequence[int], n: int = 2) -> float | None:
    """Distinct n-grams over all n-grams (low means a repetition loop)."""
    grams = [tuple(token_ids[i:i + n]) for i in range(len(token_ids) - n + 1)]
    if not grams:
        return None
    return len(set(grams)) / len(grams)


def compute_metrics(lm: Any, prompt_ids: Sequence[int], token_ids: Sequence[int], js_bits: Sequence[float],
                    prior: Prior | None, *, base: float | None = None,
                    top_ids: Collection[int] | None = None) -> dict[str, float | None]:
    """Every metric of a continuation, under the METRIC_NAMES keys (style metrics None without a prior).

    `base` skips the model forward when the base PPL is already known; `top_ids` reuses a prior's top unigrams.
    """
    js_mean, js_median = mean_median(list(js_bits))
    metrics: dict[str, float | None] = {
        "style_ppl": None,
        "base_ppl": base if base is not None else (base_ppl(lm, prompt_ids, token_ids) if lm is not None else None),
        "js_mean_bits": js_mean,
        "js_median_bits": js_median,
        "unigram_overlap": None,
        "bigram_seen": None,
        "distinct_2": distinct_n(list(token_ids), 2),
    }
    if prior is not None:
        metrics["style_ppl"] = style_ppl(prior, prompt_ids, token_ids)
        ids = top_ids if top_ids is not None else prior.top_unigram_ids(TOP_UNIGRAMS)
        metrics["unigram_overlap"] = unigram_overlap(token_ids, ids)
        metrics["bigram_seen"] = bigram_seen_rate(list(token_ids), prior.has_bigram)
    return metrics
