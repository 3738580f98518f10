"""Side-by-side throughput ratios of the decode loop (and the style library), measured in one run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from transformers import DynamicCache

from engine.decode import (
    TextTracker,
    _AltText,
    _cache_keyword,
    _choose,
    _record,
    _row_generators,
    _SideState,
    _Step,
    compare_stream,
    sampler_chain,
    stream,
)
from engine.kvcache import PrefixCache
from engine.models import LoadedModel
from engine.steering import StyleSteeringProcessor
from engine.types import Mode, SamplingConfig

BENCH_PROMPT = "The evening air carried a quiet sense of anticipation"
BENCH_STYLE_FILE = "sherlock_holmes.txt"


def _bench_text(corpora_dir: Path | None) -> str:
    """The benchmark's style corpus from ../shared/corpora, or the prompt itself when absent."""
    path = corpora_dir / BENCH_STYLE_FILE if corpora_dir is not None else None
    return path.read_text(encoding="utf-8") if path is not None and path.is_file() else BENCH_PROMPT * 50


def bench_prior(lm: LoadedModel, corpora_dir: Path | None) -> Any:
    """A style prior for the benchmark: a corpus from ../shared/corpora, or the prompt itself when absent."""
    from styles.ngrams import count_ngrams
    from styles.prior import StylePrior

    text = _bench_text(corpora_dir)
    ids = np.asarray(lm.tokenizer(text)["input_ids"], dtype=np.int64)
    return StylePrior.from_counts(count_ngrams([ids], lm.vocab_size), vocab_size=lm.vocab_size,
                                  tokenizer_fingerprint=lm.fingerprint, device=lm.device)


def _timed(fn: Callable[[], int]) -> tuple[float, float]:
    """(tokens per wall second, tokens per CPU second) of one call of fn, which returns its token count.

    CPU time is reported beside wall time because a shared machine's other load inflates wall time
    far more than the process's own CPU time.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    n = fn()
    return n / (time.perf_counter() - wall), n / max(time.process_time() - cpu, 1e-9)


def run_decode_bench(lm: LoadedModel, prior: Any, *, tokens: int = 256, repeats: int = 3,
                     log: Callable[[str], None] = lambda _line: None) -> dict[str, Any]:
    """Interleaved repeats of each variant; medians of tokens/s and the ratios the targets name."""
    plain = SamplingConfig(max_new_tokens=tokens, greedy=True, repetition_penalty=1.0, diagnostics=False,
                           n_alternatives=0, stop_at_eos=False)
    diag = SamplingConfig(max_new_tokens=tokens, greedy=True, repetition_penalty=1.0, diagnostics=True,
                          n_alternatives=5, stop_at_eos=False)
    ids = lm.tokenizer(BENCH_PROMPT, return_tensors="pt").input_ids.to(lm.device)

    def hf_generate() -> int:
        with torch.inference_mode():
            out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                    min_new_tokens=tokens, do_sample=False,
                                    pad_token_id=lm.tokenizer.pad_token_id or lm.tokenizer.eos_token_id)
        return out.shape[1] - ids.shape[1]

    def loop(sampling: SamplingConfig, steered: bool) -> Callable[[], int]:
        def run() -> int:
            proc = StyleSteeringProcessor(prior, lam=0.3, mode="dense") if steered else None
            gen = stream(lm, BENCH_PROMPT, sampling, proc)
            for _ in gen:
                pass
            return len(gen.token_ids)
        return run

    def compare() -> int:
        gen = compare_stream(lm, BENCH_PROMPT, plain, StyleSteeringProcessor(prior, lam=0.3, mode="dense"))
        for _ in gen:
            pass
        return len(gen.baseline.token_ids) + len(gen.steered.token_ids)

    def sequential() -> int:  # the two sides of compare mode, one after the other
        return variants["unsteered"]() + variants["steered"]()

    variants: dict[str, Callable[[], int]] = {
        "hf_generate": hf_generate,
        "unsteered": loop(plain, False),
        "steered": loop(plain, True),
        "steered_diagnostics": loop(diag, True),
        "compare": compare,
        "sequential_pair": sequential,
    }
    variants["unsteered"]()  # warm-up: the first run allocates and fills caches
    samples: dict[str, list[float]] = {k: [] for k in variants}
    cpu_samples: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(repeats):
        for name, fn in variants.items():
            wall, cpu = _timed(fn)
            samples[name].append(wall)
            cpu_samples[name].append(cpu)
            log(f"repeat {r + 1}/{repeats} {name}: {wall:.1f} tok/s ({cpu:.1f} per CPU second)")
    tps = {k: statistics.median(v) for k, v in samples.items()}
    cpu_tps = {k: statistics.median(v) for k, v in cpu_samples.items()}
    return {"tps": tps, "ratios": _ratios(tps), "cpu_tps": cpu_tps, "cpu_ratios": _ratios(cpu_tps),
            "overhead_ms_per_step": step_costs(lm, prior, steps=tokens),
            "samples": samples, "tokens": tokens, "repeats": repeats, "model": lm.name, "device": str(lm.device),
            "threads": torch.get_num_threads()}


def context_ids(lm: LoadedModel, tokens: int, corpora_dir: Path | None = None) -> list[int]:
    """`tokens` token ids of running text (the benchmark corpus, repeated when it is shorter)."""
    ids: list[int] = lm.tokenizer(_bench_text(corpora_dir)[: 12 * tokens + 1000])["input_ids"]
    while len(ids) < tokens:
        ids = ids + ids
    return ids[:tokens]


def run_ttft_bench(lm: LoadedModel, *, context_tokens: int = 1500, repeats: int = 3, corpora_dir: Path | None = None,
                   log: Callable[[str], None] = lambda _line: None) -> dict[str, Any]:
    """Time to the first token of a `context_tokens` context, prefilled in full and with the context reused.

    Fresh: what the first suggestion at a place costs. Reused: what Ctrl+R at the same place costs,
    the context's keys and values kept from the generation before (engine.kvcache). Interleaved
    repeats with the app's default sampling and diagnostics; medians.
    """
    if context_tokens < 2:
        raise ValueError(f"the context must be at least 2 tokens, got {context_tokens}")
    if context_tokens > lm.context_length - 1:
        raise ValueError(f"a {context_tokens}-token context does not fit the model's "
                         f"{lm.context_length}-token window with a token to generate")
    ids = context_ids(lm, context_tokens, corpora_dir)
    sampling = SamplingConfig(max_new_tokens=1)

    def first_token(prefix: PrefixCache | None) -> float:
        start = time.perf_counter()
        gen = stream(lm, ids, sampling, prefix=prefix)
        for _ in gen:
            break
        return time.perf_counter() - start

    prefix = PrefixCache()
    first_token(prefix)  # warm-up, and the context the reused runs find
    fresh, reused = [], []
    for r in range(repeats):
        fresh.append(first_token(None))
        reused.append(first_token(prefix))
        log(f"repeat {r + 1}/{repeats} time to first token, {context_tokens}-token context: "
            f"fresh {1000 * fresh[-1]:.1f} ms, reused {1000 * reused[-1]:.1f} ms")
    fresh_s, reused_s = statistics.median(fresh), statistics.median(reused)
    return {"context_tokens": context_tokens, "fresh_ms": 1000 * fresh_s, "reused_ms": 1000 * reused_s,
            "ratio": reused_s / fresh_s, "prefill_tps": context_tokens / fresh_s, "repeats": repeats,
            "reused_tokens": prefix.last_reused}


def _ratios(tps: dict[str, float]) -> dict[str, float]:
    return {
        "steered_over_unsteered": tps["steered"] / tps["unsteered"],
        "diagnostics_over_unsteered": tps["steered_diagnostics"] / tps["unsteered"],
        "loop_over_hf_generate": tps["unsteered"] / tps["hf_generate"],
        # both produce 2 x tokens; compare does it in one batched forward per step
        "compare_over_sequential": tps["compare"] / tps["sequential_pair"],
    }


def _median_ms(samples: list[float]) -> float:
    return 1000.0 * statistics.median(samples)


def step_costs(lm: LoadedModel, prior: Any, *, steps: int = 32, mode: Mode = "dense") -> dict[str, float]:
    """Median milliseconds per decoding step of each stage, timed one after the other on the same step.

    forward: the model's one-token forward with the KV cache; prior: the steering processor (style
    term and its injection, budget bisection included); sampling: the sampler chain and the draw
    (the app's default settings); diagnostics: the per-token record (probabilities, JS, alternatives).
    """
    sampling = SamplingConfig(max_new_tokens=steps)
    steering = StyleSteeringProcessor(prior, lam=0.3, mode=mode)
    chain, generators = sampler_chain(sampling), _row_generators([sampling.seed], lm.device)
    prompt = lm.tokenizer(BENCH_PROMPT)["input_ids"]
    side, alt_text = _SideState("steered", TextTracker(lm.tokenizer, prompt)), _AltText(lm.tokenizer)
    history = torch.tensor([prompt], dtype=torch.long, device=lm.device)
    cache = {_cache_keyword(lm.model): DynamicCache(config=lm.model.config)}
    times: dict[str, list[float]] = {"forward": [], "prior": [], "sampling": [], "diagnostics": []}
    clock = time.perf_counter
    with torch.inference_mode():
        logits = lm.model(input_ids=history, use_cache=True, logits_to_keep=1, **cache).logits
        for index in range(steps):
            t0 = clock()
            steered, lams = steering.steer(history, logits[:, -1, :].float())
            t1 = clock()
            token = _choose(chain(cast(torch.LongTensor, history), steered), False, generators)
            t2 = clock()
            _record(side, _Step(index, token.tolist(), [True], logits[:, -1, :].float(), steered, lams.tolist(),
                                [0.0]), 0, sampling, alt_text, set(), True)
            t3 = clock()
            history = torch.cat([history, token.view(1, 1)], dim=-1)
            logits = lm.model(input_ids=token.view(1, 1), use_cache=True, **cache).logits
            t4 = clock()
            for name, seconds in zip(times, (t4 - t3, t1 - t0, t2 - t1, t3 - t2), strict=True):
                times[name].append(seconds)
    return {name: _median_ms(v) for name, v in times.items()}


def prior_step_seconds(prior: Any, steps: int = 200) -> float:
    """Median time to build the dense prior vector (log P_mix) for one context."""
    rng = np.random.default_rng(0)
    times = []
    for _ in range(steps):
        ctx = torch.as_tensor(rng.integers(0, prior.vocab_size, size=(1, 2)))
        start = time.perf_counter()
        prior.log_mix(ctx)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


TARGETS = {
    "steered_over_unsteered": 0.97,
    "diagnostics_over_unsteered": 0.95,
    "loop_over_hf_generate": 1.0,
    "compare_over_sequential": 1.5,
}
TTFT_TARGET = 0.20  # reused over fresh time to first token: at most this
