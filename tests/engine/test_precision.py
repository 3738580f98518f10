"""CPU weight precision: parsing, int8/bf16 models that hand float32 logits to steering, auto's cache."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from engine import precision as prec
from engine.models import ModelLoadError, load_model


def test_parse_precision_names_the_choices() -> None:
    assert prec.parse_precision(None) == "fp32"
    assert prec.parse_precision("int8") == "int8"
    with pytest.raises(prec.PrecisionError, match="auto, fp32, bf16, int8"):
        prec.parse_precision("fp16")


def test_a_bad_precision_fails_before_loading() -> None:
    with pytest.raises(ModelLoadError, match="--precision must be one of"):
        load_model("/nonexistent/model", device="cpu", precision="int4")


def test_int8_linear_is_close_to_fp32() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    q = prec.Int8Linear(linear)
    assert q.qweight.dtype == torch.int8 and q.qweight.shape == (48, 64)
    for rows in (1, 5):  # one decoding step, and several rows (prefill, compare mode)
        x = torch.randn(rows, 64)
        out = q(x)
        assert out.dtype == torch.float32 and out.shape == (rows, 48)
        assert (out - linear(x)).norm() / linear(x).norm() < 0.02



def _variant(lm, precision: str):
    model = prec.convert(lm.model, precision, keep_original=True)
    return dataclasses.replace(lm, model=model, dtype=next(model.parameters()).dtype, precision=precision)


@pytest.mark.model
@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_steering_gets_float32_logits(demo_lm, monkeypatch, precision: str) -> None:
    from engine.bench import bench_prior
    from engine.decode import stream
    from engine.steering import StyleSteeringProcessor
    from engine.types import SamplingConfig

    if precision not in prec.cpu_precisions():
        pytest.skip(f"this CPU does not run {precision}")
    lm = _variant(demo_lm, precision)
    if precision == "int8":
        assert any(isinstance(m, prec.Int8Linear) for m in lm.model.modules())
        assert prec.weight_bytes(lm.model) < 0.7 * prec.weight_bytes(demo_lm.model)
    else:
        assert lm.dtype == torch.bfloat16
    assert not any(isinstance(m, prec.Int8Linear) for m in demo_lm.model.modules())  # the fp32 model is untouched
    assert next(demo_lm.model.parameters()).dtype == torch.float32
    seen: list[torch.dtype] = []
    original = StyleSteeringProcessor.steer

    def recording(self, input_ids, scores):
        seen.append(scores.dtype)
        return original(self, input_ids, scores)

    monkeypatch.setattr(StyleSteeringProcessor, "steer", recording)
    sampling = SamplingConfig(max_new_tokens=4, greedy=True, stop_at_eos=False)
    gen = stream(lm, "The evening air", sampling, StyleSteeringProcessor(bench_prior(lm, None), lam=0.3,
                                                                         mode="dense"))
    records = list(gen)
    assert len(gen.token_ids) == 4 and records
    assert seen and set(seen) == {torch.float32}


@pytest.mark.model
def test_auto_measures_once_and_reuses_the_cache(monkeypatch) -> None:
    monkeypatch.setattr(prec, "AUTO_PROMPTS", prec.AUTO_PROMPTS[:2])  # bounded anyway; shorter for the test
    monkeypatch.setattr(prec, "AUTO_TOKENS", 4)
    lm = load_model("demo", device="cpu", precision="auto")
    assert lm.precision in prec.cpu_precisions()
    data = json.loads(prec.cache_path().read_text(encoding="utf-8"))
    (entry,) = data.values()
    assert entry["precision"] == lm.precision
    assert set(entry["measured"]) == set(prec.cpu_precisions())
    assert all(0.0 <= r["agreement"] <= 1.0 and r["tps"] > 0 for r in entry["measured"].values())
    assert any("precision auto" in n for n in lm.notices)

    def no_measuring(*_args, **_kwargs):
        raise AssertionError("auto measured again instead of reading its cache")

    monkeypatch.setattr(prec, "measure", no_measuring)
    again = load_model("demo", device="cpu", precision="auto")
    assert again.precision == lm.precision
    assert not any("precision auto" in n for n in again.notices)


def _tiny_bf16_llama(folder) -> None:
    """A 2-layer Llama with TinyLlama's tokenizer, stored in bf16 like TinyLlama."""
    import shutil
    from pathlib import Path

    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = Path(__file__).resolve().parents[3] / "shared" / "tinyllama-like" / "tokenizer"
    if not tokenizer.is_dir():
        pytest.skip("../shared/tinyllama-like is not beside the checkout")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)
    for f in tokenizer.iterdir():
        shutil.copy(f, folder / f.name)


def test_a_bf16_checkpoint_loads_to_int8_without_an_fp32_copy(tmp_path) -> None:
    folder = tmp_path / "tiny"
    _tiny_bf16_llama(folder)
    from engine.models import _checkpoint_dtype

    assert _checkpoint_dtype(str(folder)) == "bfloat16"  # so the weights load as bf16, then convert
    direct = load_model(str(folder), device="cpu", precision="int8")
    assert direct.precision == "int8" and "int8" in direct.describe()
    assert any(isinstance(m, prec.Int8Linear) for m in direct.model.modules())
    assert direct.model.get_input_embeddings().weight.dtype == torch.float32  # the rest is fp32, as from fp32
    via_fp32 = load_model(str(folder), device="cpu")
    via_fp32.model = prec.convert(via_fp32.model, "int8")
    ids = torch.tensor([direct.tokenizer("Hello there, my friend")["input_ids"]])
    with torch.inference_mode():
        a, b = direct.model(input_ids=ids).logits, via_fp32.model(input_ids=ids).logits
    assert a.dtype == torch.float32 and torch.equal(a, b)
    bf16 = load_model(str(folder), device="cpu", precision="bf16")
    assert bf16.precision == "bf16" and bf16.dtype == torch.bfloat16
