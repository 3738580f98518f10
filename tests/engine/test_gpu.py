"""On a CUDA GPU: the demo model decodes as on the CPU, steering gives the CPU's scores, bitsandbytes loads.

The tests marked `gpu` are skipped without CUDA (`pytest -m gpu` on a GPU machine; installer/device-check.sh
runs them). The helpers they use, and the quantization set-up they go through, are checked on the CPU by the
unmarked tests here, so a broken helper shows up without a GPU too.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from engine import models
from engine.decode import stream
from engine.steering import StyleSteeringProcessor
from engine.types import SamplingConfig
from styles.ngrams import count_ngrams
from styles.prior import StylePrior

CUDA = torch.cuda.is_available()
HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None
PROMPT = "The evening air carried a quiet sense of anticipation"
V = 64


def greedy_ids(lm, n: int) -> list[int]:
    gen = stream(lm, PROMPT, SamplingConfig(max_new_tokens=n, greedy=True, repetition_penalty=1.0))
    list(gen)
    return gen.token_ids


def agreement(a: list[int], b: list[int]) -> tuple[int, float]:
    """The length of the common prefix of two token sequences, and the fraction of positions that agree."""
    prefix = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    n = max(len(a), len(b))
    same = sum(x == y for x, y in zip(a, b, strict=False))
    return prefix, (same / n if n else 1.0)


def small_prior(device: str) -> StylePrior:
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, V, 400), np.tile(np.arange(7, 15), 30)]
    counts = count_ngrams([np.asarray(d, dtype=np.int64) for d in docs], V)
    return StylePrior.from_counts(counts, vocab_size=V, tokenizer_fingerprint="gpu-test", device=device)


def steered_on(device: str, mode: str) -> torch.Tensor:
    """Fixed ids and scores steered on `device` (two rows, the first at half lambda); returned on the CPU."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V, (2, 12), generator=gen)
    scores = torch.randn(2, V + 3, generator=gen)  # padded columns past the prior's vocabulary
    proc = StyleSteeringProcessor(small_prior(device), lam=0.7, mode=mode, row_scale=[0.5, 1.0])
    return proc(ids.to(device), scores.to(device)).cpu()


# -- the helpers, on the CPU -------------------------------------------------------------------------

def test_agreement():
    assert agreement([1, 2, 3, 4], [1, 2, 3, 4]) == (4, 1.0)
    assert agreement([1, 2, 9, 4], [1, 2, 3, 4]) == (2, 0.75)
    assert agreement([1, 2], [1, 2, 3, 4]) == (2, 0.5)
    assert agreement([], []) == (0, 1.0)


@pytest.mark.parametrize("mode", ["paper", "dense", "budget"])
def test_steered_on_the_cpu_is_deterministic_and_steers(mode):
    a, b = steered_on("cpu", mode), steered_on("cpu", mode)
    assert torch.equal(a, b) and not torch.isnan(a).any()
    gen = torch.Generator().manual_seed(1)
    torch.randint(0, V, (2, 12), generator=gen)
    scores = torch.randn(2, V + 3, generator=gen)
    assert not torch.equal(a[:, :V], scores[:, :V])  # the style moved something
    kept = torch.isfinite(a) if mode == "budget" else torch.ones_like(a, dtype=torch.bool)  # budget: the floor cuts
    assert torch.isfinite(a[:, :V]).any(dim=-1).all()  # every row keeps tokens to choose from
    assert torch.equal(a[:, V:][kept[:, V:]], scores[:, V:][kept[:, V:]])  # padded columns: left alone or cut


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is not installed")
@pytest.mark.parametrize("quantize", ["8bit", "4bit"])
def test_quantization_config_for_cuda_is_built_without_a_gpu(quantize):
    config = models._quantization_config(quantize, torch.device("cuda"), torch.bfloat16)
    assert config.load_in_8bit is (quantize == "8bit") and config.load_in_4bit is (quantize == "4bit")
    if quantize == "4bit":
        assert config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_compute_dtype == torch.bfloat16


def test_cuda_dtype_is_bf16_or_fp16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert models._dtype_for(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert models._dtype_for(torch.device("cuda")) == torch.float16


# -- on the GPU --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cuda_lm():
    try:
        return models.load_model("demo", device="cuda")
    except models.ModelLoadError as exc:
        pytest.skip(f"demo model unavailable: {exc}")


@pytest.mark.parametrize("mode", ["paper", "dense", "budget"])
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_steering_on_cuda_tensors_matches_the_cpu(mode):
    torch.testing.assert_close(steered_on("cuda", mode), steered_on("cpu", mode), rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.model
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_demo_greedy_on_cuda_agrees_with_the_cpu(demo_lm, cuda_lm, record_property):
    n = 24
    reference = greedy_ids(demo_lm, n)
    assert cuda_lm.device.type == "cuda" and cuda_lm.dtype in (torch.bfloat16, torch.float16)
    half = greedy_ids(cuda_lm, n)
    prefix_half, same_half = agreement(half, reference)
    cuda_lm.model.float()  # the CPU's precision on the GPU: only kernel differences remain
    try:
        full = greedy_ids(cuda_lm, n)
    finally:
        cuda_lm.model.to(cuda_lm.dtype)
    prefix_full, same_full = agreement(full, reference)
    record_property("greedy_agreement", {"fp32": [prefix_full, same_full],
                                         str(cuda_lm.dtype): [prefix_half, same_half]})
    print(f"greedy agreement with the CPU over {n} tokens: fp32 prefix {prefix_full} ({same_full:.0%}), "
          f"{cuda_lm.dtype} prefix {prefix_half} ({same_half:.0%})")
    assert prefix_full >= 16  # fp32 on the GPU: identical but for a rare near-tie late in the run
    assert prefix_half >= 4  # bf16/fp16 rounding may flip a near-tie, never the first tokens


@pytest.mark.gpu
@pytest.mark.model
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes is not installed")
@pytest.mark.parametrize("quantize", ["8bit", "4bit"])
def test_quantized_load_decodes(quantize):
    lm = models.load_model("demo", device="cuda", quantize=quantize)
    try:
        kinds = {type(m).__name__ for m in lm.model.modules()}
        assert ("Linear8bitLt" if quantize == "8bit" else "Linear4bit") in kinds
        ids = greedy_ids(lm, 8)
        assert len(ids) == 8 and all(0 <= t < lm.vocab_size for t in ids)
    finally:
        del lm
        torch.cuda.empty_cache()
