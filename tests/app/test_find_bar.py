"""Find and replace: options, wrapping, Replace All as one undo step, never inside a suggestion; counts."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from app.gui.editor import Editor
from app.gui.find_bar import FindBar
from engine.types import TokenStep


@pytest.fixture
def bar(qtbot) -> FindBar:
    editor = Editor()
    qtbot.addWidget(editor)
    editor.load_text("The cat sat. The Cat ran. Concatenate cats 😀 the cat.")
    b = FindBar(editor)
    qtbot.addWidget(b)
    return b


def _find(bar: FindBar, text: str, *, case=False, word=False, regex=False) -> None:
    bar.open_find(replace=True)
    bar.find_edit.setText(text)
    bar.case.setChecked(case)
    bar.word.setChecked(word)
    bar.regex.setChecked(regex)


def test_next_previous_and_wrap(bar: FindBar) -> None:
    _find(bar, "cat", word=True)
    hits = []
    for _ in range(4):
        assert bar.find_next()
        hits.append(bar.editor.textCursor().selectedText())
    assert hits == ["cat", "Cat", "cat", "cat"]  # three whole words, then it wraps to the first
    assert "wrapped" in bar.status.text()
    assert bar.find_previous()
    assert "of 3" in bar.status.text()


def test_case_and_regex(bar: FindBar) -> None:
    _find(bar, "Cat", case=True)
    assert bar.find_next() and bar.status.text().startswith("1 of 1")
    _find(bar, r"c(a)t", regex=True)
    bar.replace_edit.setText(r"d\1g")
    assert bar.replace_all() == 5
    assert bar.editor.text() == "The dag sat. The dag ran. Condagenate dags 😀 the dag."
    _find(bar, "(", regex=True)
    assert not bar.find_next() and "Invalid pattern" in bar.status.text()


def test_replace_all_is_one_undo_step_and_positions_survive_emoji(bar: FindBar) -> None:
    before = bar.editor.text()
    _find(bar, "the", word=True)
    bar.replace_edit.setText("a")
    assert bar.replace_all() == 3
    assert bar.editor.text() == "a cat sat. a Cat ran. Concatenate cats 😀 a cat."
    bar.editor.undo()
    assert bar.editor.text() == before


def test_replace_one_then_next(bar: FindBar) -> None:
    _find(bar, "cat", word=True)
    bar.replace_edit.setText("dog")
    assert bar.find_next()
    assert bar.replace()
    assert bar.editor.text().startswith("The dog sat. The Cat")
    assert bar.editor.textCursor().selectedText() == "Cat"


def test_a_suggestion_is_never_searched_or_replaced(bar: FindBar) -> None:
    editor = bar.editor
    cursor = editor.textCursor()
    cursor.setPosition(3)
    editor.setTextCursor(cursor)
    editor.begin_ghost()
    editor.append_ghost([TokenStep("steered", 0, 1, " catalogue", 0.1, 0.2, 0.01, 0.3)])
    _find(bar, "cat")
    bar.replace_edit.setText("X")
    bar.replace_all()
    assert not editor.has_ghost()
    assert "catalogue" not in editor.toPlainText()


def test_escape_closes_the_bar(qtbot, bar: FindBar) -> None:
    bar.open_find()
    qtbot.keyClick(bar.find_edit, Qt.Key.Key_Escape)
    assert not bar.isVisible()


def test_counts_leave_out_the_suggestion(qtbot, window) -> None:
    window.editor.setFocus()
    qtbot.keyClicks(window.editor, "Two words")
    qtbot.waitUntil(lambda: window.count_label.text() == "2 words · 9 characters", timeout=3000)
    window.editor.begin_ghost()
    window.editor.append_ghost([TokenStep("steered", 0, 1, " and more", 0.1, 0.2, 0.01, 0.3)])
    window._update_counts()
    assert window.count_label.text() == "2 words · 9 characters"
