"""Nothing a writer types is lost: drafts per window, two instances, kill -9, odd files, bad folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from app.gui import autosave
from app.gui.main_window import MainWindow
from app.gui.settings import Settings, settings_file

REPO = Path(__file__).resolve().parents[2]


def _window(qtbot, backend) -> MainWindow:
    win = MainWindow(backend, interactive=False)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.worker.model is not None, timeout=5000)
    return win


def _type(qtbot, win: MainWindow, text: str) -> None:
    win.editor.setFocus()
    qtbot.keyClicks(win.editor, text)


def _draft_texts() -> list[str]:
    folder = autosave.autosave_dir()
    return sorted(p.read_text(encoding="utf-8") for p in folder.glob("*.txt")) if folder.exists() else []


def test_an_untouched_window_writes_no_draft(qtbot, fake_backend) -> None:
    win = _window(qtbot, fake_backend)
    assert not win.isWindowModified()
    assert not win.doc.autosave_now()
    assert _draft_texts() == []
    win.close()


def test_each_window_keeps_its_own_draft_and_never_offers_a_live_one(qtbot, fake_backend) -> None:
    a = _window(qtbot, fake_backend)
    _type(qtbot, a, "Precious words")
    assert a.doc.autosave_now()
    assert not a.doc.autosave_now()  # nothing new
    b = _window(qtbot, fake_backend)
    assert not b.check_recovery(accept=True)  # A is alive: its draft is not B's to take
    b.close()  # B closing cleanly removes B's draft only
    assert _draft_texts() == ["Precious words"]
    # A crashes: its process (here: its lock) is gone, the draft stays
    a.doc.autosave_timer.stop()
    a.doc.idle_timer.stop()
    a.doc.draft._lock.unlock()
    a.doc.draft._lock = None
    a.doc.draft._written = False
    c = _window(qtbot, fake_backend)
    assert c.check_recovery(accept=True)
    assert c.editor.text() == "Precious words"
    assert c.editor.document().isModified()
    assert _draft_texts() == ["Precious words"]  # now C's own draft; the orphan is gone
    c.close()
    a.close()
    assert _draft_texts() == []  # clean exits leave nothing to recover


def test_typing_saves_a_draft_after_a_short_pause(qtbot, fake_backend) -> None:
    win = _window(qtbot, fake_backend)
    _type(qtbot, win, "Hello")
    qtbot.waitUntil(lambda: _draft_texts() == ["Hello"], timeout=autosave.IDLE_MS + 5000)
    win.close()


def test_discarding_a_draft_deletes_only_that_draft(qtbot, fake_backend) -> None:
    folder = autosave.autosave_dir()
    folder.mkdir(parents=True)
    (folder / "draft.txt").write_text("from an older version", encoding="utf-8")  # no lock: an orphan
    (folder / "draft.json").write_text(json.dumps({"path": None, "saved_at": 1.0}), encoding="utf-8")
    win = _window(qtbot, fake_backend)
    _type(qtbot, win, "mine")
    assert win.doc.autosave_now()
    assert not win.check_recovery(accept=False)
    assert _draft_texts() == ["mine"]
    win.close()


def _start(env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.app.window_process"], cwd=REPO, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert _reply(proc) == "ready"
    return proc


def _reply(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline()
    assert line, f"the window process ended (code {proc.poll()})"
    return line.strip()


def _send(proc: subprocess.Popen, line: str) -> str:
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return _reply(proc)


@pytest.mark.timeout(180)
def test_two_app_processes_and_a_kill(tmp_path: Path) -> None:
    """A types; B starts, offers nothing of A's and quits; A is killed; the next start offers A's text."""
    env = dict(os.environ, STYLESTEER_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="offscreen")
    folder = tmp_path / "home" / "autosave"
    a = _start(env)
    b = None
    try:
        assert _send(a, "type Every word of this counts") == "typed"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the draft lands after a pause in typing
            if any(p.read_text(encoding="utf-8") == "Every word of this counts" for p in folder.glob("*.txt")):
                break
            time.sleep(0.2)
        else:
            pytest.fail("A never wrote its draft")
        b = _start(env)
        assert _send(b, "recover") == "null"  # A is running: never offered
        b.stdin.write("close\n")
        b.stdin.flush()
        assert b.wait(60) == 0
        assert sorted(p.read_text(encoding="utf-8") for p in folder.glob("*.txt")) == ["Every word of this counts"]
        a.send_signal(signal.SIGKILL)
        a.wait(30)
        c = _start(env)
        try:
            assert json.loads(_send(c, "recover")) == "Every word of this counts"
        finally:
            c.stdin.write("close\n")
            c.stdin.flush()
            assert c.wait(60) == 0
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(30)


def test_an_unwritable_data_folder_is_said_once_and_documents_still_work(
        qtbot, fake_backend, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("STYLESTEER_HOME", str(blocker / "home"))  # cannot be created: ENOTDIR
    win = MainWindow(fake_backend, interactive=False, autoload=False)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: len(win.errors) == 1, timeout=5000)
    assert "cannot be written" in win.errors[0]
    _type(qtbot, win, "Still here")
    for _ in range(3):
        assert not win.doc.autosave_now()
    assert len(win.errors) == 1  # said once, not every few seconds
    out = tmp_path / "elsewhere.md"
    assert win.doc.write(out)
    assert out.read_text(encoding="utf-8") == "Still here"
    win.close()
    assert not win.isVisible()


def test_settings_live_in_the_data_folder_when_it_is_set(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STYLESTEER_HOME", str(tmp_path / "h"))
    s = Settings()
    s.set_model_spec("demo")
    s.sync()
    assert settings_file() == tmp_path / "h" / "settings.ini"
    assert "demo" in (tmp_path / "h" / "settings.ini").read_text()
    assert Settings().model_spec() == "demo"


@pytest.mark.parametrize(("data", "encoding"), [
    ("Caf\u00e9 cr\u00e8me, d\u00e9j\u00e0 vu \u00e0 la fen\u00eatre.\r\nL\u00e0-bas, l'\u00e9t\u00e9 "
     "br\u00fblait les pr\u00e9s.\r\n".encode("latin-1") * 3, "latin-1"),
    ("\ufeffBOM and LF\nsecond line\n".encode(), "utf-8-sig"),
    ("\ufeffUTF-16 text\r\nwith CRLF\r\n".encode("utf-16-le"), "utf-16"),
    (b"old mac\rline ends\r", "cr"),
])
def test_a_document_saved_unchanged_is_byte_identical(qtbot, window: MainWindow, tmp_path: Path,
                                                      data: bytes, encoding: str) -> None:
    (tmp_path / "docs").mkdir()
    path = tmp_path / "docs" / f"doc-{encoding}.txt"
    path.write_bytes(data)
    assert window.open_path(path)
    assert "\r" not in window.editor.text()
    assert window.save()
    assert path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_a_character_the_encoding_cannot_hold_is_never_lost(qtbot, window: MainWindow, tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    original = "Une ligne en fran\u00e7ais, assez longue pour \u00eatre reconnue.\n".encode("latin-1") * 4
    path.write_bytes(original)
    assert window.open_path(path)
    window.editor.moveCursor(QTextCursor.MoveOperation.End)
    window.editor.insertPlainText("\u03bb")  # (QTest cannot type beyond Latin-1)
    assert not window.save()  # not interactive: refused with a message, the file untouched
    assert "cannot hold" in window.errors[-1]
    assert path.read_bytes() == original
    assert "\u03bb" in window.editor.text()


def test_a_failed_save_leaves_no_temporary_file(qtbot, window: MainWindow, tmp_path: Path) -> None:
    _type(qtbot, window, "text")
    missing = tmp_path / "no-such-folder" / "out.md"
    assert not window.doc.write(missing)
    assert "Cannot save" in window.errors[-1]
    assert not (tmp_path / "no-such-folder").exists()
    assert window.editor.text() == "text"


def test_after_accepting_no_hint_or_inspector_speaks_of_a_suggestion(qtbot, window: MainWindow) -> None:
    _type(qtbot, window, "Once")
    with qtbot.waitSignal(window.generationFinished, timeout=10000):
        qtbot.keyClick(window.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert "Tab accepts" in window.gen_label.text()
    ghost = next(t for t in window.editor.tokens() if t.ghost)
    window.inspector.show_token(ghost)
    qtbot.keyClick(window.editor, Qt.Key.Key_Tab)
    assert "Tab accepts" not in window.gen_label.text()
    assert window.inspector.token() is None or not window.inspector.token().ghost
    assert "suggestion" not in window.inspector.token_label.text()


def test_a_new_stage_of_model_loading_is_never_throttled_away(qtbot, fake_backend) -> None:
    from app.jobs.worker import JobContext

    seen: list[str] = []

    class Core:
        class progress:
            @staticmethod
            def emit(_job: int, _done: int, _total: int, text: str) -> None:
                seen.append(text)

    class Job:
        id = 1
        cancel = None

    ctx = JobContext(Core(), Job())  # type: ignore[arg-type]
    ctx.progress(0, 100, "resolving", stage=True)
    ctx.progress(10, 100, "converting (long)", stage=True)  # right after: still shown
    ctx.progress(11, 100, "tick")  # plain progress within the throttle window: dropped
    assert seen == ["resolving", "converting (long)"]


def test_a_library_notice_is_said_once(qtbot, fake_backend) -> None:
    fake_backend.options.library_notice = "The style library was damaged: it was kept as X."
    win = _window(qtbot, fake_backend)
    qtbot.waitUntil(lambda: "The style library was damaged: it was kept as X." in win.errors, timeout=5000)
    win.styles.refresh()
    qtbot.wait(200)
    assert win.errors.count("The style library was damaged: it was kept as X.") == 1
    win.close()


def test_the_same_error_never_stacks_dialogs(qtbot, fake_backend) -> None:
    from PySide6.QtWidgets import QMessageBox

    win = MainWindow(fake_backend, interactive=True, autoload=False)
    qtbot.addWidget(win)
    for _ in range(3):
        win.show_error("The style library cannot be read.")
    win.show_error("Something else.")
    boxes = [b for b in win.findChildren(QMessageBox) if b.isVisible()]
    assert sorted(b.text() for b in boxes) == ["Something else.", "The style library cannot be read."]
    for b in boxes:
        b.close()
    win.show_error("The style library cannot be read.")  # closed: shown again
    assert any(b.isVisible() and b.text().startswith("The style library") for b in win.findChildren(QMessageBox))
    win.interactive = False  # closing asks nothing
    win.close()


@pytest.mark.model
def test_a_damaged_library_is_set_aside_and_the_app_still_generates(qtbot, tmp_path: Path, monkeypatch) -> None:
    from app.jobs.real_backend import RealBackend

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("STYLESTEER_HOME", str(home))
    damaged = os.urandom(64 * 1024)
    (home / "styles.db").write_bytes(damaged)
    win = MainWindow(RealBackend(), interactive=False, model="demo")
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.worker.model is not None, timeout=120000)
    qtbot.waitUntil(lambda: any("damaged" in e for e in win.errors), timeout=10000)
    notice = next(e for e in win.errors if "damaged" in e)
    kept = [p for p in home.iterdir() if p.name.startswith("styles.db.damaged-")]
    assert len(kept) == 1 and kept[0].read_bytes() == damaged  # the original bytes, untouched
    assert str(kept[0]) in notice and "import-file" in notice
    assert len([e for e in win.errors if "damaged" in e]) == 1  # said once
    win.editor.setFocus()
    qtbot.keyClicks(win.editor, "It was a dark night")
    win.controls.max_tokens.setValue(4)
    with qtbot.waitSignal(win.generationFinished, timeout=60000):
        win.generate()
    assert win.editor.ghost_text()
    win.close()


def test_an_import_waiting_for_another_says_so(qtbot, window: MainWindow) -> None:
    panel = window.styles
    panel._set_running(True, "Importing…")
    panel._on_progress(0, 0, "waiting for another import…")
    assert panel.eta.text() == "waiting for another import…"
    assert panel.progress.maximum() == 0  # busy, no percentage
    panel._on_progress(50, 200, "a.txt · 1 of 2 files · 120 tokens")
    assert panel.progress.format() == "%p%" and panel.eta.text().startswith("a.txt · 1 of 2 files")
    panel._set_running(False)


def test_a_read_only_library_in_an_unwritable_folder_is_not_said_twice(
        qtbot, fake_backend, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("STYLESTEER_HOME", str(blocker / "home"))
    fake_backend.options.library_notice = "The style library at X is read-only: the folder cannot be written."
    win = MainWindow(fake_backend, interactive=False, autoload=False)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: bool(win.errors), timeout=5000)
    qtbot.wait(300)
    assert len(win.errors) == 1 and "cannot be written" in win.errors[0]
    win.close()


def test_editing_without_a_key_while_a_suggestion_shows_never_mixes_the_two(qtbot, window: MainWindow) -> None:
    """Edit > Cut, Paste or the context menu edit the document without a key press: the suggestion
    goes first, so neither the saved text nor Esc can mix the suggestion with the writer's text."""
    window.editor.load_text("Once upon a time")
    window.editor.moveCursor(QTextCursor.MoveOperation.End)
    with qtbot.waitSignal(window.generationFinished, timeout=10000):
        window.generate()
    assert window.editor.has_ghost()
    cursor = window.editor.textCursor()
    cursor.setPosition(0)
    cursor.setPosition(5, QTextCursor.MoveMode.KeepAnchor)
    window.editor.setTextCursor(cursor)
    next(a for a in window.menuBar().actions() if a.text() == "&Edit").menu().actions()[3].trigger()  # Cut
    assert not window.editor.has_ghost()
    assert window.editor.text() == window.editor.full_text() == "upon a time"
    qtbot.keyClick(window.editor, Qt.Key.Key_Escape)
    assert window.editor.text() == "upon a time"


def test_no_break_spaces_and_line_separators_survive_a_save(qtbot, window: MainWindow, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    path = tmp_path / "docs" / "fr.txt"
    data = "Il a dit\u00a0: «\u00a0oui\u00a0».\u2028Fin.\n".encode()
    path.write_bytes(data)
    assert window.open_path(path)
    _type(qtbot, window, "!")
    window.editor.undo()
    assert window.save()
    assert path.read_bytes() == data


def test_stop_in_compare_lets_it_run_again(qtbot, window: MainWindow, corpus_files, fake_options) -> None:
    fake_options.token_delay_s = 0.05
    with qtbot.waitSignal(window.styles.reportReady, timeout=10000):
        window.styles.start_import(corpus_files, style="s")
    window.styles.set_active("s")
    window.open_compare()
    window.compare_view.prompt.setPlainText("It was")
    window.compare_view.run_button.click()
    qtbot.waitUntil(lambda: window.compare_view.stop_button.isEnabled(), timeout=5000)
    window.compare_view.stop_button.click()
    qtbot.waitUntil(lambda: window.compare_view.run_button.isEnabled(), timeout=5000)
    window.compare_dialog.close()


def test_find_while_a_suggestion_streams_stops_it(qtbot, window: MainWindow, fake_options) -> None:
    fake_options.token_delay_s = 0.05
    window.editor.load_text("The cat sat on the mat.")
    window.editor.moveCursor(QTextCursor.MoveOperation.End)
    window.generate()
    qtbot.waitUntil(window.editor.has_ghost, timeout=5000)
    window.find_bar.open_find()
    window.find_bar.find_edit.setText("cat")
    assert window.find_bar.find_next()
    qtbot.wait(400)  # tokens that were on their way must not land at the match
    assert not window.editor.has_ghost()
    assert window.editor.full_text() == "The cat sat on the mat."
