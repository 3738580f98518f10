"""The editor: ghost text never leaks into the document, accepting is one undo step, tokens are found."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from app.gui.editor import Editor, u16len
from engine.types import TokenStep


def step(i: int, text: str, js: float = 0.05) -> TokenStep:
    return TokenStep("steered", i, 100 + i, text, 0.4, 0.5, js, 0.3,
                     top_base=[(1, " the", 0.3)], top_steered=[(2, " thee", 0.4)])


@pytest.fixture
def editor(qtbot) -> Editor:
    e = Editor()
    qtbot.addWidget(e)
    e.show()
    e.load_text("Hello world.")
    c = e.textCursor()
    c.setPosition(5)
    e.setTextCursor(c)
    return e


def test_ghost_is_not_the_document(editor: Editor) -> None:
    editor.begin_ghost()
    editor.append_ghost([step(0, " brave"), step(1, " new")])
    assert editor.toPlainText() == "Hello brave new world."
    assert editor.text() == "Hello world."
    assert editor.prompt_text() == "Hello brave new"
    assert editor.textCursor().position() == 5  # the cursor stays where the user left it


def test_escape_leaves_the_document_byte_identical(qtbot, editor: Editor) -> None:
    qtbot.keyClicks(editor, "!")
    before = editor.toPlainText()
    modified = editor.document().isModified()
    editor.begin_ghost()
    editor.append_ghost([step(0, " a"), step(1, "\nnew line 😀")])
    editor.append_ghost([step(2, " more")])
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    assert editor.toPlainText() == before
    assert editor.document().isModified() == modified
    assert not editor.document().isRedoAvailable()  # nothing of the suggestion comes back via Redo
    assert not editor.has_ghost()


def test_tab_accepts_as_one_undo_step(qtbot, editor: Editor) -> None:
    editor.begin_ghost()
    editor.append_ghost([step(0, " brave")])
    editor.append_ghost([step(1, " new"), step(2, " world,")])
    qtbot.keyClick(editor, Qt.Key.Key_Tab)
    assert editor.toPlainText() == "Hello brave new world, world."
    assert not editor.has_ghost()
    assert editor.textCursor().position() == 5 + len(" brave new world,")
    editor.undo()
    assert editor.toPlainText() == "Hello world."
    editor.redo()
    assert editor.toPlainText() == "Hello brave new world, world."


def test_ctrl_right_accepts_one_word(qtbot, editor: Editor) -> None:
    editor.begin_ghost()
    editor.append_ghost([step(0, " bra"), step(1, "ve"), step(2, " new")])
    qtbot.keyClick(editor, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)
    assert editor.text() == "Hello brave world."
    assert editor.ghost_text() == " new"
    qtbot.keyClick(editor, Qt.Key.Key_Tab)
    assert editor.text() == "Hello brave new world."
    editor.undo()
    assert editor.toPlainText() == "Hello brave world."
    editor.undo()
    assert editor.toPlainText() == "Hello world."


def test_typing_over_a_suggestion_dismisses_it(qtbot, editor: Editor) -> None:
    stops = []
    editor.stopRequested.connect(lambda: stops.append(1))
    editor.begin_ghost()
    editor.append_ghost([step(0, " brave")])
    qtbot.keyClicks(editor, "X")
    assert editor.toPlainText() == "HelloX world."
    assert stops


def test_tokens_are_tinted_and_found(editor: Editor) -> None:
    editor.begin_ghost()
    editor.append_ghost([step(0, " 😀", js=0.0), step(1, " strong", js=0.2)])
    toks = editor.tokens()
    assert [(t.start, t.end) for t in toks] == [(5, 5 + u16len(" 😀")), (5 + u16len(" 😀"), 5 + u16len(" 😀 strong"))]
    # zero JS draws no tint; the other does
    block = editor.document().firstBlock()
    tinted = [(r.start + block.position(), r.length) for r in block.layout().formats()
              if r.format.background().style() != Qt.BrushStyle.NoBrush]
    assert tinted == [(toks[1].start, toks[1].end - toks[1].start)]
    editor.set_show_tints(False)
    assert not block.layout().formats()
    editor.set_show_tints(True)
    ref = editor.token_at(toks[1].start + 2)
    assert ref is not None and ref.step.text == " strong" and ref.ghost
    editor.accept_ghost()
    ref = editor.token_at(toks[1].start + 2)
    assert ref is not None and not ref.ghost
    # an edit before the accepted text moves its spans along
    c = editor.textCursor()
    c.setPosition(0)
    editor.setTextCursor(c)
    editor.insertPlainText("Oh. ")
    ref = editor.token_at(toks[1].start + 6)
    block = editor.document().firstBlock()
    assert [(r.start, r.length) for r in block.layout().formats()] == [(ref.start, ref.end - ref.start)]
    enc = editor.toPlainText().encode("utf-16-le")  # positions count UTF-16 units
    assert ref is not None and enc[2 * ref.start:2 * ref.end].decode("utf-16-le") == " strong"


def test_keyboard_moves_onto_tokens(qtbot, editor: Editor) -> None:
    seen = []
    editor.tokenHovered.connect(seen.append)
    editor.begin_ghost()
    editor.append_ghost([step(0, " brave"), step(1, " new")])
    editor.accept_ghost()
    editor.moveCursor(QTextCursor.MoveOperation.Start)
    for _ in range(8):
        qtbot.keyClick(editor, Qt.Key.Key_Right)
    assert seen and seen[-1].step.text == " brave"


def test_truncate_and_cut_for_reroll(editor: Editor) -> None:
    editor.begin_ghost()
    editor.append_ghost([step(0, " a"), step(1, " b"), step(2, " c")])
    editor.truncate_ghost(1)
    assert editor.ghost_text() == " a"
    editor.accept_ghost()
    editor.begin_ghost()
    editor.append_ghost([step(0, " x"), step(1, " y")])
    editor.accept_ghost()
    ref = next(t for t in editor.tokens() if t.step.text == " x")
    pos = editor.cut_accepted_from(ref)
    assert editor.toPlainText() == "Hello a world."
    assert pos == 7


def test_none_survives_many_qt_calls(editor: Editor) -> None:
    """PySide6 6.12.0 on Python 3.11 drops a reference to None per void Qt call and aborts a long
    session ("deallocating None"); pyproject pins PySide6 below 6.12. This fails on a build that leaks."""
    import sys

    editor.begin_ghost()
    editor.append_ghost([step(0, " a"), step(1, " b")])
    before = sys.getrefcount(None)
    for _ in range(300):
        editor._refresh_tints()
    assert sys.version_info >= (3, 12) or sys.getrefcount(None) >= before - 50, "this PySide6 leaks None"


def test_older_completions_keep_their_tints_but_not_their_alternatives(editor: Editor) -> None:
    from app.gui.editor import MAX_TINTED_RUNS

    for i in range(MAX_TINTED_RUNS + 2):
        editor.begin_ghost()
        editor.append_ghost([step(0, f" w{i}", js=0.2)])
        editor.accept_ghost()
    tokens = editor.tokens()
    assert [t.step.text for t in tokens] == [f" w{i}" for i in range(MAX_TINTED_RUNS + 2)]
    bare = [t.step.text for t in tokens if not t.step.top_base and not t.step.top_steered]
    assert bare == [" w0", " w1"]  # the two oldest lost their alternatives only
    block = editor.document().firstBlock()
    covered = set()
    for r in block.layout().formats():
        covered.update(range(block.position() + r.start, block.position() + r.start + r.length))
    kept = {p for t in tokens for p in range(t.start, t.end)}
    assert covered == kept  # every accepted token is still tinted


@pytest.mark.parametrize("accept_key", [Qt.Key.Key_Tab, "word"])
def test_typing_after_accepting_is_its_own_undo_step(qtbot, accept_key) -> None:
    """Qt merges an insertion into a preceding edit block's insertion; an accept must not be merged."""
    e = Editor()
    qtbot.addWidget(e)
    e.show()
    qtbot.keyClicks(e, "Once upon a time")
    e.begin_ghost()
    e.append_ghost([step(0, " there"), step(1, " was")])
    if accept_key == "word":
        qtbot.keyClick(e, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)
        qtbot.keyClick(e, Qt.Key.Key_Escape)
        accepted = "Once upon a time there"
    else:
        qtbot.keyClick(e, accept_key)
        accepted = "Once upon a time there was"
    qtbot.keyClicks(e, " Yes.")
    assert e.toPlainText() == accepted + " Yes."
    qtbot.keyClick(e, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert e.toPlainText() == accepted  # only the typing went
    qtbot.keyClick(e, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert e.toPlainText() == "Once upon a time"  # then the accepted suggestion, in one step
    qtbot.keyClick(e, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert e.toPlainText() == accepted


def test_a_fresh_editor_is_not_modified(qtbot) -> None:
    e = Editor()
    qtbot.addWidget(e)
    assert not e.document().isModified()
    e.load_text("")
    assert not e.document().isModified()
