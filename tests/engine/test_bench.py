"""engine.bench's per-step costs on the demo model (values are timings: only their presence and sign are checked)."""

from __future__ import annotations

import pytest

from engine.bench import bench_prior, step_costs

pytestmark = pytest.mark.model


@pytest.mark.parametrize("mode", ["dense", "budget"])
def test_step_costs_time_every_stage(demo_lm, mode):
    costs = step_costs(demo_lm, bench_prior(demo_lm, None), steps=3, mode=mode)
    assert set(costs) == {"forward", "prior", "sampling", "diagnostics"}
    assert all(v > 0 for v in costs.values())
