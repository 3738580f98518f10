"""The real backend keeps one prefix cache per loaded model: re-generating reuses the context, a new model drops it."""

from __future__ import annotations

import threading

import pytest

from app.jobs.backend import SteerParams
from app.jobs.real_backend import RealBackend
from engine.types import SamplingConfig

pytestmark = pytest.mark.model

PROMPT = "The evening air carried a quiet sense of anticipation as the lamps were lit"


def _tokens(backend: RealBackend) -> list[int]:
    sampling = SamplingConfig(max_new_tokens=4, greedy=True, repetition_penalty=1.0, stop_at_eos=False)
    gen = backend.generate(PROMPT, sampling, SteerParams(style=None), threading.Event())
    list(gen)
    return list(gen.token_ids)


def test_regenerating_reuses_the_context_until_the_model_changes(demo_lm, tmp_path) -> None:
    backend = RealBackend(tmp_path / "styles.db")
    backend.lm = demo_lm
    first = _tokens(backend)
    prefix = backend._prefix
    assert prefix is not None and len(prefix) > 0
    assert _tokens(backend) == first
    assert backend._prefix is prefix and prefix.last_reused == len(demo_lm.tokenizer(PROMPT)["input_ids"]) - 1
    backend.load_model("demo", device="cpu", quantize=None, progress=lambda *a, **k: None, cancel=threading.Event(),
                       notify=lambda _line: None)
    assert backend._prefix is None  # the old model's keys and values are gone with it
    assert _tokens(backend) == first and backend._prefix.last_reused == 0
    backend.close()
