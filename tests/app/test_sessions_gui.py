"""Document sessions in the window: settings, Memory, note and tints come back with the document; moved,
changed-outside and damaged sessions; the document file itself never holds anything of ours."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QPlainTextEdit

from app.gui.main_window import MainWindow
from app.jobs.backend import StyleInfo
from engine import session as sessions


def _window(qtbot, fake_backend) -> MainWindow:
    win = MainWindow(fake_backend, interactive=False)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.worker.model is not None, timeout=5000)
    return win


def _close(win: MainWindow) -> None:
    win.close()
    assert not win.worker.thread.isRunning()


def _generate(qtbot, win: MainWindow) -> None:
    win.editor.moveCursor(QTextCursor.MoveOperation.End)
    with qtbot.waitSignal(win.generationFinished, timeout=10000):
        win.generate()


def _tinted(win: MainWindow) -> list[tuple[str, float]]:
    return [(t.step.text, round(t.step.js_bits, 4)) for t in win.editor.tokens() if not t.ghost]


def _set_memory(win: MainWindow, memory: str, note: str = "", depth: int = 3) -> None:
    """Memory and the Author's note as the writer types them into the panel."""
    win.session_panel.set_values(memory, note, depth)
    win.session_panel.changed.emit()


def _save_with_memory(qtbot, fake_backend, doc: Path, memory: str) -> None:
    """Open `doc` in a window, give it a Memory, save and close: its session is on disk."""
    win = _window(qtbot, fake_backend)
    assert win.open_path(doc)
    _set_memory(win, memory)
    assert win.save()
    _close(win)


def test_a_document_comes_back_with_its_settings_memory_note_and_tints(qtbot, fake_backend, tmp_path: Path) -> None:
    fake_backend._styles["holmes"] = StyleInfo("holmes", 1, 10, "t")
    (tmp_path / "docs").mkdir()
    doc = tmp_path / "docs" / "story.md"
    doc.write_bytes(b"It was a dark night.\n\nThe rain fell")
    win = _window(qtbot, fake_backend)
    assert win.open_path(doc)
    win.styles.set_styles(fake_backend.list_styles())
    win.styles.set_active("holmes")
    win.controls.set_lam(0.55)
    win.controls.set_mode("dense")
    win.controls.max_tokens.setValue(6)
    _set_memory(win, "Anna is a smuggler.", "[Tone: bleak]", 1)
    _generate(qtbot, win)
    ctx = win.last_context
    assert ctx.prompt.startswith("Anna is a smuggler.\n\n") and "[Tone: bleak]" in ctx.prompt
    dlg = win.show_context()
    shaded = [s.cursor.selectedText() for s in dlg.findChild(QPlainTextEdit).extraSelections()]
    assert shaded == ["Anna is a smuggler.", "[Tone: bleak]"]
    dlg.close()
    qtbot.keyClick(win.editor, Qt.Key.Key_Tab)
    tinted = _tinted(win)
    assert len(tinted) == 6 and any(js > 0 for _, js in tinted)
    # A second suggestion, discarded: recorded as not accepted.
    _generate(qtbot, win)
    win.discard_suggestion()
    assert win.save()
    text = win.editor.text()
    _close(win)
    assert doc.read_text("utf-8") == text  # the document holds the text, nothing else
    assert list(doc.parent.iterdir()) == [doc]  # nothing beside it

    again = _window(qtbot, fake_backend)
    again.controls.set_lam(0.1)
    again.controls.set_mode("paper")
    again.controls.context_limit.setValue(1024)  # the window's own setting, not the document's
    assert again.open_path(doc)
    assert again.controls.values().context_limit == 1024
    qtbot.waitUntil(lambda: again.styles.active() == "holmes", timeout=5000)
    assert again.controls.lam() == 0.55 and again.controls.values().mode == "dense"
    assert again.controls.values().max_new_tokens == 6
    assert again.session_panel.values() == ("Anna is a smuggler.", "[Tone: bleak]", 1)
    assert _tinted(again) == tinted
    first = again.editor.tokens()[0]
    assert first.step.top_base  # the inspector has the alternatives back
    again.inspector.show_token(first)
    assert again.inspector.p_base.text() == f"{round(first.step.p_base, 4):.3f}" and again.inspector.lam.text() == "–"
    stored = sessions.load(doc)[0]
    assert [g.accepted for g in stored.generations] == [True, False]
    assert stored.generations[0].context_tokens == ctx.token_count
    used = stored.generations[0].settings
    assert (used["style"], used["lam"], used["mode"]) == ("holmes", 0.55, "dense")
    assert used["sampling"]["max_new_tokens"] == 6
    assert not again.sessions.questions
    _close(again)


def test_tints_survive_edits_before_them_and_a_suggestion_showing_at_save(qtbot, fake_backend, tmp_path) -> None:
    doc = tmp_path / "story.txt"
    doc.write_text("Start 🐉 here.", encoding="utf-8")
    win = _window(qtbot, fake_backend)
    assert win.open_path(doc)
    win.controls.max_tokens.setValue(4)
    _generate(qtbot, win)
    qtbot.keyClick(win.editor, Qt.Key.Key_Tab)
    tinted = _tinted(win)
    cursor = win.editor.textCursor()
    cursor.setPosition(0)
    cursor.insertText("Ünïcödé 🐍 first. ")
    win.editor.moveCursor(QTextCursor.MoveOperation.End)
    _generate(qtbot, win)  # still showing when the document is saved: neither saved nor in the way
    assert win.save()
    _close(win)
    again = _window(qtbot, fake_backend)
    assert again.open_path(doc)
    assert _tinted(again) == tinted
    for t in again.editor.tokens():
        assert again.editor.full_text().encode("utf-16-le")[2 * t.start:2 * t.end].decode("utf-16-le") == t.step.text
    _close(again)


def test_a_document_changed_outside_offers_to_keep_or_drop_its_session(qtbot, fake_backend, tmp_path) -> None:
    doc = tmp_path / "story.md"
    doc.write_text("One.\n\nTwo.", encoding="utf-8")
    _save_with_memory(qtbot, fake_backend, doc, "Remember me.")
    doc.write_text("One.\n\nTwo, changed in another editor.", encoding="utf-8")

    drop = _window(qtbot, fake_backend)
    drop.sessions.ask = lambda _question: False
    assert drop.open_path(doc)
    assert "changed outside" in drop.sessions.questions[0]
    assert drop.session_panel.values()[0] == "" and sessions.load(doc)[0] is None
    _close(drop)

    _save_with_memory(qtbot, fake_backend, doc, "Remember me.")
    doc.write_text("Changed again.", encoding="utf-8")
    keep = _window(qtbot, fake_backend)
    keep.sessions.ask = lambda _question: True
    assert keep.open_path(doc)
    assert keep.sessions.questions and keep.session_panel.values()[0] == "Remember me."
    assert sessions.open_document(doc, "Changed again.").status == "ok"  # asked once, not every time
    _close(keep)


def test_a_moved_document_offers_its_session(qtbot, fake_backend, tmp_path) -> None:
    doc = tmp_path / "story.md"
    doc.write_text("A text that moves.", encoding="utf-8")
    _save_with_memory(qtbot, fake_backend, doc, "Moved memory.")
    moved = tmp_path / "elsewhere.md"
    doc.rename(moved)
    again = _window(qtbot, fake_backend)
    again.sessions.ask = lambda _question: True
    assert again.open_path(moved)
    assert "was it moved here" in again.sessions.questions[0]
    assert again.session_panel.values()[0] == "Moved memory."
    assert sessions.load(doc) == (None, None) and sessions.load(moved)[0].memory == "Moved memory."
    _close(again)


def test_a_damaged_session_is_set_aside_and_said_once(qtbot, fake_backend, tmp_path) -> None:
    doc = tmp_path / "story.md"
    doc.write_text("Some text.", encoding="utf-8")
    path = sessions.session_path(doc)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"{broken")
    win = _window(qtbot, fake_backend)
    assert win.open_path(doc)
    assert win.editor.text() == "Some text."
    assert any("was damaged; it was set aside" in e for e in win.errors)
    assert list(path.parent.glob("*.damaged-*.json"))
    _close(win)


def test_memory_longer_than_the_window_is_refused_saying_by_how_much(qtbot, fake_backend) -> None:
    fake_backend.options.context_window = 100
    win = _window(qtbot, fake_backend)
    win.editor.load_text("Short text.")
    win.controls.max_tokens.setValue(10)
    win.session_panel.set_values("word " * 200, "", 3)
    win.editor.moveCursor(QTextCursor.MoveOperation.End)
    win.generate()
    qtbot.waitUntil(lambda: bool(win.errors), timeout=5000)
    assert "Memory is too long" in win.errors[-1] and "over the 90-token budget" in win.errors[-1]
    assert win.editor.text() == "Short text." and not win.editor.has_ghost()
    _close(win)


def test_an_untitled_document_gets_its_session_when_first_saved(qtbot, fake_backend, tmp_path) -> None:
    win = _window(qtbot, fake_backend)
    win.editor.load_text("Fresh text.")
    _set_memory(win, "Kept from the start.", depth=2)
    win.controls.max_tokens.setValue(3)
    _generate(qtbot, win)
    qtbot.keyClick(win.editor, Qt.Key.Key_Tab)
    folder = sessions.sessions_dir()
    assert not folder.exists() or not list(folder.glob("*.json"))  # nothing to bind an untitled session to
    target = tmp_path / "new.md"
    assert win.doc.write(target)
    stored = sessions.load(target)[0]
    assert stored.memory == "Kept from the start." and stored.note_depth == 2
    assert stored.generations[0].accepted and len(stored.generations[0].spans) == 3
    _close(win)


def test_a_recovered_draft_of_a_document_is_not_taken_for_a_change_outside(qtbot, fake_backend, tmp_path) -> None:
    doc = tmp_path / "story.md"
    doc.write_text("Saved text.", encoding="utf-8")
    win = _window(qtbot, fake_backend)
    assert win.open_path(doc)
    _set_memory(win, "Still here.")
    assert win.save()
    win.editor.moveCursor(QTextCursor.MoveOperation.End)
    win.editor.setFocus()
    qtbot.keyClicks(win.editor, " Unsaved words")
    assert win.doc.autosave_now()
    win.sessions.flush()
    # a crash: the window goes away without closing, its draft and its lock left behind
    win.worker.shutdown()
    win.doc.autosave_timer.stop()
    win.doc.idle_timer.stop()
    win.sessions.save_timer.stop()
    win.doc.draft._lock.unlock()
    fresh = _window(qtbot, fake_backend)
    assert fresh.check_recovery(accept=True)
    assert fresh.editor.text() == "Saved text. Unsaved words"
    assert not fresh.sessions.questions and fresh.session_panel.values()[0] == "Still here."
    _close(fresh)


def test_a_suggestion_brought_back_with_alt_bracket_keeps_its_tints_after_reopening(qtbot, fake_backend,
                                                                                   tmp_path: Path) -> None:
    fake_backend._styles["holmes"] = StyleInfo("holmes", 1, 10, "t")
    doc = tmp_path / "story.md"
    doc.write_bytes(b"It was a dark night.")
    win = _window(qtbot, fake_backend)
    assert win.open_path(doc)
    win.styles.set_styles(fake_backend.list_styles())
    win.styles.set_active("holmes")
    win.controls.max_tokens.setValue(5)
    _generate(qtbot, win)
    first = [(t.step.text, round(t.step.js_bits, 4)) for t in win.editor.tokens() if t.ghost]
    with qtbot.waitSignal(win.generationFinished, timeout=10000):
        win.regenerate()
    assert [(t.step.text, round(t.step.js_bits, 4)) for t in win.editor.tokens() if t.ghost] != first
    assert win.cycle_suggestion(-1) is not None
    assert [(t.step.text, round(t.step.js_bits, 4)) for t in win.editor.tokens() if t.ghost] == first
    qtbot.wait(50)  # the event loop runs between Alt+[ and Tab, as it does for a writer
    qtbot.keyClick(win.editor, Qt.Key.Key_Tab)
    tinted = _tinted(win)
    assert tinted == first
    assert win.save()
    _close(win)
    again = _window(qtbot, fake_backend)
    assert again.open_path(doc)
    qtbot.waitUntil(lambda: again.styles.active() == "holmes", timeout=5000)
    assert _tinted(again) == tinted
    _close(again)
    # the generation brought back is the one marked accepted, with its tints; the later one is not
    assert [(g.accepted, g.tints is not None) for g in sessions.load(doc)[0].generations] == [(True, True),
                                                                                              (False, False)]


def test_a_documents_own_phrase_list_is_kept_in_its_session_and_used_with_the_global_one(
        qtbot, fake_backend, tmp_path: Path) -> None:
    from engine.phrase_rules import PhraseRules

    doc, other = tmp_path / "story.md", tmp_path / "other.md"
    doc.write_bytes(b"It was a dark night.")
    other.write_bytes(b"Another story.")
    win = _window(qtbot, fake_backend)
    win.controls.global_rules = PhraseRules(bans=("shivers down",))
    assert win.open_path(doc)
    from app.gui.phrase_dialog import edit_document_phrase_rules

    dlg = edit_document_phrase_rules(win, win.controls, lambda _r: win.sessions.document_rules_changed())
    dlg.add_ban(" suddenly")
    dlg.add_bias(" moor", 4.0)
    dlg._try_accept()
    assert win.controls.document_rules == PhraseRules(bans=(" suddenly",), biases=((" moor", 4.0),))
    used = win.controls.sampling().rules
    assert used is not None and set(used.bans) == {"shivers down", " suddenly"} and used.biases == ((" moor", 4.0),)
    _set_memory(win, "Anna is a smuggler.", depth=2)
    assert win.save()
    # Another document without a session: its own list and Memory start empty; the global list stays.
    assert win.open_path(other)
    assert win.controls.document_rules is None and win.session_panel.values()[0] == ""
    assert win.controls.sampling().rules == PhraseRules(bans=("shivers down",))
    _close(win)
    stored = sessions.load(doc)[0]
    assert stored.phrase_rules() == PhraseRules(bans=(" suddenly",), biases=((" moor", 4.0),))
    again = _window(qtbot, fake_backend)
    assert again.open_path(doc)
    assert again.controls.document_rules == stored.phrase_rules()
    assert again.session_panel.values()[0] == "Anna is a smuggler."
    _close(again)
