"""Weight precision on the CPU: fp32, bf16 or int8 (int8 weights, bf16 activations).

int8 swaps every Linear but the output head for Int8Linear (per output row weight scales, torch's
weight-only int8 kernel), about 2.7x faster per matrix-vector product than fp32 on an AVX-512 CPU
with bf16 instructions, at a quarter of the weight memory. bf16 casts the weights, and is offered
only where the CPU has bf16 instructions (AVX-512-BF16 or AMX): elsewhere bf16 matmuls are slower
than fp32. The logits are cast to float32 before steering, JS and the metrics (engine.decode),
whatever the weights are.

`auto` measures, once per model and machine, the greedy agreement with fp32 and the speed of each
precision this CPU has, on a few short prompts, and keeps the fastest that agrees with fp32 well
enough; the choice is cached in the data folder, so later loads only read it.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from engine import checkpoint_pages
from engine.types import PRECISION_CHOICES

AUTO_PROMPTS = (
    "The evening air carried a quiet sense of anticipation",
    "She opened the letter and read it twice before",
    "In the morning the village square was",
)
AUTO_TOKENS = 12
# Teacher-forced top-1 agreement with fp32 a precision needs for `auto` to choose it.
AUTO_MIN_AGREEMENT = 0.9
CACHE_FILE = "precision.json"
# Int8Linear: up to this many rows run the int8 kernel row by row, more the bf16 matmul.
ROW_KERNEL_MAX = 4


class PrecisionError(ValueError):
    """An unknown precision, or one this device cannot run; the message is meant for the user."""


def parse_precision(value: str | None) -> str:
    """`value` (None means fp32) checked against the choices; PrecisionError naming them otherwise."""
    if value is None or value == "":
        return "fp32"
    if value not in PRECISION_CHOICES:
        raise PrecisionError(f"--precision must be one of {', '.join(PRECISION_CHOICES)}, got {value!r}")
    return value


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 matmul instructions (AVX-512-BF16 or AMX-BF16)."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    if callable(probe):
        try:
            if probe():
                return True
        except RuntimeError:  # pragma: no cover - a build without the probe's kernels
            pass
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if callable(amx):
        try:
            if amx():
                return True
        except RuntimeError:  # pragma: no cover
            pass
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def cpu_has_int8() -> bool:
    """Whether this torch build has the weight-only int8 matmul kernel."""
    return hasattr(torch.ops.aten, "_weight_int8pack_mm")


def cpu_precisions() -> list[str]:
    """The precisions this CPU runs well, fp32 first."""
    out = ["fp32"]
    if cpu_has_bf16():
        out.append("bf16")
    if cpu_has_int8():
        out.append("int8")
    return out


def check_available(precision: str) -> None:
    """PrecisionError where this CPU cannot run `precision` (fp32 and auto always can)."""
    if precision in ("fp32", "auto") or precision in cpu_precisions():
        return
    if precision == "bf16":
        raise PrecisionError("--precision bf16 needs a CPU with AVX-512-BF16 or AMX (bf16 would be slower than "
                             "fp32 here); use fp32 or int8")
    raise PrecisionError("--precision int8 needs torch's int8 weight kernel (torch 2.3 or later); use fp32")


def _owner(model: torch.nn.Module, dotted: str) -> tuple[torch.nn.Module, str]:
    parent_name, _, child = dotted.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


class Int8Linear(torch.nn.Module):
    """A Linear with int8 weights (one bf16 scale per output row); activations stay in bf16.

    A few rows (a decoding step, compare mode) run torch's weight-only int8 kernel row by row (it is
    a matrix-vector kernel: 8 rows at once take 80x one row's time); more (a prefill) multiply against
    the weights cast to bf16 for that call, which the rows amortize.
    Only the weights are quantized: activation outliers (which dynamic int8 quantization rounds away,
    tripling the demo model's perplexity) keep bf16's range.
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        with torch.no_grad():
            w = linear.weight.detach().to(torch.float32, copy=True)  # one layer's copy, rounded in place
            scales = torch.maximum(w.amax(dim=1), -w.amin(dim=1)).clamp(min=1e-8) / 127.0  # no |w| copy
            q = w.div_(scales[:, None]).round_().clamp_(-127, 127).to(torch.int8).contiguous()
        self.qweight: torch.Tensor
        self.scales: torch.Tensor
        self.register_buffer("qweight", q)
        self.register_buffer("scales", scales.to(torch.bfloat16))
        self.bias = linear.bias
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
        if rows.shape[0] <= ROW_KERNEL_MAX:  # the kernel is a matrix-vector product: one call per row
            out = torch.cat([torch.ops.aten._weight_int8pack_mm(rows[i:i + 1], self.qweight, self.scales)
                             for i in range(rows.shape[0])])
        else:  # scale the outputs, not the weights: one cast of the weights per call, no multiply over them
            out = torch.nn.functional.linear(rows, self.qweight.to(torch.bfloat16)) * self.scales
        out = out.to(x.dtype)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def _to_int8(model: Any) -> None:
    """Every Linear but the output head -> Int8Linear, one at a time (in place).

    Each fp32 weight is released as soon as its module is swapped, so the peak is the fp32 model
    plus one layer's int8 weights, never two full copies. The head stays fp32: the logits steer.
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = [n for n, m in model.named_modules()
             if isinstance(m, torch.nn.Linear) and m is not head and m.weight.dim() == 2]
    mappings = checkpoint_pages.checkpoint_mappings()
    for name in names:
        parent, child = _owner(model, name)
        old = getattr(parent, child)
        setattr(parent, child, Int8Linear(old))
        checkpoint_pages.release([old.weight], mappings)


def _to_bf16(model: torch.nn.Module) -> None:
    """Every floating parameter and buffer -> bf16, row-major, one at a time (in place); ties survive."""
    done: dict[int, torch.nn.Parameter] = {}
    mappings = checkpoint_pages.checkpoint_mappings()
    with torch.no_grad():
        for module in model.modules():
            for key, p in list(module._parameters.items()):
                if p is None or not p.is_floating_point():
                    continue
                if id(p) not in done:
                    fresh = p.detach() if p.dtype == torch.bfloat16 and p.is_contiguous() else (
                        checkpoint_pages.converted(p.detach(), torch.bfloat16, mappings=mappings))
                    done[id(p)] = torch.nn.Parameter(fresh, requires_grad=False)
                module._parameters[key] = done[id(p)]
            for key, b in list(module._buffers.items()):
                if b is not None and b.is_floating_point() and key != "inv_freq":
                    module._buffers[key] = b.to(torch.bfloat16)
    config = getattr(model, "config", None)
    if config is not None:
        config.dtype = torch.bfloat16


def convert(model: Any, precision: str, *, keep_original: bool = False) -> Any:
    """`model` in `precision` (fp32: unchanged). In place, unless `keep_original`: then a new model
    that shares every tensor the conversion leaves alone (norms, embeddings of int8), costing only
    the converted weights on top of the original."""
    if precision == "fp32":
        return model
    if keep_original:
        shared: dict[int, Any] = {}
        for t in list(model.parameters()) + list(model.buffers()):
            shared[id(t)] = t
        model = copy.deepcopy(model, shared)
    if precision == "int8":
        _to_int8(model)
    elif precision == "bf16":
        _to_bf16(model)
    else:
        raise PrecisionError(f"cannot convert to {precision!r}")
    return model


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes held by the weights (parameters and buffers, the int8 weights and scales included; ties once)."""
    seen: set[int] = set()
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


# -- measuring --------------------------------------------------------------------------------

def greedy_ids(model: Any, prompt_ids: list[int], tokens: int) -> list[int]:
    """`tokens` greedy token ids after `prompt_ids`, with the KV cache."""
    from transformers import DynamicCache

    from engine.decode import _cache_keyword

    ids = torch.tensor([prompt_ids], dtype=torch.long)
    out: list[int] = []
    cache = {_cache_keyword(model): DynamicCache(config=model.config)}
    with torch.inference_mode():
        for _ in range(tokens):
            res = model(input_ids=ids, use_cache=True, logits_to_keep=1, **cache)
            token = int(res.logits[0, -1].float().argmax())
            out.append(token)
            ids = torch.tensor([[token]], dtype=torch.long)
    return out


def teacher_forced_agreement(model: Any, prompt_ids: list[int], reference: list[int]) -> tuple[int, int]:
    """(positions where `model`'s argmax is the reference's next token, positions), feeding the reference."""
    ids = torch.tensor([prompt_ids + reference], dtype=torch.long)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0].float()
    start = len(prompt_ids) - 1
    guesses = logits[start:start + len(reference)].argmax(-1).tolist()
    return sum(int(g == r) for g, r in zip(guesses, reference, strict=True)), len(reference)


def measure(model: Any, prompts: list[list[int]], tokens: int, precisions: list[str]) -> dict[str, dict[str, float]]:
    """Agreement with fp32 and greedy tokens/s of each precision (fp32 included), one after the other.

    Each variant is made beside the fp32 model (sharing what it does not convert) and dropped after.
    """
    reference: list[list[int]] = []
    results: dict[str, dict[str, float]] = {}
    start = time.perf_counter()
    for p in prompts:
        reference.append(greedy_ids(model, p, tokens))
    results["fp32"] = {"agreement": 1.0, "tps": len(prompts) * tokens / (time.perf_counter() - start)}
    for precision in precisions:
        if precision == "fp32":
            continue
        variant = convert(model, precision, keep_original=True)
        greedy_ids(variant, prompts[0], 2)  # warm-up: the first calls pack and allocate
        start = time.perf_counter()
        for p in prompts:
            greedy_ids(variant, p, tokens)
        tps = len(prompts) * tokens / (time.perf_counter() - start)
        agree = total = 0
        for p, ref in zip(prompts, reference, strict=True):
            a, n = teacher_forced_agreement(variant, p, ref)
            agree, total = agree + a, total + n
        results[precision] = {"agreement": agree / max(total, 1), "tps": tps}
        del variant
    return results


def choose(results: dict[str, dict[str, float]], min_agreement: float = AUTO_MIN_AGREEMENT) -> str:
    """The fastest precision whose agreement with fp32 is at least `min_agreement` (fp32 always qualifies)."""
    ok = {p: r["tps"] for p, r in results.items() if p == "fp32" or r["agreement"] >= min_agreement}
    return max(ok, key=lambda p: ok[p])


# -- the auto cache ---------------------------------------------------------------------------

def machine_key() -> str:
    """What the measured speed depends on besides the model: the CPU, the torch build, the threads."""
    model_name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpu = model_name or platform.processor() or platform.machine()
    return f"{cpu} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def cache_path() -> Path:
    from styles.paths import user_dir

    return user_dir() / CACHE_FILE


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cached_choice(model_key: str) -> str | None:
    """The precision `auto` chose before for this model on this machine, if any."""
    entry = _read_cache(cache_path()).get(f"{model_key} || {machine_key()}")
    if isinstance(entry, dict) and entry.get("precision") in PRECISION_CHOICES:
        return str(entry["precision"])
    return None


def store_choice(model_key: str, precision: str, results: dict[str, dict[str, float]]) -> None:
    """Remember `auto`'s choice (written atomically; a cache that cannot be written is only slower)."""
    path = cache_path()
    data = _read_cache(path)
    data[f"{model_key} || {machine_key()}"] = {"precision": precision, "measured": results,
                                              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)


def auto_precision(model: Any, tokenizer: Any, model_key: str) -> tuple[str, bool]:
    """(the precision `auto` picks for this model here, whether it was measured now rather than cached)."""
    found = cached_choice(model_key)
    if found is not None:
        return found, False
    prompts = [list(tokenizer(p)["input_ids"]) for p in AUTO_PROMPTS]
    results = measure(model, prompts, AUTO_TOKENS, cpu_precisions())
    chosen = choose(results)
    store_choice(model_key, chosen, results)
    return chosen, True
