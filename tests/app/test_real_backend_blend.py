"""Blends through the real backend on the worker thread (tiny tokenizer, no model)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from app.jobs.backend import TuneParams
from app.jobs.real_backend import RealBackend
from app.jobs.worker import Worker
from styles.blend_prior import BlendPrior
from styles.tokenizers import tokenizer_fingerprint
from tests.app.test_real_backend import run
from tests.styles.tiny_tokenizer import TinyTokenizer


@pytest.fixture
def backend_worker(qtbot, tmp_path):
    backend = RealBackend(tmp_path / "styles.db")
    tok = TinyTokenizer()
    backend.lm = SimpleNamespace(tokenizer=tok, fingerprint=tokenizer_fingerprint(tok), name="tiny", device="cpu")
    w = Worker(backend)
    yield backend, w
    w.shutdown()


def test_save_list_load_and_refuse_to_tune_a_blend(qtbot, backend_worker, corpus_files: list[Path]) -> None:
    _backend, worker = backend_worker
    for name, files in (("stormy", corpus_files[:1]), ("calm", corpus_files[1:2])):
        _, err = run(qtbot, worker.import_paths, name, files)
        assert err is None
    _, err = run(qtbot, worker.save_blend, "mix", (("stormy", 3.0), ("calm", 1.0)))
    assert err is None
    styles, _ = run(qtbot, worker.list_styles)
    (mix,) = [s for s in styles if s.is_blend]
    assert mix.name == "mix" and mix.blend == (("stormy", 0.75), ("calm", 0.25)) and mix.compatible

    def prior(style):  # on the worker thread, which owns the library's connection
        result, err = run(qtbot, worker.submit, "prior", lambda ctx: ctx.backend.prior(style))
        assert err is None, err
        return result

    mixed = prior("mix")
    assert isinstance(mixed, BlendPrior) and [w for _, w in mixed.parts] == [0.75, 0.25]
    assert prior("mix") is mixed  # cached
    assert isinstance(prior("stormy:1,calm:1"), BlendPrior)
    _, err = run(qtbot, worker.save_blend, "mix", "stormy:1")
    assert err is None and prior("mix") is not mixed  # the new weights, not the cached prior
    _, err = run(qtbot, worker.tune, "mix", TuneParams())
    assert err is not None and "“mix” is a blend" in err.message
    _, err = run(qtbot, worker.save_blend, "mix", "stormy:-1")
    assert err is not None and "cannot be negative" in err.message
