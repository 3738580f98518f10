"""The open document: open, save, drafts and recovery, for one window."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QIODevice, QObject, QSaveFile, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QStatusBar, QWidget

from app.gui import autosave
from app.gui.editor import Editor
from app.gui.settings import Settings
from styles.readers import DecodedText, ReadError, decode_document

FILE_FILTER = "Text (*.txt *.md);;Markdown (*.md);;All files (*)"
NEWLINE_NAMES = {"\n": "LF", "\r\n": "CRLF", "\r": "CR"}
UTF8 = DecodedText("", "utf-8", False, "\n")


class Host(Protocol):
    """What the controller needs from its window."""

    editor: Editor
    settings: Settings
    interactive: bool
    errors: list[str]

    def show_error(self, message: str, details: str = "", title: str = "StyleSteer") -> None: ...
    def statusBar(self) -> QStatusBar: ...  # Qt's name
    def discard_suggestion(self) -> None: ...


class DocumentController(QObject):
    """Owns the path, the file's encoding, this window's draft slot and the recovery of orphans.

    Documents open with the importer's decoder and save in their own encoding, BOM and line
    ending through QSaveFile. Typing schedules a draft after a short pause and at least every
    INTERVAL_MS; a draft is never the pending suggestion.
    """

    changed = Signal()  # path or modified state: the window retitles
    fileUsed = Signal(object)  # Path opened or saved: the window updates its recent list
    # A new, opened or recovered document is in the editor: its Path (or None), and its file's text as on disk
    # (None when there is no file); a recovered draft's text differs from its file's.
    textReplaced = Signal(object, object)
    saved = Signal(object)  # Path the document was just written to

    def __init__(self, host: Host, parent: QWidget) -> None:
        super().__init__(parent)
        self.host = host
        self.editor = host.editor
        self.widget = parent
        self.path: Path | None = None
        self.fmt: DecodedText | None = None  # how the open file was encoded (None: new, UTF-8)
        self.draft = autosave.DraftSlot()
        self._autosaved_text: str | None = None
        self._autosave_problem: str | None = None
        self._dirty_since: float | None = None
        self.autosave_timer = QTimer(self)  # a backstop; edits schedule drafts themselves
        self.autosave_timer.setInterval(autosave.INTERVAL_MS)
        self.autosave_timer.timeout.connect(self.autosave_now)
        self.autosave_timer.start()
        self.idle_timer = QTimer(self)
        self.idle_timer.setSingleShot(True)
        self.idle_timer.setInterval(autosave.IDLE_MS)
        self.idle_timer.timeout.connect(self.autosave_now)
        self.editor.document().contentsChanged.connect(self._on_edited)
        self.editor.document().modificationChanged.connect(lambda _m: self.changed.emit())

    def title(self) -> str:
        return self.path.name if self.path else "Untitled"

    def modified(self) -> bool:
        return self.editor.document().isModified()

    # --- open and save ---------------------------------------------------------------------
    def confirm_discard(self) -> bool:
        """True when it is fine to drop the current text (saved, or the user said so)."""
        if not self.modified() or not self.editor.text() or not self.host.interactive:
            return True
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(self.widget, "Unsaved changes", "Save the changes to your text first?",
                                      buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        if answer == buttons.Save:
            return self.save()
        return answer == buttons.Discard

    def new_file(self) -> None:
        if not self.confirm_discard():
            return
        self._replace_text("", None, None)

    def open_dialog(self) -> None:
        if not self.confirm_discard():
            return
        name, _ = QFileDialog.getOpenFileName(self.widget, "Open", self.host.settings.last_dir(), FILE_FILTER)
        if name:
            self.open_path(Path(name), confirm=False)

    def open_path(self, path: Path, *, confirm: bool = True) -> bool:
        """Open a document with the importer's decoder; its encoding, BOM and line ends are kept."""
        if confirm and not self.confirm_discard():
            return False
        try:
            doc = decode_document(path.read_bytes())
        except OSError as exc:
            self.host.show_error(f"Cannot open {path.name}: {exc.strerror or exc}")
            return False
        except ReadError as exc:
            self.host.show_error(f"Cannot open {path.name}: {exc}")
            return False
        self._replace_text(doc.text, path, doc)
        self.fileUsed.emit(path)
        if doc.mixed_newlines:
            self.host.statusBar().showMessage(
                f"{path.name} mixes line endings; it will be saved with {NEWLINE_NAMES[doc.newline]}.", 8000)
        return True

    def _replace_text(self, text: str, path: Path | None, fmt: DecodedText | None) -> None:
        self.host.discard_suggestion()
        self.editor.load_text(text)
        self.path, self.fmt = path, fmt
        self.draft.clear()
        self._autosaved_text = None
        self.textReplaced.emit(path, fmt.text if fmt is not None and path is not None else None)
        self.changed.emit()

    def save(self) -> bool:
        if self.path is None:
            return self.save_as()
        return self.write(self.path)

    def save_as(self) -> bool:
        start = str(self.path) if self.path else str(Path(self.host.settings.last_dir() or Path.home()) / "untitled.md")
        name, _ = QFileDialog.getSaveFileName(self.widget, "Save as", start, FILE_FILTER)
        return bool(name) and self.write(Path(name))

    def _encoded(self, text: str, path: Path) -> bytes | None:
        """The bytes to write, in the document's own encoding; None when the user declines."""
        fmt = self.fmt or UTF8
        try:
            return fmt.encode(text)
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start:exc.end]
            message = f"{path.name} is {fmt.encoding}, which cannot hold {bad!r}; save it as UTF-8 instead?"
            if not self.host.interactive:
                self.host.show_error(message + " (not saved)")
                return None
            if QMessageBox.question(self.widget, "Save as UTF-8?", message) != QMessageBox.StandardButton.Yes:
                return None
            self.fmt = DecodedText("", "utf-8", fmt.bom, fmt.newline)
            return self.fmt.encode(text)

    def write(self, path: Path) -> bool:
        """Save atomically (QSaveFile): the old file stays whole until the new one is complete."""
        text = self.editor.text()  # never the pending suggestion
        data = self._encoded(text, path)
        if data is None:
            return False
        out = QSaveFile(str(path))
        ok = out.open(QIODevice.OpenModeFlag.WriteOnly) and out.write(data) == len(data) and out.commit()
        if not ok:
            error = out.errorString()
            out.cancelWriting()
            self.host.show_error(f"Cannot save {path.name}: {error}. Your text is still here.")
            return False
        self.path = path
        self.editor.document().setModified(False)
        self.draft.clear()
        self._autosaved_text = text
        self.fileUsed.emit(path)
        self.saved.emit(path)
        self.host.statusBar().showMessage(f"Saved {path}", 4000)
        self.changed.emit()
        return True

    # --- drafts ----------------------------------------------------------------------------
    def report_data_folder(self, problem: str | None) -> None:
        """Say once why nothing can be written to the data folder; autosave stays quiet after."""
        if problem is None and self.draft.problem is not None:
            problem = f"Autosave is off: {self.draft.problem}."
        if problem is not None:
            self._autosave_problem = problem
            QTimer.singleShot(0, lambda: self.host.show_error(problem))

    def _on_edited(self) -> None:
        """Typing schedules a draft: after a short pause, and at least every INTERVAL_MS."""
        if not self.modified() or self.editor.changing_itself():
            return
        now = time.monotonic()
        if self._dirty_since is None:
            self._dirty_since = now
        if now - self._dirty_since >= autosave.INTERVAL_MS / 1000:
            self.autosave_now()
        else:
            self.idle_timer.start()

    def autosave_now(self) -> bool:
        """Write this window's draft (never the suggestion) when the text changed since the last one."""
        text = self.editor.text()
        if text == self._autosaved_text or not self.modified() or not self.draft.available:
            self._dirty_since = None  # (autosave being off was said once at start)
            return False
        try:
            self.draft.write(text, str(self.path) if self.path else None)
        except OSError as exc:
            message = f"Autosave failed: {exc.strerror or exc}. Save your text with Ctrl+S."
            self._dirty_since = time.monotonic()  # retry at the next pause or interval, not every key
            if message != self._autosave_problem:  # said once, not every few seconds
                self._autosave_problem = message
                self.host.statusBar().showMessage(message, 10000)
                self.host.errors.append(message)
            return False
        self._autosave_problem = None
        self._autosaved_text = text
        self._dirty_since = None
        return True

    def close(self) -> None:
        """A clean close: this window's draft is not needed any more."""
        self.autosave_timer.stop()
        self.idle_timer.stop()
        self.draft.close()

    # --- recovery --------------------------------------------------------------------------
    def check_recovery(self, accept: bool | None = None) -> bool:
        """Offer back drafts whose window is gone (a crash, a kill); returns whether one was restored.

        Drafts of windows that are still running are never offered. With `accept` given (tests),
        the newest draft is recovered (True) or discarded (False) without asking.
        """
        drafts = autosave.orphans(self.draft.folder)
        restored = False
        for i, draft in enumerate(drafts):
            if restored:  # one text per window: the others wait for the menu or the next start
                draft.release()
                continue
            if accept is None:
                choice = self._ask_recover(draft)
            else:
                choice = "later" if i > 0 else ("recover" if accept else "discard")
            if choice == "recover":
                restored = self._recover(draft)
            elif choice == "discard":
                draft.discard()
            else:
                draft.release()
        if restored and len(drafts) > 1:
            self.host.statusBar().showMessage(
                "More unsaved drafts are kept; File > Recover Unsaved Text offers them again.", 10000)
        return restored

    def _ask_recover(self, draft: autosave.Draft) -> str:
        if not self.host.interactive:
            return "later"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(draft.saved_at))
        words = " ".join(draft.text.split())
        preview = words if len(words) <= 160 else words[:160] + "…"
        box = QMessageBox(QMessageBox.Icon.Question, "Recover unsaved text",
                          f"StyleSteer found unsaved text of {draft.title()} from {when}, "
                          f"left by a window that did not close normally:\n\n“{preview}”", parent=self.widget)
        recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Keep for Later", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(recover)
        box.exec()
        clicked = box.clickedButton()
        if clicked is recover:
            return "recover" if self.confirm_discard() else "later"
        return "discard" if clicked is discard else "later"

    def _recover(self, draft: autosave.Draft) -> bool:
        fmt = None
        if draft.path:
            with contextlib.suppress(OSError, ReadError):
                fmt = decode_document(Path(draft.path).read_bytes())
        self._replace_text(draft.text, Path(draft.path) if draft.path else None, fmt)
        self.editor.document().setModified(True)
        if self.autosave_now():
            draft.discard()  # the text now lives in this window's own draft
        else:
            draft.release()  # nowhere else to keep it: the orphan stays until the text is saved
        self.host.statusBar().showMessage(f"Recovered unsaved text of {draft.title()}.", 6000)
        return True
