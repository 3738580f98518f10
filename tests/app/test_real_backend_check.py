"""The real backend's style check on the demo model: a result per sentence, the user's errors, cancelling."""

from __future__ import annotations

import threading

import pytest

from app.jobs.backend import Cancelled, UserFacingError
from app.jobs.real_backend import RealBackend
from engine.stylecheck import CheckResult

pytestmark = pytest.mark.model

TEXT = "It was a cold night in Baker Street. And the LORD spake unto Moses, saying, Go thou down.\n"


@pytest.fixture
def backend(demo_lm, corpora_dir, tmp_path):
    b = RealBackend(tmp_path / "styles.db")
    b.open()
    b.lm = demo_lm
    sample = tmp_path / "sherlock.txt"
    sample.write_text((corpora_dir / "sherlock_holmes.txt").read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    b.import_paths("sherlock", [sample], progress=lambda *a, **k: None, cancel=threading.Event())
    yield b
    b.close()


def test_check_style_scores_each_sentence(backend):
    result = backend.check_style("sherlock", TEXT, cancel=threading.Event())
    assert isinstance(result, CheckResult) and result.method == "backoff"
    assert [TEXT[s.start:s.end] for s in result.sentences] == [
        "It was a cold night in Baker Street.", "And the LORD spake unto Moses, saying, Go thou down."]
    assert all(s.score is not None and s.n_tokens > 5 for s in result.sentences)


def test_check_style_errors_are_the_users(backend, demo_lm):
    with pytest.raises(UserFacingError, match=r"(?i)no style"):
        backend.check_style("nobody", TEXT, cancel=threading.Event())
    with backend.store.transaction():
        backend.store.create_style("foreign", "some/other-tokenizer", "0123456789abcdef", demo_lm.vocab_size)
    with pytest.raises(UserFacingError, match="another tokenizer"):
        backend.check_style("foreign", TEXT, cancel=threading.Event())
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        backend.check_style("sherlock", TEXT, cancel=stop)
