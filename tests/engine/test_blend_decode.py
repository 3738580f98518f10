"""A blend with weights 1/0 decodes exactly like its one style (the demo model, a fixed seed)."""

from __future__ import annotations

import pytest

from engine.decode import stream
from engine.steering import StyleSteeringProcessor
from engine.types import SamplingConfig
from styles.blend import parse_blend
from styles.blend_prior import BlendPrior
from styles.ngrams import count_ngrams
from styles.prior import StylePrior

pytestmark = pytest.mark.model

PROMPT = "It was a dark night and"


def _prior(lm, text: str, name: str) -> StylePrior:
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    return StylePrior.from_counts(count_ngrams([ids], lm.vocab_size), vocab_size=lm.vocab_size,
                                  tokenizer_fingerprint=lm.fingerprint, name=name)


def _tokens(lm, prior, mode: str) -> list[int]:
    steering = StyleSteeringProcessor(prior, lam=0.8, mode=mode)
    sampling = SamplingConfig(max_new_tokens=8, seed=11, n_alternatives=0)
    return [step.token_id for step in stream(lm, PROMPT, sampling, steering)]


@pytest.mark.parametrize("mode", ["dense", "paper"])
def test_one_zero_blend_samples_the_single_styles_tokens(demo_lm, corpora_dir, mode):
    holmes = _prior(demo_lm, (corpora_dir / "sherlock_holmes.txt").read_text(encoding="utf-8")[:20_000], "holmes")
    bard = _prior(demo_lm, (corpora_dir / "tinyshakespeare.txt").read_text(encoding="utf-8")[:20_000], "bard")
    priors = {"holmes": holmes, "bard": bard}
    spec = parse_blend("holmes:1,bard:0")
    blend = BlendPrior([(priors[n], w) for n, w in spec.parts])
    single = _tokens(demo_lm, holmes, mode)
    assert _tokens(demo_lm, blend, mode) == single
