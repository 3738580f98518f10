"""Small pieces: the λ slider's scale, the JS palette, the compare alignment, settings types."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor

from app.gui import palette
from app.gui.compare_view import differing, format_metric
from app.gui.controls import SLIDER_STEPS, SteeringControls, lam_to_slider, slider_to_lam
from app.gui.editor import Editor
from app.gui.settings import Settings, SteerSettings
from engine.types import DEFAULT_BUDGET_BITS, DEFAULT_LAM


def test_lambda_slider_is_fine_near_zero() -> None:
    assert slider_to_lam(0) == 0 and slider_to_lam(SLIDER_STEPS) == 1
    # half the slider's travel covers λ <= 0.25, where the useful range is
    assert slider_to_lam(SLIDER_STEPS // 2) == pytest.approx(0.25)
    # one slider step near 0 moves λ by far less than 0.001
    assert slider_to_lam(10) - slider_to_lam(9) < 0.001
    for lam in (0.0, 0.01, 0.05, 0.1, 0.3, 0.7, 1.0):
        assert slider_to_lam(lam_to_slider(lam)) == pytest.approx(lam, abs=2e-3)


def test_lambda_readout_and_slider_stay_in_step(qtbot) -> None:
    c = SteeringControls(SteerSettings())
    qtbot.addWidget(c)
    seen = []
    c.lamChanged.connect(seen.append)
    c.slider.setValue(lam_to_slider(0.04))
    assert c.lam_box.value() == pytest.approx(0.04, abs=1e-3) and seen
    c.lam_box.setValue(0.6)
    assert c.slider.value() == lam_to_slider(0.6)
    c.mode.setCurrentIndex(c.mode.findData("budget"))
    assert c.budget.isEnabled()
    c.greedy.setChecked(True)
    assert not c.temperature.isEnabled()
    s = c.sampling()
    assert s.greedy and s.max_new_tokens == SteerSettings().max_new_tokens
    c.seed.setValue(-1)
    assert c.sampling().seed is None  # "random"


def test_palette_is_sequential_and_legend_ticks_increase() -> None:
    assert palette.tint(0.0) is None and palette.tint(palette.JS_ZERO_BITS / 2) is None
    xs = [palette.scale(v) for v in palette.LEGEND_TICKS]
    assert xs == sorted(xs) and xs[0] == 0 and xs[-1] == 1
    def luminance(c) -> float:
        return 0.2126 * c.redF() + 0.7152 * c.greenF() + 0.0722 * c.blueF()

    lum = [luminance(palette.ramp(t / 10)) for t in range(11)]
    assert lum == sorted(lum, reverse=True)  # bright (small JS) to dark (large JS): readable in grey too
    assert palette.scale(10.0) == 1.0


def test_tint_scale_spreads_what_the_default_spends() -> None:
    # at the default settings a token spends from about a thousandth of a bit up to lam * tau_max: that range
    # covers most of the colours, not one or two
    top = DEFAULT_LAM * DEFAULT_BUDGET_BITS
    assert palette.scale(top) - palette.scale(1e-3) > 0.45
    assert len({palette.tint(v).name() for v in (1e-3, 3e-3, 0.01, 0.03, top)}) == 5


@pytest.mark.parametrize("dark", [False, True])
@pytest.mark.parametrize("ghost", [False, True])
def test_text_reads_on_every_tint(dark, ghost) -> None:
    base, text = (QColor("#17181a"), QColor("#e6e6e3")) if dark else (QColor("#ffffff"), QColor("#1e1e1e"))
    for i in range(41):
        js = palette.JS_ZERO_BITS * (palette.JS_MAX_BITS / palette.JS_ZERO_BITS) ** (i / 40)
        bg = palette.tint(js * 1.0001, dark, base)
        assert bg is not None and bg.alpha() == 255
        fg = palette.text_on(bg, text, ghost)
        assert palette.contrast(fg, bg) >= palette.MIN_CONTRAST, (js, bg.name(), fg.name())
    # a suggestion stays fainter than typed text where the tint leaves room for it
    light = palette.tint(1e-3, dark, base)
    assert palette.text_on(light, text, True).name() != palette.text_on(light, text, False).name()


def test_editor_ghost_text_on_the_darkest_tint_reads(qtbot) -> None:
    ed = Editor()
    qtbot.addWidget(ed)
    colors = ed.palette()
    for ghost in (False, True):
        fmt = ed._tint_format(1.0, ghost)
        assert fmt is not None
        bg, fg = fmt.background().color(), fmt.foreground().color()
        assert palette.contrast(fg, bg) >= palette.MIN_CONTRAST
    assert colors.color(colors.ColorRole.Base).isValid()


def test_compare_alignment_marks_only_what_differs() -> None:
    base, steer = differing([1, 2, 3, 4, 5], [1, 2, 9, 4, 5, 6])
    assert base == [False, False, True, False, False]
    assert steer == [False, False, True, False, False, True]
    assert format_metric(None) == "–" and format_metric(1234.5, "style_ppl") == "1,234.5"
    assert format_metric(0.5, "bigram_seen") == "0.5000"


def test_settings_read_back_typed(qtbot) -> None:
    s = Settings()
    s.set_steer(SteerSettings(lam=0.125, mode="paper", greedy=True, top_k=7, seed=-1))
    s.sync()
    back = Settings().steer()
    assert back == SteerSettings(lam=0.125, mode="paper", greedy=True, top_k=7, seed=-1)
    assert isinstance(back.top_k, int) and isinstance(back.greedy, bool)
    s.set_recent_files(["/a.txt"])
    assert Settings().recent_files() == ["/a.txt"]


def test_a_budget_saved_with_its_old_meaning_is_not_read(qtbot) -> None:
    # the budget used to be a fixed per-token bound (0.05 bits); read as today's τmax it would make λ 0.3 spend
    # 0.015 bits, so the old key is left alone and the default applies
    s = Settings()
    s._s.setValue("steer/budget_bits", 0.05)
    s.sync()
    assert Settings().steer().budget_bits == DEFAULT_BUDGET_BITS
    s.set_steer(SteerSettings(budget_bits=0.3))
    assert Settings().steer().budget_bits == pytest.approx(0.3)
