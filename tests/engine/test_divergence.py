"""engine.divergence: JS divergence in bits, torch and NumPy, on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.divergence import js_bits, js_bits_np, log_softmax_np


def _log(p: list[float]) -> torch.Tensor:
    return torch.tensor(p, dtype=torch.float64).log()


def test_js_bits_hand_computed():
    assert float(js_bits(_log([1.0, 0.0]), _log([0.0, 1.0]))) == pytest.approx(1.0)
    assert float(js_bits(_log([1.0, 0.0]), _log([1.0, 0.0]))) == pytest.approx(0.0)
    # M = (0.75, 0.25); KL(p||M) = .5 log2(.5/.75) + .5 log2(.5/.25); KL(q||M) = log2(1/.75)
    kl_p = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(2)
    kl_q = math.log2(1 / 0.75)
    assert float(js_bits(_log([0.5, 0.5]), _log([1.0, 0.0]))) == pytest.approx((kl_p + kl_q) / 2)


def test_js_bits_is_row_wise_and_bounded():
    a = torch.log_softmax(torch.tensor([[0.0, 0.0], [100.0, -100.0]]), -1)
    b = torch.log_softmax(torch.tensor([[0.0, 0.0], [-100.0, 100.0]]), -1)
    js = js_bits(a, b)
    assert js.shape == (2,)
    assert js.tolist() == pytest.approx([0.0, 1.0], abs=1e-5)


def test_js_bits_leaves_its_inputs_alone():
    lp, lq = _log([0.5, 0.5]), _log([0.9, 0.1])
    before = (lp.clone(), lq.clone())
    js_bits(lp, lq)
    assert torch.equal(lp, before[0]) and torch.equal(lq, before[1])


def test_numpy_twin_agrees_with_torch():
    rng = np.random.default_rng(0)
    for scale in (0.1, 1.0, 10.0):
        z = rng.normal(size=(2, 257)).astype(np.float32) * scale
        lp, lq = log_softmax_np(z[0]), log_softmax_np(z[1])
        expected = float(js_bits(torch.log_softmax(torch.from_numpy(z[0]), -1),
                                 torch.log_softmax(torch.from_numpy(z[1]), -1)))
        assert js_bits_np(lp, lq) == pytest.approx(expected, rel=1e-4, abs=1e-7)
    assert js_bits_np(lp, lp) == pytest.approx(0.0, abs=1e-7)


def test_log_softmax_np_matches_torch():
    z = np.array([3.0, -1.0, 0.5], dtype=np.float32)
    assert log_softmax_np(z) == pytest.approx(torch.log_softmax(torch.from_numpy(z), -1).numpy(), abs=1e-6)
