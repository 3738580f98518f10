"""StyleSteeringProcessor on tiny synthetic priors with hand-computed expectations."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from engine.steering import (
    StyleSteeringProcessor,
    check_compatible,
    js_bits_from_logits,
)
from styles.errors import TokenizerMismatch
from styles.prior import StylePrior
from tests.styles.test_prior import counts_from_docs

V = 5


class FixedPrior:
    """A prior whose terms are given directly, to check the processor's arithmetic."""

    vocab_size = V
    tokenizer_fingerprint = "fp"
    device = torch.device("cpu")

    def __init__(self, delta, mix):
        self.delta = torch.tensor([delta], dtype=torch.float32)
        self.mix = torch.tensor([mix], dtype=torch.float32)

    def paper_delta(self, input_ids):
        return self.delta.expand(input_ids.shape[0], -1).clone()

    def log_mix(self, input_ids):
        return self.mix.expand(input_ids.shape[0], -1).clone()


DELTA = [-1.0, 0.0, -2.0, 0.0, 0.0]
MIX = [math.log(0.5), math.log(0.2), math.log(0.1), math.log(0.1), math.log(0.1)]
IDS = torch.tensor([[1, 2]])
SCORES = torch.tensor([[1.0, 2.0, 3.0, 0.5, -1.0]])


def test_paper_mode_adds_sparse_term():
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=0.5, mode="paper")
    out = proc(IDS, SCORES.clone())
    assert out[0].tolist() == pytest.approx([0.5, 2.0, 2.0, 0.5, -1.0])


def test_dense_mode_is_product_of_experts():
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=0.3, mode="dense")
    out = proc(IDS, SCORES.clone())
    expected = (SCORES + 0.3 * torch.tensor([MIX]))
    assert torch.allclose(out, expected)
    # p_steered is proportional to p_model * p_prior ** lam
    p_model = torch.softmax(SCORES, -1)
    poe = p_model * torch.tensor([MIX]).exp() ** 0.3
    assert torch.allclose(torch.softmax(out, -1), poe / poe.sum(), atol=1e-6)


def test_no_in_place_mutation():
    scores = SCORES.clone()
    StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=1.0, mode="dense")(IDS, scores)
    assert torch.equal(scores, SCORES)


@pytest.mark.parametrize("mode", ["paper", "dense", "budget"])
def test_lambda_zero_is_identity(mode):
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=0.0, mode=mode)
    assert torch.equal(proc(IDS, SCORES), SCORES)


def test_budget_respects_tau_and_is_maximal():
    tau = 0.01
    proc = StyleSteeringProcessor(FixedPrior(DELTA, [0.0, -8.0, -8.0, 0.0, -8.0]), lam=1.0, mode="budget",
                                  budget_bits=tau)
    out = proc(IDS, SCORES)
    lam_t = float(proc.last_lams[0])
    assert 0 < lam_t < 1.0
    js = float(js_bits_from_logits(SCORES, out)[0])
    assert js <= tau + 1e-6
    # a little more lambda would break the budget: the bisection found the largest value
    above = SCORES + (lam_t + 2e-3) * torch.tensor([[0.0, -8.0, -8.0, 0.0, -8.0]])
    assert float(js_bits_from_logits(SCORES, above)[0]) > tau


def test_budget_keeps_full_lambda_when_within_budget():
    proc = StyleSteeringProcessor(FixedPrior(DELTA, [-1e-3] * V), lam=0.8, mode="budget", budget_bits=0.5)
    proc(IDS, SCORES)
    assert float(proc.last_lams[0]) == pytest.approx(0.8)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_lambda_validated(bad):
    with pytest.raises(ValueError, match="lam must be in"):
        StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=bad)


def test_arguments_validated():
    with pytest.raises(ValueError, match="mode must be one of"):
        StyleSteeringProcessor(FixedPrior(DELTA, MIX), mode="loud")
    with pytest.raises(ValueError, match="budget_bits"):
        StyleSteeringProcessor(FixedPrior(DELTA, MIX), budget_bits=0)


def test_lambda_set_from_another_thread_applies_next_call():
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=0.0, mode="dense")
    assert torch.equal(proc(IDS, SCORES), SCORES)
    t = threading.Thread(target=lambda: setattr(proc, "lam", 1.0))
    t.start()
    t.join()
    assert torch.allclose(proc(IDS, SCORES), SCORES + torch.tensor([MIX]))


def test_padded_vocabulary_columns_left_alone():
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=1.0, mode="dense")
    wide = torch.cat([SCORES, torch.tensor([[7.0, 8.0]])], dim=-1)
    out = proc(IDS, wide)
    assert out[0, 5:].tolist() == [7.0, 8.0]


def test_per_row_scale_leaves_baseline_row_untouched():
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=0.5, mode="dense")
    proc.row_scale = torch.tensor([0.0, 1.0])
    out = proc(IDS.repeat(2, 1), SCORES.repeat(2, 1))
    assert torch.equal(out[0], SCORES[0])
    assert torch.allclose(out[1], SCORES[0] + 0.5 * torch.tensor(MIX))


@pytest.mark.parametrize("mode", ["paper", "dense", "budget"])
@pytest.mark.parametrize("docs", [[[2]], [], [[0, 1, 2, 3, 4] * 3]])
@pytest.mark.parametrize("lam", [0.0, 0.05, 0.5, 1.0])
def test_never_nan_or_inf(mode, docs, lam):
    prior = StylePrior.from_counts(counts_from_docs(docs), vocab_size=V, tokenizer_fingerprint="t")
    proc = StyleSteeringProcessor(prior, lam=lam, mode=mode, budget_bits=0.01)
    for ids in ([[4, 4]], [[0]], [[1, 2, 3]], [[0, 1]]):
        out = proc(torch.tensor(ids), torch.tensor([[0.0, 50.0, -50.0, 3.0, 1.0]]))
        assert torch.isfinite(out).all()
        assert torch.isfinite(torch.softmax(out, -1)).all()


def test_check_compatible():
    class LM:
        fingerprint = "other"
        name = "m"

    with pytest.raises(TokenizerMismatch, match="another tokenizer"):
        check_compatible(FixedPrior(DELTA, MIX), LM())


def test_js_bits_bounds():
    a = torch.tensor([[0.0, 0.0]])
    assert float(js_bits_from_logits(a, a)[0]) == pytest.approx(0.0, abs=1e-7)
    far = torch.tensor([[100.0, -100.0]])
    assert float(js_bits_from_logits(far, -far)[0]) == pytest.approx(1.0, abs=1e-5)
