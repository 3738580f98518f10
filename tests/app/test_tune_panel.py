"""The Tune λ panel with a fabricated result: request, progress, plot, proposal, apply."""

from __future__ import annotations

import pytest

from app.gui.tune_panel import TunePanel
from app.jobs.backend import TuneParams
from engine.sweep import tune_from_rows


def _rows() -> list[dict]:
    rows = []
    for prompt, extra in (("a", 0.0), ("b", 2.0)):
        for lam, base, held in ((0.0, 10.0, 100.0), (0.1, 11.0, 80.0), (0.3, 12.0, 60.0), (0.5, 30.0, 50.0)):
            rows.append({"prompt": prompt, "mode": "dense", "lam": lam, "text": f"{prompt} at {lam}",
                         "base_ppl": base + extra, "heldout_style_ppl": held + extra, "style_ppl": held / 2})
    return rows


@pytest.fixture
def panel(qtbot):
    w = TunePanel()
    qtbot.addWidget(w)
    w.set_style("holmes")
    return w


def test_run_emits_the_tune_arguments(panel, qtbot) -> None:
    panel.set_mode("nonsense")
    assert panel.mode_box.currentText() == "dense"
    panel.set_mode("budget")
    panel.margin_box.setValue(0.5)
    panel.prompts_box.setValue(3)
    panel.tokens_box.setValue(32)
    with qtbot.waitSignal(panel.runRequested, timeout=1000) as blocker:
        panel.run_button.click()
    assert blocker.args == [TuneParams(mode="budget", margin=0.5, n_prompts=3, max_new_tokens=32)]


def test_busy_progress_result_and_apply(panel, qtbot) -> None:
    panel.set_busy(True)
    assert not panel.run_button.isEnabled() and panel.cancel_button.isEnabled()
    with qtbot.waitSignal(panel.cancelRequested, timeout=1000):
        panel.cancel_button.click()
    panel.set_progress(30, 120)
    assert (panel.progress.value(), panel.progress.maximum()) == (30, 120)

    result = tune_from_rows(_rows(), style="holmes", mode="dense", margin=0.25, seconds=3.0)
    assert result.proposed_lam == 0.3  # base 13 <= 1.25 x 11; 0.5 is over the margin
    panel.show_result(result)
    assert not panel.apply_button.isEnabled()  # still busy
    panel.set_busy(False)
    assert panel.apply_button.isEnabled()
    assert panel.apply_button.text() == "Use λ = 0.3"
    assert "λ = 0.3" in panel.result_label.text()
    # The plot has one labelled point per lambda.
    labels = {t.get_text() for t in panel._axes.texts}
    assert {"0", "0.1", "0.3", "0.5"} <= labels
    with qtbot.waitSignal(panel.lambdaApplied, timeout=1000) as blocker:
        panel.apply_button.click()
    assert blocker.args == [pytest.approx(0.3)]


def test_cancelled_result_offers_nothing(panel) -> None:
    panel.show_result(tune_from_rows([], style="holmes", mode="dense", margin=0.25, cancelled=True))
    assert not panel.apply_button.isEnabled()
    assert "Cancelled" in panel.result_label.text()
