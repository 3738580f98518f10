"""The precisions side by side on one CPU: decode speed, agreement with fp32, perplexity, peak memory.

Run as `python -m engine.precision_bench MODEL PRECISION TOKENS` it loads MODEL at PRECISION in a
fresh process, decodes TOKENS greedy tokens and prints one JSON object with its peak resident memory
(ru_maxrss is the peak of the whole process life, so it is measured where nothing else ran before).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from engine.metrics import base_ppl
from engine.models import LoadedModel
from engine.precision import AUTO_PROMPTS, convert, greedy_ids, teacher_forced_agreement, weight_bytes

HELD_OUT_FILE = "tinyshakespeare.txt"
HELD_OUT_TOKENS = 256
AGREEMENT_TOKENS = 32


def held_out_ids(lm: LoadedModel, corpora_dir: Path | None, tokens: int = HELD_OUT_TOKENS) -> list[int]:
    """`tokens` token ids of text the style benchmark does not use (tinyshakespeare, from its middle)."""
    path = corpora_dir / HELD_OUT_FILE if corpora_dir is not None else None
    if path is not None and path.is_file():
        text = path.read_text(encoding="utf-8")
        text = text[len(text) // 2:][: 8 * tokens + 200]
    else:
        text = " ".join(AUTO_PROMPTS) * 20
    ids: list[int] = lm.tokenizer(text)["input_ids"]
    return ids[:tokens]


def _variant(lm: LoadedModel, precision: str) -> LoadedModel:
    if precision == "fp32":
        return lm
    model = convert(lm.model, precision, keep_original=True)
    return dataclasses.replace(lm, model=model, dtype=next(model.parameters()).dtype, precision=precision)


def run_precision_bench(lm: LoadedModel, precisions: list[str], *, tokens: int = 64, repeats: int = 3,
                        corpora_dir: Path | None = None,
                        log: Callable[[str], None] = lambda _line: None) -> dict[str, Any]:
    """Greedy tokens/s of each precision and of HF generate in fp32 (interleaved repeats, medians);
    teacher-forced agreement of each with fp32's greedy continuations; perplexity on held-out text.

    `lm` must be the fp32 CPU model; the other precisions are made beside it, sharing what they do not
    convert, and dropped at the end.
    """
    from engine.decode import stream
    from engine.types import SamplingConfig

    if lm.precision != "fp32" or lm.device.type != "cpu":
        raise ValueError("the precision benchmark needs the fp32 model on the CPU")
    order = ["fp32"] + [p for p in precisions if p != "fp32"]
    variants = {p: _variant(lm, p) for p in order}
    plain = SamplingConfig(max_new_tokens=tokens, greedy=True, repetition_penalty=1.0, diagnostics=False,
                           n_alternatives=0, stop_at_eos=False)
    prompt = AUTO_PROMPTS[0]
    ids = lm.tokenizer(prompt, return_tensors="pt").input_ids

    def hf_generate() -> int:
        with torch.inference_mode():
            out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens,
                                    min_new_tokens=tokens, do_sample=False,
                                    pad_token_id=lm.tokenizer.pad_token_id or lm.tokenizer.eos_token_id)
        return int(out.shape[1] - ids.shape[1])

    def loop(v: LoadedModel) -> Callable[[], int]:
        def run() -> int:
            gen = stream(v, prompt, plain)
            for _ in gen:
                pass
            return len(gen.token_ids)
        return run

    runs: dict[str, Callable[[], int]] = {"hf_generate_fp32": hf_generate}
    runs.update({p: loop(v) for p, v in variants.items()})
    for fn in runs.values():  # warm-up: first calls allocate, and pack the int8 weights
        fn()
    samples: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            n = fn()
            samples[name].append(n / (time.perf_counter() - start))
            log(f"repeat {r + 1}/{repeats} {name}: {samples[name][-1]:.1f} tok/s")
    tps = {k: statistics.median(v) for k, v in samples.items()}

    prompts = [list(lm.tokenizer(p)["input_ids"]) for p in AUTO_PROMPTS]
    agreement_tokens = min(tokens, AGREEMENT_TOKENS)
    reference = [greedy_ids(lm.model, p, agreement_tokens) for p in prompts]
    held_out = held_out_ids(lm, corpora_dir)
    agreement: dict[str, float] = {}
    ppl: dict[str, float] = {}
    for p, v in variants.items():
        agree = total = 0
        for prompt_ids, ref in zip(prompts, reference, strict=True):
            a, n = teacher_forced_agreement(v.model, prompt_ids, ref)
            agree, total = agree + a, total + n
        agreement[p] = agree / max(total, 1)
        held_ppl = base_ppl(v, held_out[:1], held_out[1:])
        ppl[p] = math.nan if held_ppl is None else held_ppl
        log(f"{p}: agreement with fp32 {agreement[p]:.3f}, held-out perplexity {ppl[p]:.3f}")
    best = max(order, key=lambda p: tps[p])
    result = {
        "precisions": order, "tps": {p: tps[p] for p in order}, "hf_generate_fp32_tps": tps["hf_generate_fp32"],
        "best": best, "best_over_hf_fp32": tps[best] / tps["hf_generate_fp32"],
        "over_fp32": {p: tps[p] / tps["fp32"] for p in order},
        "agreement": agreement, "agreement_positions": len(prompts) * agreement_tokens,
        "perplexity": ppl, "perplexity_change": {p: ppl[p] / ppl["fp32"] - 1.0 for p in order},
        "held_out_tokens": len(held_out), "weights_bytes": {p: weight_bytes(v.model) for p, v in variants.items()},
        "tokens": tokens, "repeats": repeats,
    }
    variants.clear()
    return result


def measure_memory(model: str, precision: str, tokens: int, timeout: float = 600.0) -> dict[str, Any]:
    """Peak resident memory of loading `model` at `precision` and decoding `tokens` tokens, in a fresh process.

    `peak_rss_over_weights` divides the process's whole peak (Python, torch and the libraries included)
    by the weights' bytes; `baseline_rss_bytes` is the peak before the load, after the imports;
    `runtime_rss_bytes` the resident memory as the weights start loading (the tokenizer loaded too), so
    `peak_rss_above_runtime_over_weights` is what loading and decoding the weights cost: 1.0 when the
    weights are the only copy.
    """
    cmd = [sys.executable, "-m", "engine.precision_bench", model, precision, str(tokens)]
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=root, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the memory measurement failed: {tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _status_bytes(field: str) -> int | None:
    """A memory field of /proc/self/status (VmHWM, VmRSS) in bytes; None where it cannot be read."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _peak_rss_bytes() -> int:
    """This process's peak resident memory. On Linux VmHWM: ru_maxrss carries over a big parent's across exec."""
    found = _status_bytes("VmHWM")
    if found is not None:
        return found
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB, macOS bytes


def _current_rss_bytes() -> int:
    """This process's resident memory now (VmRSS; 0 where /proc is missing)."""
    return _status_bytes("VmRSS") or 0


def _memory_main(model: str, precision: str, tokens: int) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM  # noqa: F401 - imported before the baseline is read

    from engine.decode import stream
    from engine.models import load_model
    from engine.types import SamplingConfig

    baseline = _peak_rss_bytes()
    runtime: list[int] = []

    def stage(name: str, _fraction: float) -> None:
        if name == "loading the weights":  # the interpreter, the libraries and the tokenizer are in
            runtime.append(max(_current_rss_bytes(), baseline))

    start = time.perf_counter()
    lm = load_model(model, device="cpu", precision=precision, progress=stage)
    load_s = time.perf_counter() - start
    after_load = _peak_rss_bytes()
    gen = stream(lm, AUTO_PROMPTS[0], SamplingConfig(max_new_tokens=tokens, greedy=True, stop_at_eos=False,
                                                     diagnostics=False, n_alternatives=0))
    for _ in gen:
        pass
    peak = _peak_rss_bytes()
    weights = weight_bytes(lm.model)
    before_weights = runtime[0] if runtime else baseline
    return {"precision": lm.precision, "weights_bytes": weights, "baseline_rss_bytes": baseline,
            "runtime_rss_bytes": before_weights,
            "peak_rss_after_load_bytes": after_load, "peak_rss_bytes": peak,
            "peak_rss_over_weights": peak / weights,
            "peak_rss_above_baseline_over_weights": (peak - baseline) / weights,
            "peak_rss_above_runtime_over_weights": (peak - before_weights) / weights,
            "load_seconds": load_s, "tokens": len(gen.token_ids)}


if __name__ == "__main__":
    print(json.dumps(_memory_main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
