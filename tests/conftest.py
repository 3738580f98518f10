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
