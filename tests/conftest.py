"""Test-wide set-up: offscreen Qt, a throwaway data folder per test, and the shared demo model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub

REPO = Path(__file__).resolve().parents[1]
# The converted demo model is cached across tests (and across runs on one checkout):
# converting the GGUF takes ~17 s, loading the cache ~1 s.
os.environ.setdefault("STYLESTEER_MODELS", str(REPO / ".test-cache" / "models"))


def corpora_path() -> Path:
    """../shared/corpora beside the repository (or $STYLESTEER_CORPORA)."""
    return Path(os.environ.get("STYLESTEER_CORPORA", REPO.parent / "shared" / "corpora"))


@pytest.fixture(autouse=True)
def _user_home(tmp_path, monkeypatch):
    """Each test gets its own empty data folder: tests never touch a real user's files."""
    home = tmp_path / "stylesteer-home"
    monkeypatch.setenv("STYLESTEER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    path = corpora_path()
    if not (path / "sherlock_holmes.txt").is_file():
        pytest.skip(f"sample corpora not found at {path}")
    return path


@pytest.fixture(scope="session")
def demo_lm():
    """The bundled demo model (SmolLM2-135M), loaded once per test session."""
    from engine.models import ModelLoadError, load_model

    try:
        return load_model("demo", device="cpu")
    except ModelLoadError as exc:
        pytest.skip(f"demo model unavailable: {exc}")


@pytest.fixture(scope="session")
def demo_tokenizer(demo_lm):
    return demo_lm.tokenizer


def bpe_build_ms(source: str | Path) -> float:
    """How long this machine takes to build the model folder's BPE tokenizer model: one call into the
    tokenizers library that holds the GIL and cannot be split (about 20 ms on one x86-64 CPU, 90 ms on
    another). GUI-stall bounds for model loading are set against it, measured side by side."""
    import json
    import time

    from tokenizers.models import BPE

    model = json.loads((Path(source) / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    options = {k: v for k, v in model.items() if k not in ("type", "vocab", "merges") and v is not None}
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        BPE(model["vocab"], pairs, **options)
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best
