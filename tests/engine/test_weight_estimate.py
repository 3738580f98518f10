"""The memory a model's weights will take at a precision, read from headers before loading."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.weight_estimate import ParamCounts, bytes_at, estimated_weight_bytes, param_counts

SHARED = Path(__file__).resolve().parents[3] / "shared" / "tinyllama-like"
# SmolLM2-135M: 30 layers of q, k, v, o (576 wide, 3 of 9 heads for k and v) and a 1536-wide MLP; tied head.
DEMO_LINEAR = 30 * (576 * 576 * 2 + 192 * 576 * 2 + 1536 * 576 * 3)
DEMO_ROWS = 30 * (576 * 2 + 192 * 2 + 1536 * 2 + 576)
DEMO_OTHER = 49152 * 576 + 30 * 2 * 576 + 576  # the embeddings (also the head), the norms


def _demo_counts() -> ParamCounts:
    counts = param_counts("demo")
    if counts is None:
        pytest.skip("the demo model is not installed")
    return counts


def test_the_demo_model_counts_from_its_header() -> None:
    counts = _demo_counts()
    assert counts == ParamCounts(DEMO_LINEAR, DEMO_ROWS, DEMO_OTHER)
    assert counts.total == 134_515_008  # SmolLM2-135M's parameters, tied head once
    assert estimated_weight_bytes("demo", "fp32") == 4 * counts.total
    assert estimated_weight_bytes("demo", "bf16") == 2 * counts.total
    # int8: a byte per Linear weight and a bf16 scale per row; embeddings and norms stay fp32.
    assert estimated_weight_bytes("demo", "int8") == DEMO_LINEAR + 2 * DEMO_ROWS + 4 * DEMO_OTHER


def test_the_bundled_gguf_counts_like_its_conversion() -> None:
    from engine.models import demo_gguf_path

    _demo_counts()
    gguf = demo_gguf_path()
    assert param_counts(str(gguf)) == ParamCounts(DEMO_LINEAR, DEMO_ROWS, DEMO_OTHER)


def test_the_estimate_matches_what_the_loaded_model_holds() -> None:
    from engine.models import ModelLoadError, load_model

    _demo_counts()
    try:
        lm = load_model("demo", device="cpu", precision="int8")
    except ModelLoadError as exc:
        pytest.skip(str(exc))
    estimate = estimated_weight_bytes("demo", "int8")
    assert estimate is not None
    # Only the rotary inverse frequencies (a buffer, not a weight) are left out of the estimate.
    assert 0 <= lm.memory_bytes() - estimate < 4096


@pytest.fixture(scope="session")
def tinyllama2(tmp_path_factory) -> Path:
    """A 2-layer folder shaped like TinyLlama (bf16 on disk, untied head), made once per session."""
    if not (SHARED / "make.py").is_file():
        pytest.skip("../shared/tinyllama-like is not beside the checkout")
    out = tmp_path_factory.mktemp("tinyllama2")
    subprocess.run([sys.executable, str(SHARED / "make.py"), str(out), "--layers", "2"], check=True,
                   capture_output=True, timeout=600)
    return out


def test_a_tinyllama_shaped_folder(tinyllama2: Path) -> None:
    per_layer = 2048 * 2048 * 2 + 256 * 2048 * 2 + 5632 * 2048 * 3
    rows = 2048 * 2 + 256 * 2 + 5632 * 2 + 2048
    other = 32000 * 2048 * 2 + 2 * 2 * 2048 + 2048  # embeddings and the untied head, the norms
    counts = param_counts(str(tinyllama2))
    assert counts == ParamCounts(2 * per_layer, 2 * rows, other)
    assert estimated_weight_bytes(str(tinyllama2), "fp32") == 4 * counts.total
    assert estimated_weight_bytes(str(tinyllama2), "bf16") == 2 * counts.total
    int8 = estimated_weight_bytes(str(tinyllama2), "int8")
    assert int8 == 2 * per_layer + 2 * 2 * rows + 4 * other  # the head stays fp32


def test_sharded_checkpoints_add_up(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"model.layers.0.mlp.up_proj.weight": torch.zeros(8, 4),
               "model.embed_tokens.weight": torch.zeros(10, 4)}, str(tmp_path / "a.safetensors"))
    save_file({"lm_head.weight": torch.zeros(10, 4), "model.norm.weight": torch.zeros(4)},
              str(tmp_path / "b.safetensors"))
    index = {"weight_map": {"model.layers.0.mlp.up_proj.weight": "a.safetensors",
                            "model.embed_tokens.weight": "a.safetensors",
                            "lm_head.weight": "b.safetensors", "model.norm.weight": "b.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert param_counts(str(tmp_path)) == ParamCounts(32, 8, 84)
    assert estimated_weight_bytes(str(tmp_path), "int8") == 32 + 16 + 4 * 84


def test_unknown_is_none(tmp_path: Path) -> None:
    assert estimated_weight_bytes(str(tmp_path / "missing"), "fp32") is None
    (tmp_path / "config.json").write_text("{}")  # a folder without safetensors weights
    assert estimated_weight_bytes(str(tmp_path), "fp32") is None
    (tmp_path / "model.safetensors").write_bytes(b"\xff" * 16)  # a damaged header
    assert estimated_weight_bytes(str(tmp_path), "fp32") is None
    assert estimated_weight_bytes("nobody/not-downloaded", "fp32") is None  # the hub is never asked
    assert bytes_at(ParamCounts(1, 1, 1), "auto") is None  # auto depends on what it measures
