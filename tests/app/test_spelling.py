"""Spell checking: misspellings underlined (never in a suggestion), suggestions in the context menu, a personal
word list that outlives the window, and a clear word where no checker can be had."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtGui import QTextCharFormat, QTextCursor

from app.gui import spelling
from app.gui.editor import Editor
from app.gui.main_window import MainWindow
from app.gui.spelling import Spelling
from engine.types import TokenStep

WAVE = QTextCharFormat.UnderlineStyle.SpellCheckUnderline


def underlined(editor: Editor) -> list[str]:
    """The underlined words of the document, in order."""
    doc = editor.document()
    words = []
    block = doc.firstBlock()
    while block.isValid():
        for r in block.layout().formats():
            if r.format.underlineStyle() == WAVE:
                cur = QTextCursor(doc)
                cur.setPosition(block.position() + r.start)
                cur.setPosition(block.position() + r.start + r.length, QTextCursor.MoveMode.KeepAnchor)
                words.append(cur.selectedText())
        block = block.next()
    # setFormat goes a character at a time: neighbouring runs of one word come back merged or not
    return " ".join(words).split()


@pytest.fixture
def checked(qtbot):
    editor = Editor()
    qtbot.addWidget(editor)
    editor.resize(600, 400)
    editor.show()
    speller = Spelling(editor)
    with qtbot.waitSignal(speller.ready, timeout=10_000):
        speller.set_enabled(True)
    yield editor, speller
    speller.close()


def _menu_texts(editor: Editor, pos: int) -> list[str]:
    cur = editor.textCursor()
    cur.setPosition(pos)
    menu = editor.context_menu(editor.cursorRect(cur).center())
    try:
        return [a.text() for a in menu.actions()]
    finally:
        menu.deleteLater()


def _menu_action(editor: Editor, pos: int, text: str):
    cur = editor.textCursor()
    cur.setPosition(pos)
    menu = editor.context_menu(editor.cursorRect(cur).center())
    return menu, next(a for a in menu.actions() if a.text() == text)


def test_misspelled_words_are_underlined_and_the_rest_is_not(qtbot, checked) -> None:
    editor, _ = checked
    editor.setPlainText("Teh quick brown fox jumpd over the lazy dog.\nSee https://exmple.com/pathh or NASAA, "
                        "abc123def, iPhonee and Holmes's hat; don’t worry, it's fine. 😀 Wrng")
    qtbot.waitUntil(lambda: underlined(editor) == ["Teh", "jumpd", "Wrng"], timeout=5000)


def test_ghost_text_is_not_checked(qtbot, checked) -> None:
    editor, _ = checked
    editor.setPlainText("A fine sentnce")
    qtbot.waitUntil(lambda: underlined(editor) == ["sentnce"], timeout=5000)
    editor.moveCursor(QTextCursor.MoveOperation.End)
    editor.begin_ghost()
    editor.append_ghost([TokenStep("steered", 0, 1, " with speling erors", 0.1, 0.2, 0.01, 0.3)])
    qtbot.wait(50)
    assert underlined(editor) == ["sentnce"]
    assert _menu_texts(editor, editor.ghost_span()[0] + 8)[:1] != ["spelling"]  # no suggestions for a suggestion
    editor.accept_ghost()  # accepted, it is the writer's text
    qtbot.waitUntil(lambda: underlined(editor) == ["sentnce", "speling", "erors"], timeout=5000)


def test_the_context_menu_offers_suggestions_and_replaces_the_word(qtbot, checked) -> None:
    editor, _ = checked
    editor.setPlainText("I recieve letters")
    texts = _menu_texts(editor, 4)
    assert texts[0] == "receive" and len([t for t in texts[: texts.index("Add “recieve” to Dictionary")]]) <= 5
    assert "Ignore “recieve”" in texts and "Copy" in " ".join(texts).replace("&", "")
    assert _menu_texts(editor, 14)[0].replace("&", "") != "receive"  # a known word gets the usual menu
    menu, act = _menu_action(editor, 4, "receive")
    act.trigger()
    menu.deleteLater()
    assert editor.toPlainText() == "I receive letters"
    qtbot.waitUntil(lambda: underlined(editor) == [], timeout=5000)
    editor.undo()
    assert editor.toPlainText() == "I recieve letters"


def test_ignore_lasts_while_the_window_is_open(qtbot, checked) -> None:
    editor, _ = checked
    editor.setPlainText("Zorblat and zorblat")
    qtbot.waitUntil(lambda: underlined(editor) == ["Zorblat", "zorblat"], timeout=5000)
    menu, act = _menu_action(editor, 2, "Ignore “Zorblat”")
    act.trigger()
    menu.deleteLater()
    qtbot.waitUntil(lambda: underlined(editor) == [], timeout=5000)
    assert not spelling.personal_path().exists()


def test_added_words_are_kept_in_the_data_folder_and_known_after_a_restart(qtbot, checked, tmp_path) -> None:
    editor, speller = checked
    editor.setPlainText("Quorvane rode to Quorvane")
    qtbot.waitUntil(lambda: underlined(editor) == ["Quorvane", "Quorvane"], timeout=5000)
    menu, act = _menu_action(editor, 2, "Add “Quorvane” to Dictionary")
    act.trigger()
    menu.deleteLater()
    qtbot.waitUntil(lambda: underlined(editor) == [], timeout=5000)
    path = spelling.personal_path()
    assert path.read_text(encoding="utf-8") == "Quorvane\n"
    assert not list(path.parent.glob(".*.tmp"))
    # A second window (a restart) knows the word; a word it adds joins the list, the first one kept.
    other = Editor()
    qtbot.addWidget(other)
    other.show()
    again = Spelling(other)
    with qtbot.waitSignal(again.ready, timeout=10_000):
        again.set_enabled(True)
    other.setPlainText("Quorvane met Brellix")
    qtbot.waitUntil(lambda: underlined(other) == ["Brellix"], timeout=5000)
    again.add_word("Brellix")
    assert path.read_text(encoding="utf-8") == "Quorvane\nBrellix\n"
    speller.add_word("Snorvel")  # the first window's list is out of date: nothing of the other's is lost
    assert path.read_text(encoding="utf-8") == "Quorvane\nBrellix\nSnorvel\n"
    again.close()


def test_switching_off_takes_the_underlines_away(qtbot, checked) -> None:
    editor, speller = checked
    editor.setPlainText("Mispeled")
    qtbot.waitUntil(lambda: underlined(editor) == ["Mispeled"], timeout=5000)
    speller.set_enabled(False)
    qtbot.waitUntil(lambda: underlined(editor) == [], timeout=5000)
    assert _menu_texts(editor, 2)[0] != "Misspelled"


def test_only_blocks_on_screen_are_checked_until_they_scroll_into_view(qtbot, checked, monkeypatch) -> None:
    editor, _ = checked
    seen: list[str] = []
    misspelled = spelling.Speller.misspelled

    def spy(self, text):
        seen.append(text)
        return misspelled(self, text)

    monkeypatch.setattr(spelling.Speller, "misspelled", spy)
    editor.setPlainText("\n".join(f"Line {i} with a wrnog word" for i in range(20_000)))
    qtbot.waitUntil(lambda: "Line 0 with a wrnog word" in seen, timeout=5000)
    assert len(seen) < 1000  # a screenful and a margin, not twenty thousand lines
    last = editor.document().lastBlock()
    assert last.userState() == spelling.STALE
    editor.moveCursor(QTextCursor.MoveOperation.End)
    editor.ensureCursorVisible()
    qtbot.waitUntil(lambda: "Line 19999 with a wrnog word" in seen, timeout=5000)
    qtbot.waitUntil(lambda: any(r.format.underlineStyle() == WAVE for r in last.layout().formats()), timeout=5000)


def test_the_window_toggle_is_remembered(qtbot, fake_backend) -> None:
    win = MainWindow(fake_backend, interactive=False, autoload=False)
    qtbot.addWidget(win)
    assert win.spell_action.isChecked() and win.spelling.enabled()
    win.spell_action.trigger()
    assert not win.spelling.enabled()
    win.close()
    again = MainWindow(fake_backend, interactive=False, autoload=False)
    qtbot.addWidget(again)
    assert not again.spell_action.isChecked() and not again.spelling.enabled()
    again.close()


def test_without_the_library_the_window_says_so_once_and_goes_on(qtbot, fake_backend, monkeypatch) -> None:
    monkeypatch.setattr(spelling, "_dictionary", None)
    monkeypatch.setitem(sys.modules, "spellchecker", None)  # import spellchecker raises ImportError
    win = MainWindow(fake_backend, interactive=False, autoload=False)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: not win.spell_action.isEnabled(), timeout=5000)
    said: list[str] = []
    win.spelling.unavailable.connect(said.append)
    assert "pyspellchecker" in win.statusBar().currentMessage()
    assert not win.spell_action.isChecked()
    win.spelling.set_enabled(True)  # asking again says nothing new
    qtbot.wait(100)
    assert said == []
    win.editor.setPlainText("Nothing is checked hree")
    win.editor.moveCursor(QTextCursor.MoveOperation.End)
    qtbot.keyClicks(win.editor, " and typing works")
    assert win.editor.toPlainText() == "Nothing is checked hree and typing works"
    assert underlined(win.editor) == []
    assert win.settings.spell_check()  # the choice stays for when the library is back
    win.close()


def test_a_dictionary_that_fails_to_load_is_said_once(qtbot, monkeypatch) -> None:
    import spellchecker

    def broken(*_args, **_kwargs):
        raise FileNotFoundError("resources/en.json.gz")

    monkeypatch.setattr(spelling, "_dictionary", None)
    monkeypatch.setattr(spellchecker, "SpellChecker", broken)
    editor = Editor()
    qtbot.addWidget(editor)
    speller = Spelling(editor)
    with qtbot.waitSignal(speller.unavailable, timeout=5000) as said:
        speller.set_enabled(True)
    assert said.args[0].startswith("Spell checking is off: its English dictionary could not be loaded")
    with qtbot.assertNotEmitted(speller.unavailable, wait=100):
        speller.set_enabled(False)
        speller.set_enabled(True)
    assert not speller.active()
    speller.close()


def test_an_unreadable_word_list_is_said_and_never_overwritten(qtbot) -> None:
    path = spelling.personal_path()
    path.write_bytes(b"\xff\xfe\x00bad")  # not UTF-8
    editor = Editor()
    qtbot.addWidget(editor)
    speller = Spelling(editor)
    messages: list[str] = []
    speller.message.connect(messages.append)
    with qtbot.waitSignal(speller.ready, timeout=10_000):
        speller.set_enabled(True)
    assert messages and "could not be read" in messages[0]
    speller.add_word("Quorvane")
    assert speller.speller.known("Quorvane")  # for this session
    assert path.read_bytes() == b"\xff\xfe\x00bad"
    speller.close()


def test_without_a_data_folder_added_words_last_the_session(qtbot, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("STYLESTEER_HOME", str(blocker / "home"))  # cannot be created: ENOTDIR
    editor = Editor()
    qtbot.addWidget(editor)
    speller = Spelling(editor)
    messages: list[str] = []
    speller.message.connect(messages.append)
    with qtbot.waitSignal(speller.ready, timeout=10_000):
        speller.set_enabled(True)
    assert messages and "cannot be kept" in messages[0]
    speller.add_word("Quorvane")
    assert speller.speller.known("Quorvane")
    speller.close()
