"""StyleSteeringProcessor on tiny synthetic priors with hand-computed expectations."""

from __future__ import annotations

import doctest
import itertools
import math
import threading

import pytest
import torch

import engine.steering
from engine.divergence import js_bits
from engine.steering import (
    BUDGET_REF_ENTROPY_BITS,
    SteeringState,
    StyleSteeringProcessor,
    check_compatible,
    step_budget_bits,
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


def js_bits_from_logits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return js_bits(torch.log_softmax(a, -1), torch.log_softmax(b, -1))


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


def _budget(lam: float, tau_max: float, scores: torch.Tensor = SCORES) -> float:
    return float(step_budget_bits(torch.log_softmax(scores, -1), torch.tensor([lam]), tau_max)[0])


def test_step_budget_follows_the_slider_and_the_entropy():
    # tau = lam * tau_max * H / H_ref: two equally likely tokens are 1 bit of entropy, four are 2 bits
    two = torch.log(torch.tensor([[0.5, 0.5, 0.0, 0.0]]))
    four = torch.log(torch.full((1, 4), 0.25))
    lam = torch.tensor([0.5])
    assert float(step_budget_bits(two, lam, 0.2)[0]) == pytest.approx(0.5 * 0.2 * 1 / BUDGET_REF_ENTROPY_BITS)
    assert float(step_budget_bits(four, lam, 0.2)[0]) == pytest.approx(0.5 * 0.2 * 2 / BUDGET_REF_ENTROPY_BITS)
    sure = torch.log_softmax(torch.tensor([[30.0, 0.0, 0.0, 0.0]]), -1)
    assert float(step_budget_bits(sure, lam, 0.2)[0]) < 1e-9


def test_budget_moves_a_sure_step_less_than_an_unsure_one():
    mix = [0.0, -8.0, -8.0, 0.0, -8.0]
    sure = torch.tensor([[6.0, 0.0, -1.0, 0.5, -2.0]])
    unsure = torch.tensor([[0.2, 0.0, 0.1, 0.0, 0.1]])
    proc = StyleSteeringProcessor(FixedPrior(DELTA, mix), lam=0.5, mode="budget", budget_bits=0.1)
    out = proc.steer(IDS.repeat(2, 1), torch.cat([sure, unsure])).scores  # the pull, before the floor
    js = js_bits_from_logits(torch.cat([sure, unsure]), out)
    assert float(js[0]) <= _budget(0.5, 0.1, sure) + 1e-6 and float(js[1]) <= _budget(0.5, 0.1, unsure) + 1e-6
    assert float(js[0]) < float(js[1])


def test_budget_respects_tau_and_is_maximal():
    tau_max = 0.04
    tau = _budget(1.0, tau_max)
    proc = StyleSteeringProcessor(FixedPrior(DELTA, [0.0, -8.0, -8.0, 0.0, -8.0]), lam=1.0, mode="budget",
                                  budget_bits=tau_max)
    out, lams = proc.steer(IDS, SCORES)
    lam_t = float(lams[0])
    assert 0 < lam_t < 1.0
    js = float(js_bits_from_logits(SCORES, out)[0])
    assert js <= tau + 1e-6
    # a little more lambda would break the budget: the bisection found the largest value
    above = SCORES + (lam_t + 2e-3) * torch.tensor([[0.0, -8.0, -8.0, 0.0, -8.0]])
    assert float(js_bits_from_logits(SCORES, above)[0]) > tau


def test_budget_steers_fully_where_the_budget_allows():
    # a term too weak to spend the budget: the strongest steering (lam_t = 1) is applied whatever the slider
    proc = StyleSteeringProcessor(FixedPrior(DELTA, [-1e-3] * V), lam=0.8, mode="budget", budget_bits=0.5)
    assert float(proc.steer(IDS, SCORES).lams[0]) == pytest.approx(1.0)


def test_budget_follows_the_slider():
    # tau = lam * tau_max * H / H_ref: the JS each step spends rises strictly with lambda, up to the strongest steering
    mix = [0.0, -8.0, -8.0, 0.0, -8.0]
    tau_max = 0.1
    proc = StyleSteeringProcessor(FixedPrior(DELTA, mix), lam=0.0, mode="budget", budget_bits=tau_max)
    spent = []
    for lam in (0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0):
        proc.set_lam(lam)
        out, _lams = proc.steer(IDS, SCORES)
        js = float(js_bits_from_logits(SCORES, out)[0])
        assert js <= _budget(lam, tau_max) + 1e-6
        assert js == pytest.approx(_budget(lam, tau_max), rel=2e-2)  # the budget binds: all of it is spent
        spent.append(js)
    assert all(b > a for a, b in itertools.pairwise(spent))


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_lambda_validated(bad):
    with pytest.raises(ValueError, match="lam must be in"):
        StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=bad)


def test_arguments_validated():
    with pytest.raises(ValueError, match="mode must be one of"):
        StyleSteeringProcessor(FixedPrior(DELTA, MIX), mode="loud")
    with pytest.raises(ValueError, match="budget_bits"):
        StyleSteeringProcessor(FixedPrior(DELTA, MIX), budget_bits=0)
    with pytest.raises(ValueError, match="budget_bits"):
        StyleSteeringProcessor(FixedPrior(DELTA, MIX), budget_bits=float("nan"))
    with pytest.raises(TypeError, match="prior must be"):
        StyleSteeringProcessor(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="row_scale values must be in"):
        StyleSteeringProcessor(FixedPrior(DELTA, MIX), row_scale=[0.0, 1.5])
    with pytest.raises(ValueError, match="row_scale must be"):
        StyleSteeringProcessor(FixedPrior(DELTA, MIX), row_scale=[])


def test_lambda_set_from_another_thread_applies_next_call():
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=0.0, mode="dense")
    assert torch.equal(proc(IDS, SCORES), SCORES)
    t = threading.Thread(target=proc.set_lam, args=(1.0,))
    t.start()
    t.join()
    assert torch.allclose(proc(IDS, SCORES), SCORES + torch.tensor([MIX]))


def test_padded_vocabulary_columns_left_alone():
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=1.0, mode="dense")
    wide = torch.cat([SCORES, torch.tensor([[7.0, 8.0]])], dim=-1)
    out = proc(IDS, wide)
    assert out[0, 5:].tolist() == [7.0, 8.0]


def test_per_row_scale_leaves_baseline_row_untouched():
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=0.5, mode="dense", row_scale=[0.0, 1.0])
    out, lams = proc.steer(IDS.repeat(2, 1), SCORES.repeat(2, 1))
    assert lams.tolist() == [0.0, 0.5]
    assert torch.equal(out[0], SCORES[0])
    assert torch.allclose(out[1], SCORES[0] + 0.5 * torch.tensor(MIX))


def test_per_row_scale_must_match_the_batch():
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=0.5, row_scale=[0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="row_scale has 3 rows"):
        proc(IDS.repeat(2, 1), SCORES.repeat(2, 1))


def test_per_row_lambdas_of_a_batch_row_by_row():
    # a sweep batch: lambda 1 times one lambda per row; budget mode bounds each row on its own
    mix = [0.0, -8.0, -8.0, 0.0, -8.0]
    batch = StyleSteeringProcessor(FixedPrior(DELTA, mix), lam=1.0, mode="budget", budget_bits=0.01,
                                   row_scale=[0.0, 0.001, 1.0])
    out, lams = batch.steer(IDS.repeat(3, 1), SCORES.repeat(3, 1))
    assert lams[0] == 0.0 and torch.equal(out[0], SCORES[0])
    assert 0 < lams[1] < lams[2]  # each row spends its own lambda times the budget
    js = js_bits_from_logits(SCORES.repeat(3, 1), out)
    assert float(js[1]) <= _budget(0.001, 0.01) + 1e-7 and float(js[2]) <= _budget(1.0, 0.01) + 1e-6
    alone = StyleSteeringProcessor(FixedPrior(DELTA, mix), lam=1.0, mode="budget", budget_bits=0.01)
    assert torch.equal(out[2], alone.steer(IDS, SCORES).scores[0])


def test_state_gets_what_each_call_applied():
    state = SteeringState()
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=0.5, mode="dense", row_scale=[0.0, 1.0], state=state)
    out = proc(IDS.repeat(2, 1), SCORES.repeat(2, 1))
    assert state.lams is not None and state.lams.tolist() == [0.0, 0.5]
    assert state.scores is out


def test_steer_leaves_state_alone():
    state = SteeringState()
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=0.5, mode="dense", state=state)
    proc.steer(IDS, SCORES)
    assert state.lams is None and state.scores is None


def test_for_decode_shares_the_live_lambda():
    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=0.2, mode="paper", budget_bits=0.3)
    state = SteeringState()
    bound = proc.for_decode(state, row_scale=[0.0, 1.0])
    assert (bound.prior, bound.mode, bound.budget_bits, bound.lam) == (proc.prior, "paper", 0.3, 0.2)
    assert bound.state is state and proc.state is None and proc.row_scale is None
    t = threading.Thread(target=proc.set_lam, args=(0.9,))
    t.start()
    t.join()
    assert bound.steer(IDS.repeat(2, 1), SCORES.repeat(2, 1)).lams.tolist() == pytest.approx([0.0, 0.9])
    bound.set_lam(0.4)
    assert proc.lam == pytest.approx(0.4)
    with pytest.raises(ValueError, match="lam must be in"):
        proc.set_lam(2.0)


def test_docstring_example_runs():
    result = doctest.testmod(engine.steering, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("mode", ["paper", "dense", "budget"])
@pytest.mark.parametrize("docs", [[[2]], [], [[0, 1, 2, 3, 4] * 3]])
@pytest.mark.parametrize("lam", [0.0, 0.05, 0.5, 1.0])
def test_never_nan_or_inf(mode, docs, lam):
    prior = StylePrior.from_counts(counts_from_docs(docs), vocab_size=V, tokenizer_fingerprint="t")
    proc = StyleSteeringProcessor(prior, lam=lam, mode=mode, budget_bits=0.01)
    for ids in ([[4, 4]], [[0]], [[1, 2, 3]], [[0, 1]]):
        scores = torch.tensor([[0.0, 50.0, -50.0, 3.0, 1.0]])
        assert torch.isfinite(proc.steer(torch.tensor(ids), scores).scores).all()
        out = proc(torch.tensor(ids), scores)  # budget mode: -inf where the floor cuts, never NaN
        assert torch.isfinite(out[0, 1]) and not torch.isnan(out).any()
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


def test_sampler_chain_order_and_greedy():
    from transformers import (
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    from engine.decode import sampler_chain
    from engine.types import SamplingConfig

    proc = StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=0.5)
    sampled = sampler_chain(SamplingConfig(temperature=0.8, top_k=50, top_p=0.95, repetition_penalty=1.15), proc)
    assert [type(p) for p in sampled] == [StyleSteeringProcessor, RepetitionPenaltyLogitsProcessor,
                                          TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper]
    assert sampled[0] is proc
    greedy = sampler_chain(SamplingConfig(greedy=True, repetition_penalty=1.0))
    assert len(greedy) == 0
    plain = sampler_chain(SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0))
    assert len(plain) == 0
    # the chain steers first: hand-computed dense term, then temperature 0.5 doubles it
    chain = sampler_chain(SamplingConfig(temperature=0.5, top_k=0, top_p=1.0, repetition_penalty=1.0),
                          StyleSteeringProcessor(FixedPrior(DELTA, MIX), lam=1.0, mode="dense"))
    assert torch.allclose(chain(IDS, SCORES), (SCORES + torch.tensor([MIX])) / 0.5)


def test_row_generators_seeded_and_unseeded():
    from engine.decode import _row_generators

    state = torch.get_rng_state()
    a, b, c = _row_generators([7, 7, None], torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), state)
    draws = [torch.rand(3, generator=g) for g in (a, b)]
    assert torch.equal(draws[0], draws[1])
    assert torch.equal(draws[0], torch.rand(3, generator=torch.Generator().manual_seed(7)))
    assert c.device.type == "cpu"  # seeded from fresh entropy, not from torch's global generator


def test_plausibility_floor_cuts_what_the_model_finds_implausible_in_steered_rows_only():
    base = torch.log(torch.tensor([[0.50, 0.30, 0.06, 0.04, 0.10], [0.50, 0.30, 0.06, 0.04, 0.10]]))
    steered = torch.full((2, V), 2.5)
    out = engine.steering.plausible_only(base, steered, torch.tensor([0.3, 0.0]), floor=0.1)
    # row 0 (steered): 0.04 is under 0.1 * 0.5, 0.06 and 0.10 are not; row 1 (lambda 0) is left alone
    assert torch.isinf(out[0]).tolist() == [False, False, False, True, False]
    assert out[0, 0] == 2.5  # the rest keep their values: the repetition penalty depends on the scale
    assert torch.equal(out[1], steered[1])
    assert engine.steering.plausible_only(base, steered, torch.tensor([0.0, 0.0])) is steered


def test_budget_mode_never_chooses_an_implausible_token_but_reports_the_style_s_own_change():
    # the style wants token 3, which the model gives 0.04 of 0.5: budget mode cannot pick it, dense mode does
    base = torch.log(torch.tensor([[0.50, 0.30, 0.06, 0.04, 0.10]]))
    mix = [-30.0, -30.0, -30.0, 0.0, -30.0]
    state = SteeringState()
    budget = StyleSteeringProcessor(FixedPrior(DELTA, mix), lam=1.0, mode="budget", budget_bits=10.0, state=state)
    chosen = budget(IDS, base)
    assert int(chosen.argmax()) != 3 and torch.isinf(chosen[0, 3])
    assert int(state.scores.argmax()) == 3  # the tint and inspector show what the style did, before the floor
    dense = StyleSteeringProcessor(FixedPrior(DELTA, mix), lam=1.0, mode="dense")
    assert int(dense(IDS, base).argmax()) == 3
