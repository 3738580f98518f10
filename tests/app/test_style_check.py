"""Tools ▸ Check Style on the fake engine: tints (never in the document), the list, clicking selects."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QTextCursor

from app.gui import palette
from app.gui.style_check import diverging, tint
from app.jobs.backend import StyleInfo

IN_STYLE = "The night was still and the river ran slow."
OFF_STYLE = "Quantum flux capacitors exploded violently yesterday."
LAST = "She walked home thinking of quasars."  # five words of the fake style in six
TEXT = f"{IN_STYLE} {OFF_STYLE}\n\n{LAST}\n"


def ready(window, fake_backend, text=TEXT):
    fake_backend._styles["s"] = StyleInfo("s", 1, 10, "t")
    window.styles.set_active("s")
    window.editor.load_text(text)
    window.editor.document().setModified(False)


def run_check(qtbot, window):
    panel = window.check_panel
    assert window.check_style() is not None
    qtbot.waitUntil(lambda: panel.list.count() > 0, timeout=5000)
    return panel


def test_check_tints_lists_least_in_style_first_and_leaves_the_document_alone(qtbot, window, fake_backend):
    ready(window, fake_backend)
    raw = window.editor.document().toRawText()
    html = window.editor.document().toHtml()
    panel = run_check(qtbot, window)
    assert "check_style" in fake_backend.options.calls
    items = [panel.list.item(i).text() for i in range(panel.list.count())]
    assert len(items) == 3 and OFF_STYLE in items[0] and float(items[0].split()[0]) < 0
    assert float(items[-1].split()[0]) > 0
    # every sentence away from the middle score is tinted: orange below it, purple above
    overlay = window.editor.overlay()
    assert len(overlay) == 2
    assert len(window.editor.extraSelections()) >= 2  # drawn by the editor
    tinted = {sel.cursor.selectedText(): sel.format.background().color() for sel in overlay}
    assert set(tinted) == {OFF_STYLE, IN_STYLE}  # LAST is the middle score: no tint
    off, on = tinted[OFF_STYLE], tinted[IN_STYLE]
    assert off.red() > off.blue() and on.blue() > on.green()  # the orange end, the purple end
    for sel in overlay:
        fg, bg = sel.format.foreground().color(), sel.format.background().color()
        assert palette.contrast(fg, bg) >= palette.MIN_CONTRAST
    # the tints are not in the document: no edit, no undo step, nothing to save
    assert window.editor.document().toRawText() == raw
    assert window.editor.document().toHtml() == html
    assert not window.editor.document().isModified()
    assert not window.editor.document().isUndoAvailable()
    # clicking a sentence selects it in the editor
    qtbot.mouseClick(panel.list.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.list.visualItemRect(panel.list.item(0)).center())
    assert window.editor.textCursor().selectedText() == OFF_STYLE
    panel.clear_button.click()
    assert window.editor.overlay() == [] and panel.list.count() == 0


def test_check_runs_on_the_selection_only(qtbot, window, fake_backend):
    ready(window, fake_backend)
    c = window.editor.textCursor()
    start = TEXT.index(OFF_STYLE)
    c.setPosition(start)
    c.setPosition(len(TEXT), QTextCursor.MoveMode.KeepAnchor)
    window.editor.setTextCursor(c)
    panel = run_check(qtbot, window)
    assert panel.list.count() == 2
    assert "selection" in panel.status.text()
    panel.list.setCurrentRow(1)
    panel.list.itemActivated.emit(panel.list.item(1))
    assert window.editor.textCursor().selectedText() == LAST
    assert window.editor.textCursor().selectionStart() == TEXT.index(LAST)


def test_sentences_follow_edits_made_after_the_check(qtbot, window, fake_backend):
    ready(window, fake_backend)
    panel = run_check(qtbot, window)
    c = window.editor.textCursor()
    c.setPosition(0)
    c.insertText("Once more. ")
    panel.list.itemActivated.emit(panel.list.item(0))
    assert window.editor.textCursor().selectedText() == OFF_STYLE


def test_check_needs_a_style_and_text(qtbot, window, fake_backend):
    window.editor.load_text(TEXT)
    assert window.check_style() is None
    assert "Choose a style first" in window.errors[-1]
    ready(window, fake_backend, text="   \n")
    assert window.check_style() is None
    assert "no text to check" in window.errors[-1]


def test_the_check_shortcut_is_in_the_tools_menu(window):
    assert window.check_action.shortcut().toString() == "Ctrl+Shift+K"
    assert window.check_action.text() == "Check Style"


def test_diverging_tints_are_two_hued_and_readable():
    white, dark = QColor("#ffffff"), QColor("#17181a")
    assert diverging(0.0) is None and tint(0.01, white) is None
    low, high = tint(-1.0, white), tint(1.0, white)
    assert low.red() > low.blue() and high.blue() > high.green()
    for base, is_dark in ((white, False), (dark, True)):
        for t in (-1.0, -0.5, -0.1, 0.1, 0.5, 1.0):
            bg = tint(t, base, is_dark)
            text = QColor("#000000") if not is_dark else QColor("#e8e8e8")
            assert palette.contrast(palette.text_on(bg, text), bg) >= palette.MIN_CONTRAST
