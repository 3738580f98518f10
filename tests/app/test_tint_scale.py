"""The JS tint at the default settings: each suggestion on its own bits scale (shown in the legend), or all on the
fixed one (View ▸ Tint Scale); text reads on every tint."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from app.gui import palette
from app.gui.editor import Editor
from app.gui.inspector import Legend
from app.gui.settings import Settings
from engine.types import TokenStep

# A band like the default settings' (budget mode): every token between 0.02 and 0.06 bits.
BAND = [0.02 * 3 ** (i / 19) for i in range(20)]

# One suggestion's JS, as measured at the default settings (budget mode, demo model, a Holmes style, 64 tokens): a
# bulk near its budget with a long tail of small values.
MEASURED = [0.0498, 0.0711, 0.0294, 0.069, 0.1, 0.0456, 0.00169, 0.0292, 0.0261, 0.0492, 0.0533, 0.0213, 0.0539,
            0.0264, 0.0379, 0.0123, 0.00907, 0.0239, 0.0741, 0.0308, 0.0692, 0.00261, 0.061, 0.075, 0.0923, 0.0284,
            0.0759, 0.0186, 0.0193, 0.0378, 0.0199, 0.0362, 0.00136, 0.0681, 0.127, 0.0183, 0.0177, 0.0899, 0.0794,
            0.0652, 0.00253, 0.102, 0.0674, 0.0087, 0.0574, 0.0312, 0.0717, 0.0513, 0.0655, 0.00619, 0.0708, 0.0772,
            0.00185, 0.0879, 0.0277, 0.0441, 0.00147, 0.0112, 0.0624, 0.0756, 0.0895, 0.0477, 0.0415, 0.0472]


def _fifths(sc: palette.Scale, values: list[float]) -> set[int]:
    return {min(4, int(sc.position(v) * 5)) for v in values}


def _step(i: int, js: float) -> TokenStep:
    return TokenStep("steered", i, 100 + i, f" w{i}", 0.4, 0.5, js, 0.3)


def _backgrounds(editor: Editor) -> list[tuple[int, str]]:
    """(start, background colour) of each tinted token in the document (neighbours of one colour share a range)."""
    painted = {}
    block = editor.document().firstBlock()
    while block.isValid():
        for r in block.layout().formats():
            if r.format.background().style() != Qt.BrushStyle.NoBrush:
                for pos in range(block.position() + r.start, block.position() + r.start + r.length):
                    painted[pos] = r.format.background().color().name()
        block = block.next()
    return [(t.start, painted[t.start]) for t in editor.tokens() if t.start in painted]


@pytest.fixture
def editor(qtbot) -> Editor:
    e = Editor()
    qtbot.addWidget(e)
    e.show()
    e.load_text("Start.")
    c = e.textCursor()
    c.setPosition(6)
    e.setTextCursor(c)
    return e


def test_a_suggestions_own_scale_spreads_what_the_fixed_one_bunches() -> None:
    sc = palette.scale_for(BAND)
    assert len(_fifths(sc, BAND)) >= 4
    assert len(_fifths(palette.FIXED, BAND)) <= 2
    assert sc.lo == pytest.approx(palette._percentile(sorted(BAND), palette.SCALE_PERCENTILES[0]))
    assert 0.02 < sc.lo < sc.hi < 0.06
    assert sc.position(sc.lo) == 0.0 and sc.position(sc.hi) == 1.0
    assert sc.position(1.0) == 1.0 and sc.position(0.001) == 0.0  # outside its range: at its ends
    assert palette.scale_for([*BAND, 0.0, None, float("nan"), 1e-6]) == sc  # untinted tokens do not count
    assert palette.scale(0.05) == palette.FIXED.position(0.05)
    assert palette.scale_caption(palette.Scale(0.021, 0.066)) == "0.021 – 0.066 bits"


def test_a_measured_suggestion_spreads_over_the_legend() -> None:
    def counts(sc: palette.Scale) -> list[int]:
        return [sum(1 for v in MEASURED if min(4, int(sc.position(v) * 5)) == k) for k in range(5)]

    fixed, own = counts(palette.FIXED), counts(palette.scale_for(MEASURED))
    assert fixed[3] + fixed[4] >= 0.85 * len(MEASURED)  # on the fixed scale: nearly all in the top two fifths
    assert own[3] + own[4] <= 0.6 * len(MEASURED)
    assert min(own) >= 0.1 * len(MEASURED)  # every fifth of the legend is used


def test_few_tokens_or_a_degenerate_range_fall_back_to_the_fixed_scale() -> None:
    assert palette.scale_for([]) is palette.FIXED
    assert palette.scale_for([0.02, 0.03, 0.04]) == palette.FIXED
    assert palette.scale_for([0.02, 0.03, 0.04, 0.0, 0.0, 1e-5]) == palette.FIXED  # three tinted
    assert palette.scale_for([0.03] * 10) == palette.FIXED
    assert palette.scale_for([0.02, 0.03, 0.04, 0.05]) != palette.FIXED


@pytest.mark.parametrize("dark", [False, True])
@pytest.mark.parametrize("ghost", [False, True])
def test_text_reads_on_every_tint_of_any_scale(dark, ghost) -> None:
    base, text = (QColor("#17181a"), QColor("#e6e6e3")) if dark else (QColor("#ffffff"), QColor("#1e1e1e"))
    sc = palette.scale_for(BAND)
    for i in range(41):
        bg = palette.tint_at(i / 40, dark, base)
        assert bg.alpha() == 255
        assert palette.contrast(palette.text_on(bg, text, ghost), bg) >= palette.MIN_CONTRAST
    for v in BAND:
        bg = palette.tint(v, dark, base, sc)
        assert bg is not None
        assert palette.contrast(palette.text_on(bg, text, ghost), bg) >= palette.MIN_CONTRAST


def test_editor_text_reads_on_the_darkest_tint_of_a_suggestions_scale(editor: Editor) -> None:
    sc = palette.scale_for(BAND)
    for ghost in (False, True):
        fmt = editor._tint_format(sc.hi, ghost, sc)
        assert fmt is not None
        assert fmt.background().color().name() == palette.tint_at(1.0, False, editor.palette().color(
            editor.palette().ColorRole.Base)).name()
        assert palette.contrast(fmt.foreground().color(), fmt.background().color()) >= palette.MIN_CONTRAST


def test_the_setting_switches_the_painted_colours(editor: Editor) -> None:
    editor.begin_ghost()
    editor.append_ghost([_step(i, v) for i, v in enumerate(BAND)])
    per = _backgrounds(editor)
    assert len(per) == len(BAND)
    assert len({c for _, c in per}) >= 15
    base = editor.palette().color(editor.palette().ColorRole.Base)
    assert per[0][1] == palette.tint_at(0.0, False, base).name()  # from one end of the ramp to the other
    assert per[-1][1] == palette.tint_at(1.0, False, base).name()
    assert editor.legend_scale()[0] == palette.scale_for(BAND)
    editor.set_tint_scale("fixed")
    fixed = _backgrounds(editor)
    assert [p for p, _ in fixed] == [p for p, _ in per] and fixed != per
    want = {palette.tint_at(round(palette.scale(v), 3), False, base).name() for v in BAND}
    assert {c for _, c in fixed} == want
    assert editor.legend_scale() == (palette.FIXED, "fixed scale")
    editor.set_tint_scale("suggestion")
    assert _backgrounds(editor) == per


def test_a_streaming_suggestion_settles_on_its_own_scale(editor: Editor, monkeypatch) -> None:
    scales = []
    editor.tintScaleChanged.connect(lambda sc, caption: scales.append(sc))
    editor.load_text("A long paragraph before.\n" * 50 + "Start.")
    c = editor.textCursor()
    c.movePosition(c.MoveOperation.End)
    editor.setTextCursor(c)
    repainted = []
    monkeypatch.setattr(editor._highlighter, "rehighlight", lambda: pytest.fail("repainted the whole document"))
    rehighlight_block = editor._highlighter.rehighlightBlock
    monkeypatch.setattr(editor._highlighter, "rehighlightBlock",
                        lambda block: (repainted.append(block.blockNumber()), rehighlight_block(block)))
    editor.begin_ghost()
    for i, v in enumerate(reversed(BAND)):  # the high ones first: the scale widens as tokens arrive
        editor.append_ghost([_step(i, v)])
    final = palette.scale_for(BAND)
    sc = editor.legend_scale()[0]
    width = final.hi / final.lo
    assert abs(sc.lo / final.lo - 1) < 0.05 * width and abs(sc.hi / final.hi - 1) < 0.05 * width
    assert scales[0] == palette.FIXED and len(scales) > 2
    assert repainted and set(repainted) == {50}  # only the suggestion's paragraph is repainted as its scale moves
    # what is painted is the scale the legend shows
    tinted = _backgrounds(editor)
    base = editor.palette().color(editor.palette().ColorRole.Base)
    assert [c for _, c in tinted] == [palette.tint_at(round(sc.position(v), 3), False, base).name()
                                      for v in reversed(BAND)]


def test_accepted_runs_keep_their_own_scale(editor: Editor) -> None:
    editor.begin_ghost()
    editor.append_ghost([_step(i, v) for i, v in enumerate(BAND)])
    editor.accept_ghost()
    first = _backgrounds(editor)
    low = [v / 20 for v in BAND]  # a second suggestion twenty times weaker
    editor.begin_ghost()
    editor.append_ghost([_step(i, v) for i, v in enumerate(low)])
    editor.accept_ghost()
    both = _backgrounds(editor)
    assert both[:len(first)] == first  # the first run's colours did not move
    assert [c for _, c in both[len(first):]] == [c for _, c in first]  # the second spreads the same way
    runs = editor.accepted_runs()
    assert len(runs) == 2
    # reopened (as sessions do), each run gets its scale back from its own tokens
    editor.clear_runs()
    assert _backgrounds(editor) == []
    editor.restore_runs(runs)
    assert _backgrounds(editor) == both
    assert editor.legend_scale()[1].endswith("latest suggestion")
    assert editor.legend_scale()[0] == palette.scale_for(low)


def test_the_legend_shows_the_range_of_the_run_under_the_cursor(qtbot, editor: Editor) -> None:
    legend = Legend()
    qtbot.addWidget(legend)
    editor.tintScaleChanged.connect(legend.set_scale)
    editor.begin_ghost()
    editor.append_ghost([_step(i, v) for i, v in enumerate(BAND)])
    sc = palette.scale_for(BAND)
    assert legend.scale() == sc
    assert legend.caption() == f"{palette.bits_label(sc.lo)} – {palette.bits_label(sc.hi)} bits, this suggestion"
    assert legend.caption().startswith("0.02") and "0.05" in legend.caption()
    editor.accept_ghost()
    editor.begin_ghost()
    editor.append_ghost([_step(0, 0.01), _step(1, 0.0)])
    assert legend.caption() == "fixed scale (this suggestion: too few tinted tokens)"
    editor.hover_token(editor.tokens()[3])  # a token of the accepted run
    assert legend.scale() == sc and legend.caption().endswith("bits, this accepted text")
    editor.set_tint_scale("fixed")
    assert legend.caption() == "fixed scale" and legend.scale().ticks() == palette.LEGEND_TICKS
    legend.grab()  # paints either way


def test_the_setting_is_remembered_and_in_the_view_menu(qtbot, window) -> None:
    assert Settings().tint_scale() == "suggestion"
    assert window.tint_scale_actions["suggestion"].isChecked()
    window.tint_scale_actions["fixed"].trigger()
    assert window.editor.tint_scale() == "fixed" and Settings().tint_scale() == "fixed"
    assert window.inspector.legend.caption() == "fixed scale"
    window.set_tint_scale("suggestion")
    assert window.editor.tint_scale() == "suggestion" and Settings().tint_scale() == "suggestion"
    assert window.inspector.legend.caption() == "fixed scale until a suggestion"
    s = Settings()
    s.set_tint_scale("nonsense")
    assert s.tint_scale() == "suggestion"
