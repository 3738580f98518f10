"""StylePrior against hand-computed P_n, P_mix, truncation and the fallback on a tiny corpus."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from styles.prior import PriorSettings, StylePrior

V = 5
K = 1e-3


def counts_from_docs(docs: list[list[int]]) -> dict:
    """Reference n-gram counter: plain Python, n-grams within each document only."""
    from collections import Counter

    out = {}
    for n in (1, 2, 3):
        c = Counter()
        for d in docs:
            for i in range(len(d) - n + 1):
                c[tuple(d[i:i + n])] += 1
        rows = sorted(c.items())
        ctx = np.array([r[0][:-1] for r in rows], dtype=np.int64).reshape(len(rows), n - 1)
        tok = np.array([r[0][-1] for r in rows], dtype=np.int64)
        cnt = np.array([r[1] for r in rows], dtype=np.int64)
        out[n] = (ctx, tok, cnt)
    return out


# Corpus: two documents; the bigram (3, 0) must not exist (it would span the boundary).
DOCS = [[0, 1, 2, 0, 1, 3], [0, 1, 2]]


@pytest.fixture
def prior() -> StylePrior:
    return StylePrior.from_counts(counts_from_docs(DOCS), vocab_size=V, tokenizer_fingerprint="t")


def p_n(c: int, n_ctx: int) -> float:
    return (c + K) / (n_ctx + K * V)


def test_unigram_conditional(prior):
    # unigrams: 0 x3, 1 x3, 2 x2, 3 x1, 4 x0; N = 9
    lp = prior.paper_delta(torch.tensor([[]], dtype=torch.long))
    w1 = 0.1
    expected = [w1 * math.log(p_n(c, 9)) for c in (3, 3, 2, 1)] + [0.0]
    assert lp[0].tolist() == pytest.approx(expected, rel=1e-5)


def test_paper_delta_sums_seen_orders_sparse(prior):
    # context (0, 1): bigram ctx 1 -> {2: 2, 3: 1} N=3; trigram ctx (0,1) -> {2: 2, 3: 1} N=3
    d = prior.paper_delta(torch.tensor([[0, 1]]))[0]
    uni = {0: 3, 1: 3, 2: 2, 3: 1}
    for tok in range(V):
        exp = 0.0
        if tok in uni:
            exp += 0.1 * math.log(p_n(uni[tok], 9))
        if tok in (2, 3):
            c = {2: 2, 3: 1}[tok]
            exp += 0.3 * math.log(p_n(c, 3)) + 0.6 * math.log(p_n(c, 3))
        assert d[tok].item() == pytest.approx(exp, rel=1e-5), tok
    assert d[4].item() == 0.0  # never seen: left unchanged


def test_no_bigram_across_documents(prior):
    assert not prior.has_bigram(3, 0)
    assert prior.has_bigram(1, 3)
    assert prior.has_bigram(2, 0)


def test_log_mix_hand_computed(prior):
    # context (3, 0): trigram (3,0) unseen; bigram ctx 0 -> {1: 3} N=3; unigram N=9
    row = prior.log_mix(torch.tensor([[3, 0]]))[0]
    uni = {0: 3, 1: 3, 2: 2, 3: 1, 4: 0}
    for tok in range(V):
        p1 = p_n(uni[tok], 9)
        p2 = p_n(3 if tok == 1 else 0, 3)
        expected = (0.1 * p1 + 0.3 * p2) / 0.4
        assert row[tok].item() == pytest.approx(math.log(expected), rel=1e-5)
    assert prior.log_prob([3, 0], 1) == pytest.approx(row[1].item(), rel=1e-5)


def test_log_mix_is_normalised_without_truncation(prior):
    for ctx in ([], [0], [0, 1], [2, 0], [4, 4]):
        row = prior.log_mix(torch.tensor([ctx], dtype=torch.long))[0]
        assert row.exp().sum().item() == pytest.approx(1.0, abs=1e-4)


def test_truncation_keeps_top_k_but_full_denominator():
    docs = [[0, 1, 0, 1, 0, 2, 0, 3]]  # after 0: 1 x2, 2 x1, 3 x1; N = 4
    p = StylePrior.from_counts(counts_from_docs(docs), vocab_size=V, tokenizer_fingerprint="t",
                               settings=PriorSettings(top_k=2, weights=(0, 1, 0)))
    d = p.paper_delta(torch.tensor([[0]]))[0]
    assert d[1].item() == pytest.approx(math.log(p_n(2, 4)), rel=1e-5)
    # Ties broken by token id: 2 is kept, 3 is cut.
    assert d[2].item() == pytest.approx(math.log(p_n(1, 4)), rel=1e-5)
    assert d[3].item() == 0.0
    mix = p.log_mix(torch.tensor([[0]]))[0]
    assert mix[3].item() == pytest.approx(math.log(K / (4 + K * V)), rel=1e-5)


def test_fallback_when_nothing_seen():
    empty = StylePrior.from_counts({}, vocab_size=V, tokenizer_fingerprint="t")
    assert torch.allclose(empty.log_mix(torch.tensor([[1, 2]])), torch.full((1, V), math.log(1 / V)))
    assert torch.count_nonzero(empty.paper_delta(torch.tensor([[1, 2]]))) == 0
    custom = StylePrior.from_counts({}, vocab_size=V, tokenizer_fingerprint="t",
                                    settings=PriorSettings(fallback=1e-6))
    assert custom.log_prob([1], 2) == pytest.approx(math.log(1e-6))


def test_one_token_corpus_is_finite():
    p = StylePrior.from_counts(counts_from_docs([[2]]), vocab_size=V, tokenizer_fingerprint="t")
    for ctx in ([], [2], [2, 2], [0, 1]):
        ids = torch.tensor([ctx], dtype=torch.long)
        assert torch.isfinite(p.log_mix(ids)).all()
        assert torch.isfinite(p.paper_delta(ids)).all()


def test_top_unigrams_and_batch(prior):
    assert prior.top_unigram_ids(2) == {0, 1}
    batch = prior.log_mix(torch.tensor([[0, 1], [3, 0]]))
    assert torch.allclose(batch[1], prior.log_mix(torch.tensor([[3, 0]]))[0])


def test_rejects_foreign_token_ids():
    with pytest.raises(ValueError, match="another tokenizer"):
        StylePrior.from_counts(counts_from_docs([[0, 7]]), vocab_size=V, tokenizer_fingerprint="t")


def test_settings_validation():
    with pytest.raises(ValueError, match="k must be"):
        PriorSettings(k=0)
    with pytest.raises(ValueError, match="weights"):
        PriorSettings(weights=(0.1, 0.2))
