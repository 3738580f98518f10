"""The status bar's counts: words, characters and tokens of the writer's text, never of a suggestion, counted
off the GUI thread."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt

from app.gui import counts
from app.gui.main_window import MainWindow
from engine.types import TokenStep


def _ghost(text: str) -> list[TokenStep]:
    return [TokenStep("steered", 0, 1, text, 0.1, 0.2, 0.01, 0.3)]


def test_the_token_count_follows_typing_and_leaves_out_the_suggestion(qtbot, window, fake_backend) -> None:
    window.editor.setFocus()
    qtbot.keyClicks(window.editor, "Two words")
    # The fake tokenizer makes a token of each word and each space run; its cuts make the sum approximate.
    qtbot.waitUntil(lambda: window.token_label.text() == "≈3 tokens", timeout=5000)
    assert window.token_label.isVisible()
    window.editor.begin_ghost()
    window.editor.append_ghost(_ghost(" and many more"))
    asked = fake_backend.options.calls.count("count_tokens")
    window._update_counts()
    qtbot.wait(200)
    assert fake_backend.options.calls.count("count_tokens") == asked  # the suggestion is not counted
    assert window.token_label.text() == "≈3 tokens"
    assert window.count_label.text() == "2 words · 9 characters"
    window.editor.discard_ghost()
    qtbot.keyClicks(window.editor, " here")
    qtbot.waitUntil(lambda: window.token_label.text() == "≈5 tokens", timeout=5000)
    window.editor.begin_ghost()
    window.editor.append_ghost(_ghost(" more"))
    window.editor.accept_ghost()  # an accepted suggestion is the writer's text
    qtbot.waitUntil(lambda: window.token_label.text() == "≈7 tokens", timeout=5000)


def test_text_loaded_just_before_a_suggestion_is_counted_while_the_suggestion_shows(qtbot, window) -> None:
    window.editor.setFocus()
    qtbot.keyClicks(window.editor, "Before")
    qtbot.waitUntil(lambda: window.token_label.text() == "≈1 tokens", timeout=5000)
    # Open a document and press Ctrl+Enter at once: the edit's count is still waiting when the suggestion begins.
    window.editor.load_text("Three plain words")
    assert window.counts._timer.isActive()
    window.editor.begin_ghost()
    window.editor.append_ghost(_ghost(" and a suggestion"))
    qtbot.waitUntil(lambda: window.count_label.text() == "3 words · 17 characters", timeout=5000)
    assert window.token_label.text() == ""  # not the count of the text before: none until it is counted
    window.editor.accept_ghost()
    qtbot.waitUntil(lambda: window.token_label.text().endswith(" tokens"), timeout=5000)


def test_tokens_are_counted_on_the_worker_and_words_on_the_pool(qtbot, window, fake_backend, monkeypatch) -> None:
    threads: list[int] = []
    count = counts.WordCounter.count

    def spy(self, text, cancel=None):
        threads.append(threading.get_ident())
        return count(self, text, cancel)

    monkeypatch.setattr(counts.WordCounter, "count", spy)
    window.editor.load_text("one two three")
    qtbot.waitUntil(lambda: window.count_label.text() == "3 words · 13 characters", timeout=5000)
    qtbot.waitUntil(lambda: window.token_label.text() == "≈5 tokens", timeout=5000)
    assert threads and threading.get_ident() not in threads
    assert threading.get_ident() not in fake_backend.thread_ids


def test_with_no_model_there_is_no_token_count(qtbot, fake_backend) -> None:
    win = MainWindow(fake_backend, interactive=False, autoload=False)
    qtbot.addWidget(win)
    try:
        win.editor.load_text("some words here")
        qtbot.waitUntil(lambda: win.count_label.text() == "3 words · 15 characters", timeout=5000)
        qtbot.wait(100)
        assert win.token_label.text() == ""
        assert "count_tokens" not in fake_backend.options.calls
        win.load_model(win.model_choice())  # once a model is there, the text is counted
        qtbot.waitUntil(lambda: win.token_label.text() == "≈5 tokens", timeout=5000)
    finally:
        win.close()


def test_a_megabyte_document_is_counted_asynchronously(qtbot, window) -> None:
    text = ("It was a dark and stormy night; the rain fell in torrents.\n" * 18_000)[:1_000_000]
    window.editor.load_text(text)
    window._update_counts()
    # Nothing is counted while the GUI thread is busy: the counts arrive later, as events.
    assert window.count_label.text() == "" and window.token_label.text() == ""
    words = len(counts.WORD_RE.findall(text))
    qtbot.waitUntil(lambda: window.count_label.text() == counts.words_text(words, len(text)), timeout=30_000)
    qtbot.waitUntil(lambda: window.token_label.text().endswith(" tokens"), timeout=30_000)
    first = window.token_label.text()
    cursor = window.editor.textCursor()
    cursor.setPosition(10)
    window.editor.setTextCursor(cursor)
    qtbot.keyClicks(window.editor, " new")
    qtbot.waitUntil(lambda: window.token_label.text() not in ("", first), timeout=30_000)
    n = int(window.token_label.text().strip("≈").split()[0].replace(",", ""))
    assert n == int(first.strip("≈").split()[0].replace(",", "")) + 2


def test_word_counts_are_cached_by_line_and_stop_when_cancelled() -> None:
    counter = counts.WordCounter()
    text = "one two\nthree\n\nfour-five six’s\n" + "x " * 70_000
    assert counter.count(text.split("\n")) == 5 + 70_000
    cancel = threading.Event()
    cancel.set()
    assert counter.count(["a"] * 10_000, cancel) is None


def test_the_block_mirror_follows_every_kind_of_edit(qtbot) -> None:
    from PySide6.QtGui import QTextCursor

    from app.gui.editor import Editor

    editor = Editor()
    qtbot.addWidget(editor)
    mirror = counts.BlockMirror(editor.document())

    def same() -> bool:
        return mirror.text() == editor.full_text()

    editor.load_text("first line\nsecond line\n\nfourth\u2028same block")
    assert same()
    cur = editor.textCursor()
    cur.setPosition(3)
    editor.setTextCursor(cur)
    qtbot.keyClicks(editor, "xy")
    assert same()
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert same()
    qtbot.keyClick(editor, Qt.Key.Key_Backspace)
    qtbot.keyClick(editor, Qt.Key.Key_Backspace)
    assert same()
    cur.setPosition(5)
    cur.setPosition(30, QTextCursor.MoveMode.KeepAnchor)
    cur.insertText("replaced\nby\nthree lines")
    assert same()
    editor.begin_ghost()
    editor.append_ghost(_ghost(" ghost\ntext"))
    assert same()
    editor.accept_ghost()
    assert same()
    cur = QTextCursor(editor.document())
    cur.beginEditBlock()  # several changes in one edit block come as one report
    cur.setPosition(0)
    cur.insertText("a\nb")
    cur.movePosition(QTextCursor.MoveOperation.End)
    cur.insertText("\nend")
    cur.setPosition(2)
    cur.deleteChar()
    cur.endEditBlock()
    assert same()
    for _ in range(6):
        editor.undo()
        assert same()
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    assert same() and mirror.lines == [""]
    assert mirror.rebuilds == 0  # every change was followed block by block, never read whole again


def test_the_real_backend_counts_with_the_loaded_tokenizer_and_nothing_before() -> None:
    from types import SimpleNamespace

    import pytest

    from app.jobs.backend import Cancelled
    from app.jobs.real_backend import RealBackend
    from tests.fake_engine import WordTokenizer

    backend = RealBackend()
    assert backend.count_tokens("some text", threading.Event()) is None
    backend.lm = SimpleNamespace(tokenizer=WordTokenizer())
    assert backend.count_tokens("some text", threading.Event()).tokens == 3
    backend.lm = SimpleNamespace(tokenizer=WordTokenizer())  # another model: counted with its tokenizer
    assert backend.count_tokens("some more text", threading.Event()).tokens == 5
    assert backend._counter.tokenizer is backend.lm.tokenizer
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        backend.count_tokens("word " * 20_000, stop)
