"""The style check's pure parts: sentences, the backoff model, scores on a tiny prior, chunked base scoring, AUC."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine import stylecheck as sc
from styles.ngrams import count_ngrams
from styles.prior import StylePrior

V = 12
WORDS = {w: i for i, w in enumerate(["<unk>", "the", "dog", "ran", "home", "we", "sing", "loud", ".", "cat", "sat",
                                     "\n"])}


class TinyTokenizer:
    """HF-shaped: one token per word or punctuation mark, with character offsets."""

    pad_token_id = None
    def decode(self, ids):
        names = {i: w for w, i in WORDS.items()}
        return " ".join(names[i] for i in ids)

    def __call__(self, text, *, add_special_tokens=True, return_offsets_mapping=False):
        spans = [m.span() for m in re.finditer(r"\w+|[^\w\s]|\n", text)]
        out = {"input_ids": [WORDS.get(text[a:b], 0) for a, b in spans]}
        if return_offsets_mapping:
            out["offset_mapping"] = spans
        return out


class UniformModel:
    """A 'model' that expects every token equally: the base log-probability is -log V everywhere."""

    def __call__(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, V))


class NextTokenModel:
    """Logits that depend only on the current token, so windowing must not change any score."""

    calls: list[int]

    def __init__(self) -> None:
        self.calls = []

    def __call__(self, input_ids, attention_mask=None):
        self.calls.append(input_ids.shape[1])
        g = torch.Generator().manual_seed(0)
        table = torch.randn(V, V, generator=g)
        return SimpleNamespace(logits=table[input_ids])


def prior_of(ids):
    return StylePrior.from_counts(count_ngrams([ids], V), vocab_size=V, tokenizer_fingerprint="tiny")


def test_sentences_split_at_end_marks_and_blank_lines():
    text = "  It rained. Did it? “Yes!” he said.\n\nNew para with no end\nsame sentence"
    spans = sc.split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "It rained.", "Did it?", "“Yes!” he said.", "New para with no end\nsame sentence"]
    assert sc.split_sentences("   \n\n ") == []
    assert sc.split_sentences("3.14 is pi") == [(0, 10)]  # a dot inside a number ends nothing


def test_backoff_model_matches_hand_computed_witten_bell():
    prior = prior_of([1, 2, 3, 1, 2, 4])  # the dog ran the dog home
    m = sc.BackoffModel(prior)
    p0 = 0.1
    # unigrams: N = 6, T = 4 types; 'dog' seen twice: P1 = (2 + 4 p0) / 10
    p1 = (2 + 4 * p0) / 10
    # after 'the': N = 2, T = 1, 'dog' twice
    p2 = (2 + 1 * p1) / 3
    # after 'ran the': N = 1, T = 1, 'dog' once
    p3 = (1 + 1 * p2) / 2
    assert m.prob([3, 1], 2, p0) == pytest.approx(p3)
    assert m.prob([1], 2, p0) == pytest.approx(p2)
    assert m.prob([], 2, p0) == pytest.approx(p1)
    # an unseen token costs the style's novelty rate at each order, from the base probability
    assert m.prob([3, 1], 9, p0) == pytest.approx(((0 + 4 * p0) / 10) / 3 / 2)
    # an unseen context adds nothing: it backs off to the orders below
    assert m.prob([9, 9], 2, p0) == pytest.approx(p1)


def test_a_blend_is_the_weighted_mixture_of_its_styles_models():
    a, b = prior_of([1, 2, 3, 1, 2, 4]), prior_of([5, 6, 7, 5, 6, 7])
    blend = SimpleNamespace(parts=[(a, 0.25), (b, 0.75)], vocab_size=V)
    m = sc.BackoffModel(blend)
    want = 0.25 * sc.BackoffModel(a).prob([1], 2, 0.1) + 0.75 * sc.BackoffModel(b).prob([1], 2, 0.1)
    assert m.prob([1], 2, 0.1) == pytest.approx(want)


@pytest.mark.parametrize("method", sc.METHODS)
def test_in_style_sentences_score_higher_on_a_tiny_prior(method):
    tok = TinyTokenizer()
    style_ids = tok("the dog ran home . the dog ran home . the cat sat .")["input_ids"] * 20
    lm = SimpleNamespace(tokenizer=tok, model=UniformModel(), context_length=64, device="cpu")
    text = "we sing loud sat .\n\nthe dog ran home .\n\nwe sing sat loud ."
    result = sc.check_text(lm, prior_of(style_ids), text, method=method)
    scores = [s.score for s in result.sentences]
    assert len(scores) == 3 and all(s is not None for s in scores)
    assert scores[1] > scores[0] and scores[1] > scores[2]
    assert result.least_in_style()[-1].index == 1
    assert result.tokens[0].score is None and result.tokens[0].logp_base is None  # nothing before it
    for t in result.tokens[1:]:
        assert t.logp_base == pytest.approx(-math.log(V))
        assert t.score == pytest.approx(t.logp_style - t.logp_base)
    doc = result.to_json()
    assert set(doc) == {"method", "score", "sentences", "tokens"}
    assert doc["sentences"][1]["text"] == "the dog ran home ."
    assert set(doc["tokens"][0]) == {"start", "end", "text", "token_id", "logp_style", "logp_base", "score"}


def test_base_logprobs_by_windows_equal_one_pass():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, 50).tolist()
    whole = sc.base_logprobs(NextTokenModel(), ids, window=100)
    model = NextTokenModel()
    windowed = sc.base_logprobs(model, ids, window=8, overlap=3)
    assert np.isnan(whole[0]) and np.isnan(windowed[0])
    np.testing.assert_allclose(windowed[1:], whole[1:], rtol=1e-6)
    assert max(model.calls) <= 8 and len(model.calls) > 5
    with_bos = sc.base_logprobs(NextTokenModel(), ids, window=8, overlap=3, bos=0)
    assert np.isfinite(with_bos).all()
    np.testing.assert_allclose(with_bos[1:], whole[1:], rtol=1e-6)


def test_auc_on_synthetic_scores():
    assert sc.roc_auc([3, 4], [1, 2]) == 1.0
    assert sc.roc_auc([1, 2], [3, 4]) == 0.0
    assert sc.roc_auc([2, 2], [2, 2]) == 0.5
    assert sc.roc_auc([1, 3], [2]) == 0.5
    assert sc.roc_auc([2], [2, 1]) == 0.75  # one tie (1/2) and one win
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(1, 1, 400), rng.normal(0, 1, 400)
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert sc.roc_auc(pos, neg) == pytest.approx(brute)
    assert 0.7 < sc.roc_auc(pos, neg) < 0.8  # Phi(1 / sqrt 2) = 0.76
    with pytest.raises(ValueError):
        sc.roc_auc([], [1.0])


def test_sample_sentences_is_fixed_by_its_seed():
    text = " ".join(f"Sentence number {i} has five words." for i in range(100))
    a = sc.sample_sentences(text, 10, seed=3, context_chars=20)
    assert a == sc.sample_sentences(text, 10, seed=3, context_chars=20)
    assert a != sc.sample_sentences(text, 10, seed=4, context_chars=20)
    assert len(a) == 10 and all(s.sentence.endswith("words.") and len(s.context) <= 20 for s in a)
    assert len(sc.sample_sentences("Too short. Also short.", 10)) == 0


def test_evaluate_auc_tells_two_tiny_corpora_apart():
    tok = TinyTokenizer()
    lm = SimpleNamespace(tokenizer=tok, model=UniformModel(), context_length=64, device="cpu", vocab_size=V,
                         fingerprint="tiny")
    corpora = {"dogs": "the dog ran home .\n\n" * 60 + "the cat ran home .\n\n" * 20,
               "song": "we sing loud we sing .\n\n" * 60 + "we sing loud sat .\n\n" * 20}
    report = sc.evaluate_auc(lm, corpora, n_sentences=5, seed=1)
    assert report["method"] == sc.DEFAULT_METHOD and set(report["by_method"]) == set(sc.METHODS)
    for m in sc.METHODS:
        for name in corpora:
            r = report["by_method"][m][name]
            assert r["auc"] == 1.0 and r["positives"] == 5 and r["negatives"] == 5
            assert r["mean_heldout"] > r["mean_others"]
    assert report["corpora"] == report["by_method"][sc.DEFAULT_METHOD]
