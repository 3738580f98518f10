"""Generation history: Ctrl+R keeps the earlier suggestions at a place, Alt+[ / Alt+] bring them back as they were."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.gui.history import Suggestion, SuggestionHistory
from app.gui.main_window import MainWindow


def _suggestion(text: str) -> Suggestion:
    return Suggestion((None,), (text,))


def test_history_steps_and_labels() -> None:
    h = SuggestionHistory()
    h.reset((3, "abc"))
    assert h.label() == "" and h.step(-1) is None
    for t in ("a", "b", "c", "d"):
        h.add(_suggestion(t))
    assert h.label() == "4 / 4" and h.step(1) is None
    assert h.step(-1).text == "c" and h.step(-1).text == "b" and h.label() == "2 / 4"
    assert h.step(1).text == "c"
    h.leave()  # a new suggestion streams: Alt+[ goes to the latest kept one
    assert h.label() == "" and h.step(-1).text == "d"
    h.add(_suggestion(""))  # nothing to bring back
    assert len(h) == 4
    assert h.matches((3, "abc")) and not h.matches((4, "abc")) and not h.matches((3, "abx"))
    h.reset()
    assert len(h) == 0 and not h.matches((3, "abc"))


def _tints(win: MainWindow) -> list[tuple[int, int, str, str]]:
    """Every tint the editor paints: (position, length, background, foreground)."""
    out = []
    block = win.editor.document().begin()
    while block.isValid():
        for r in block.layout().formats():
            out.append((block.position() + r.start, r.length, r.format.background().color().name(),
                        r.format.foreground().color().name()))
        block = block.next()
    return out


def _shown(win: MainWindow) -> tuple[str, list, list]:
    """The suggestion showing: its text, its tokens (piece, id, JS, λ) and the tints painted."""
    steps, pieces = win.editor.ghost_tokens()
    tokens = [(p, s.token_id, s.js_bits, s.lam) if s else (p,) for s, p in zip(steps, pieces, strict=True)]
    return win.editor.ghost_text(), tokens, _tints(win)


def _four_suggestions(qtbot, win: MainWindow, fake_backend) -> list[tuple[str, list, list]]:
    """Ctrl+Enter, then Ctrl+R three times, with a style so tokens are tinted: what each one looked like."""
    from app.jobs.backend import StyleInfo

    fake_backend._styles["s"] = StyleInfo("s", 1, 10, "t")
    win.styles.set_active("s")
    win.controls.set_lam(0.9)
    win.editor.setFocus()
    qtbot.keyClicks(win.editor, "Once upon a time")
    win.controls.max_tokens.setValue(8)
    seen = []
    for key in (Qt.Key.Key_Return, Qt.Key.Key_R, Qt.Key.Key_R, Qt.Key.Key_R):
        with qtbot.waitSignal(win.generationFinished, timeout=10000):
            qtbot.keyClick(win.editor, key, Qt.KeyboardModifier.ControlModifier)
        seen.append(_shown(win))
    assert len({text for text, _, _ in seen}) == 4
    assert all(tints for _, _, tints in seen)
    return seen


def test_alt_brackets_cycle_the_suggestions_with_their_tints(qtbot, window: MainWindow, fake_backend) -> None:
    seen = _four_suggestions(qtbot, window, fake_backend)
    assert window.history.label.text() == "4 / 4"
    qtbot.keyClick(window.editor, Qt.Key.Key_BracketLeft, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClick(window.editor, Qt.Key.Key_BracketLeft, Qt.KeyboardModifier.AltModifier)
    assert window.history.label.text() == "2 / 4"
    assert _shown(window) == seen[1]
    assert window.editor.text() == "Once upon a time"  # the writer's text is untouched
    qtbot.keyClick(window.editor, Qt.Key.Key_BracketLeft, Qt.KeyboardModifier.AltModifier)
    assert _shown(window) == seen[0] and window.history.label.text() == "1 / 4"
    assert window.cycle_suggestion(-1) is None  # nothing before the first
    assert _shown(window) == seen[0]
    for i in (1, 2, 3):
        qtbot.keyClick(window.editor, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.AltModifier)
        assert _shown(window) == seen[i]
    assert window.history.label.text() == "4 / 4"
    # The one brought back is a suggestion like any other: Tab accepts it.
    window.cycle_suggestion(-1)
    qtbot.keyClick(window.editor, Qt.Key.Key_Tab)
    assert window.editor.text() == "Once upon a time" + seen[2][0]


def test_ctrl_r_adds_to_the_history_and_cycling_back_keeps_it(qtbot, window: MainWindow, fake_backend) -> None:
    seen = _four_suggestions(qtbot, window, fake_backend)
    window.cycle_suggestion(-1)
    with qtbot.waitSignal(window.generationFinished, timeout=10000):
        window.regenerate()
    assert window.history.label.text() == "5 / 5"
    window.cycle_suggestion(-1)
    assert _shown(window) == seen[3] and window.history.label.text() == "4 / 5"
    window.cycle_suggestion(-1)
    assert _shown(window) == seen[2]


def test_editing_the_text_starts_over(qtbot, window: MainWindow, fake_backend) -> None:
    _four_suggestions(qtbot, window, fake_backend)
    qtbot.keyClicks(window.editor, "!")  # typing dismisses the suggestion and changes the text
    assert window.editor.text() == "Once upon a time!"
    assert len(window.history.history) == 0 and window.history.label.text() == ""
    assert window.cycle_suggestion(-1) is None and not window.editor.has_ghost()


def test_moving_the_cursor_away_starts_over(qtbot, window: MainWindow, fake_backend) -> None:
    _four_suggestions(qtbot, window, fake_backend)
    window.editor.discard_ghost()
    assert window.cycle_suggestion(-1) is not None  # Esc, then Alt+[ brings one back
    window.editor.discard_ghost()
    qtbot.keyClick(window.editor, Qt.Key.Key_Left)
    assert len(window.history.history) == 0
    assert window.cycle_suggestion(-1) is None and not window.editor.has_ghost()


def test_accepting_starts_over(qtbot, window: MainWindow, fake_backend) -> None:
    _four_suggestions(qtbot, window, fake_backend)
    qtbot.keyClick(window.editor, Qt.Key.Key_Tab)
    assert len(window.history.history) == 0 and window.history.label.text() == ""
    text = window.editor.text()
    assert window.cycle_suggestion(-1) is None and window.editor.text() == text
