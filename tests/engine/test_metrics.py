"""engine.metrics on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from engine import metrics
from styles.prior import StylePrior
from tests.styles.test_prior import counts_from_docs


def test_distinct_2():
    assert metrics.distinct_n([1, 2, 1, 2, 1]) == pytest.approx(2 / 4)
    assert metrics.distinct_n([1, 2, 3]) == 1.0
    assert metrics.distinct_n([7]) is None


def test_unigram_overlap_and_bigram_seen():
    assert metrics.unigram_overlap([1, 2, 3, 4], {1, 2}) == 0.5
    assert metrics.unigram_overlap([], {1}) is None
    seen = {(1, 2), (2, 3)}
    assert metrics.bigram_seen_rate([1, 2, 3, 1], lambda a, b: (a, b) in seen) == pytest.approx(2 / 3)
    assert metrics.bigram_seen_rate([1], lambda _a, _b: True) is None


def test_style_ppl_uses_prompt_context():
    prior = StylePrior.from_counts(counts_from_docs([[0, 1, 2, 0, 1, 3], [0, 1, 2]]), vocab_size=5,
                                   tokenizer_fingerprint="t")
    lp1 = prior.log_prob([0, 1], 2)
    lp2 = prior.log_prob([1, 2], 0)
    assert metrics.style_ppl(prior, [4, 0, 1], [2, 0]) == pytest.approx(math.exp(-(lp1 + lp2) / 2))
    assert metrics.style_ppl(prior, [0], []) is None


def test_perplexity_and_mean_median():
    assert metrics.perplexity([math.log(0.5), math.log(0.5)]) == pytest.approx(2.0)
    assert metrics.mean_median([1.0, 2.0, 9.0]) == (4.0, 2.0)
    assert metrics.mean_median([]) == (None, None)


class UniformLM:
    """A 'model' whose every next-token distribution is uniform over 4 tokens: PPL must be 4."""

    class _Model:
        def __call__(self, input_ids, attention_mask=None):
            class Out:
                logits = torch.zeros(*input_ids.shape, 4)
            return Out()

    class _Tok:
        pad_token_id = 0

    model = _Model()
    tokenizer = _Tok()
    device = torch.device("cpu")


def test_base_ppl_uniform_model():
    assert metrics.base_ppl(UniformLM(), [1, 2], [3, 1, 2]) == pytest.approx(4.0)
    assert metrics.base_ppl_batch(UniformLM(), [[1], [1, 2, 3]], [[2], []]) == [pytest.approx(4.0), None]


def test_compute_metrics_without_prior_has_null_style_metrics():
    m = metrics.compute_metrics(UniformLM(), [1], [2, 3, 2, 3], [0.1, 0.3, 0.2, 0.0], None)
    assert m["style_ppl"] is None and m["unigram_overlap"] is None and m["bigram_seen"] is None
    assert m["js_mean_bits"] == pytest.approx(0.15)
    assert m["js_median_bits"] == pytest.approx(0.15)
    assert m["distinct_2"] == pytest.approx(2 / 3)
    assert m["base_ppl"] == pytest.approx(4.0)
