"""The style library: list, import (files, folder, drag and drop) with progress/ETA/Cancel, manage, blend."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.blend_editor import BlendEditor
from app.jobs.backend import ImportReport, StyleDetails, StyleInfo
from app.jobs.worker import JobError, Worker
from styles.blend import BlendError, is_blend_text, parse_blend

NO_STYLE = "(none: unsteered)"


def eta_text(done: int, total: int, elapsed: float) -> str:
    """'about 12 s left' from a rate measured so far."""
    if done <= 0 or total <= 0 or elapsed <= 0:
        return "estimating…"
    left = elapsed / done * (total - done)
    if left < 60:
        return f"about {left:.0f} s left"
    return f"about {left / 60:.0f} min left"


def push_button(text: str, slot: Callable[[], object], *, tip: str = "", name: str | None = None) -> QPushButton:
    """A push button whose click calls `slot()` (never with Qt's `checked` flag).

    The accessible name is `name`, or the text without a trailing ellipsis when `name` is None;
    an empty `name` leaves it unset, as does an empty `tip` the tooltip.
    """
    b = QPushButton(text)
    if tip:
        b.setToolTip(tip)
    name = text.rstrip("…") if name is None else name
    if name:
        b.setAccessibleName(name)
    b.clicked.connect(lambda _checked=False: slot())
    return b


class StylePanel(QWidget):
    """Lists styles; all store work goes through the worker."""

    activeStyleChanged = Signal(object)  # str | None
    message = Signal(str)  # one line for the status bar
    reportReady = Signal(object)  # ImportReport, for tests and the status bar

    def __init__(self, worker: Worker, parent: QWidget | None = None, *, ask: bool = True) -> None:
        super().__init__(parent)
        self.worker = worker
        self.ask = ask  # False in tests: no modal dialogs
        self.setAccessibleName("Style library")
        self.setAcceptDrops(True)
        self._styles: list[StyleInfo] = []
        self._active: str | None = None
        self._job: int | None = None
        self._t0 = 0.0

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.table = self._build_table()
        layout.addWidget(self.table)
        self.active_label = QLabel()
        self.active_label.setAccessibleName("Active style")
        layout.addWidget(self.active_label)
        layout.addLayout(self._build_main_actions())
        layout.addLayout(self._build_more_actions())
        self.blend_editor = BlendEditor()
        self.blend_editor.setVisible(False)
        self.blend_editor.useRequested.connect(self.set_active)
        self.blend_editor.saveRequested.connect(self.save_blend)
        layout.addWidget(self.blend_editor)
        layout.addLayout(self._build_progress_row())
        hint = QLabel("Drop files or folders here to import them.")
        hint.setObjectName("hint")
        layout.addWidget(hint)
        self._update_active_label()
        worker.stylesChanged.connect(self.set_styles)

    def _build_table(self) -> QTableWidget:
        """Style, documents, tokens and tokenizer; one row selected at a time, double click to use."""
        table = QTableWidget(0, 4)
        table.setHorizontalHeaderLabels(["Style", "Documents", "Tokens", "Tokenizer"])
        table.setAccessibleName("Styles")
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.verticalHeader().setVisible(False)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in (1, 2):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(3, 110)
        table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        table.setWordWrap(False)
        table.itemDoubleClicked.connect(lambda _item: self.use_selected())
        return table

    def _build_main_actions(self) -> QHBoxLayout:
        """Use, No style, Import files…, Import folder…"""
        row = QHBoxLayout()
        self.use_button = push_button("Use", self.use_selected, tip="Steer toward the selected style")
        self.none_button = push_button("No style", lambda: self.set_active(None), tip="Generate without steering")
        self.import_button = push_button("Import files…", self.import_files, tip="Add text files to a style")
        self.folder_button = push_button("Import folder…", self.import_folder, tip="Add every file in a folder")
        for b in (self.use_button, self.none_button, self.import_button, self.folder_button):
            row.addWidget(b)
        return row

    def _build_more_actions(self) -> QHBoxLayout:
        """Rebuild, Rename…, Delete… and a More menu (details, export, style files)."""
        row = QHBoxLayout()
        self.rebuild_button = push_button("Rebuild", self.rebuild_selected,
                                          tip="Recount the selected style from its documents")
        self.rename_button = push_button("Rename…", self.rename_selected, tip="Rename the selected style")
        self.delete_button = push_button("Delete…", self.delete_selected, tip="Delete the selected style")
        self.more_button = QToolButton()
        self.more_button.setText("More")
        self.more_button.setAccessibleName("More style actions")
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        more = QMenu(self.more_button)
        more.addAction("Details and documents…", lambda: self.show_details())
        more.addAction("Export style to a file…", lambda: self.export_selected())
        more.addAction("Import a style file…", lambda: self.import_style_file())
        self.more_button.setMenu(more)
        self.blend_button = push_button("Blend…", self.toggle_blend_editor,
                                        tip="Mix several styles with weights; use the blend or save it")
        self.blend_button.setCheckable(True)
        for b in (self.rebuild_button, self.rename_button, self.delete_button, self.blend_button, self.more_button):
            row.addWidget(b)
        row.addStretch(1)
        return row

    def _build_progress_row(self) -> QHBoxLayout:
        """Progress bar, time left and Cancel, hidden until an import or rebuild runs."""
        prog = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Import progress")
        self.progress.setVisible(False)
        self.eta = QLabel()
        self.eta.setAccessibleName("Time left")
        # A long file name is clipped (full text in the tooltip) rather than widening the dock.
        self.eta.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.eta.setVisible(False)
        self.cancel_button = push_button("Cancel", self.cancel, tip="Stop the import; the style stays as it was")
        self.cancel_button.setVisible(False)
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.eta)
        prog.addWidget(self.cancel_button)
        return prog

    # --- list --------------------------------------------------------------------
    def refresh(self) -> None:
        self.worker.list_styles(on_error=self._error)

    def set_styles(self, styles: list[StyleInfo]) -> None:
        self._styles = list(styles)
        self._render()
        self.blend_editor.set_styles([s.name for s in self._styles if not s.is_blend])
        if self._active and not self.is_usable(self._active):
            self.set_active(None)  # it was deleted or renamed elsewhere

    def is_usable(self, name: str) -> bool:
        """A listed style or saved blend, or a blend written out whose styles are all listed."""
        if name in self.style_names():
            return True
        if not is_blend_text(name):
            return False
        try:
            parts = parse_blend(name).names
        except BlendError:
            return False
        styles = {s.name for s in self._styles if not s.is_blend}
        return all(p in styles for p in parts)

    def _render(self) -> None:
        styles = self._styles
        selected = self.selected()
        self.table.setRowCount(len(styles))
        for r, s in enumerate(styles):
            name = QTableWidgetItem(("● " if s.name == self._active else "") + s.name)
            name.setData(Qt.ItemDataRole.UserRole, s.name)
            if not s.compatible:
                name.setToolTip("Built with another tokenizer: rebuild it for the loaded model.")
            docs = QTableWidgetItem(f"{s.documents:,}")
            docs.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            toks = QTableWidgetItem(f"{s.tokens:,}")
            toks.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            short = s.tokenizer.replace("\\", "/").rstrip("/").split("/")[-1] or s.tokenizer
            tok = QTableWidgetItem(short + ("" if s.compatible else " (other model)"))
            tok.setToolTip(f"{s.tokenizer}\nfingerprint {s.fingerprint}")
            if s.is_blend:
                tok, tip = _blend_cell(s)
                name.setToolTip(tip)
            name.setToolTip(name.toolTip() or f"{s.name}: {s.documents:,} documents, {s.tokens:,} tokens")
            for c, item in enumerate((name, docs, toks, tok)):
                self.table.setItem(r, c, item)
            if s.name == selected:
                self.table.selectRow(r)

    # --- blends --------------------------------------------------------------------
    def toggle_blend_editor(self) -> None:
        """Show or hide the blend editor; opened on a selected saved blend, it edits that blend."""
        show = not self.blend_editor.isVisible()
        self.blend_editor.setVisible(show)
        self.blend_button.setChecked(show)
        info = self._info(self.selected())
        if show and info is not None and info.is_blend:
            self.blend_editor.load(info.name, info.blend)

    def save_blend(self, name: str, parts: tuple[tuple[str, float], ...]) -> int:
        def done(_r: object) -> None:
            self.message.emit(f"Saved the blend “{name}”; use it like a style.")
            self.refresh()

        return self.worker.save_blend(name, parts, on_done=done, on_error=self._error)

    def _info(self, name: str | None) -> StyleInfo | None:
        return next((s for s in self._styles if s.name == name), None)

    def style_names(self) -> list[str]:
        return [s.name for s in self._styles]

    def styles(self) -> list[StyleInfo]:
        return list(self._styles)

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def select(self, name: str) -> None:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) == name:
                self.table.selectRow(r)

    # --- active style ------------------------------------------------------------
    def active(self) -> str | None:
        return self._active

    def set_active(self, name: str | None) -> None:
        if name == self._active:
            return
        self._active = name
        self._update_active_label()
        self._render()
        self.activeStyleChanged.emit(name)

    def use_selected(self) -> None:
        name = self.selected()
        if name:
            self.set_active(name)

    def _update_active_label(self) -> None:
        self.active_label.setText(f"Active style: <b>{self._active}</b>" if self._active
                                  else f"Active style: {NO_STYLE}")

    # --- import ------------------------------------------------------------------
    def import_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Import files into a style", "",
            "Text (*.txt *.md *.html *.htm *.docx *.epub);;All files (*)")
        if files:
            self.start_import([Path(f) for f in files])

    def import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder into a style")
        if folder:
            self.start_import([Path(folder)])

    def _ask_style_name(self, paths: list[Path]) -> str | None:
        default = self.selected() or (paths[0].stem if len(paths) == 1 else paths[0].parent.name) or "my style"
        if not self.ask:
            return default
        names = self.style_names()
        items = [default] + [n for n in names if n != default]
        name, ok = QInputDialog.getItem(self, "Import into style",
                                        "Style to add these files to (type a new name to create one):",
                                        items, 0, True)
        name = name.strip()
        return name if ok and name else None

    def start_import(self, paths: list[Path], style: str | None = None) -> int | None:
        if self._job is not None:
            self.message.emit("An import is already running.")
            return None
        style = style or self._ask_style_name(paths)
        if not style:
            return None
        self._t0 = time.monotonic()
        self._set_running(True, f"Importing into “{style}”…")
        self._job = self.worker.import_paths(
            style, paths, on_progress=self._on_progress, on_done=self._on_imported,
            on_error=self._on_failed, on_cancelled=self._on_cancelled)
        return self._job

    def rebuild_selected(self) -> None:
        name = self.selected()
        if not name or self._job is not None or self._blend_says(name, "rebuild its styles"):
            return
        self._t0 = time.monotonic()
        self._set_running(True, f"Rebuilding “{name}”…")
        self._job = self.worker.rebuild_style(
            name, on_progress=self._on_progress,
            on_done=lambda _r: self._finish(f"Rebuilt “{name}”."),
            on_error=self._on_failed, on_cancelled=self._on_cancelled)

    def _set_running(self, running: bool, text: str = "") -> None:
        self.progress.setVisible(running)
        self.eta.setVisible(running)
        self.cancel_button.setVisible(running)
        self.progress.setRange(0, 0)
        self.eta.setText("estimating…")
        for b in (self.import_button, self.folder_button, self.rebuild_button, self.rename_button,
                  self.delete_button):
            b.setEnabled(not running)
        if text:
            self.message.emit(text)

    def _on_progress(self, done: int, total: int, what: str) -> None:
        """A percentage on the bar; the file, counts and time left beside it (total 0: waiting)."""
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat("%p%")
            left = eta_text(done, total, time.monotonic() - self._t0)
            self.eta.setText(f"{what} · {left}" if what else left)
        else:
            self.progress.setRange(0, 0)  # busy, no percentage
            self.eta.setText(what or "working…")
        self.eta.setToolTip(self.eta.text())

    def cancel(self) -> None:
        self.worker.cancel(self._job)
        self.cancel_button.setEnabled(False)

    def _finish(self, text: str) -> None:
        self._job = None
        self.cancel_button.setEnabled(True)
        self._set_running(False)
        self.message.emit(text)
        self.refresh()

    def _on_imported(self, report: ImportReport) -> None:
        self._finish(report.summary_text().splitlines()[0])
        self.reportReady.emit(report)
        if report.skipped and self.ask:
            box = QMessageBox(QMessageBox.Icon.Information, "Import finished",
                              report.summary_text().splitlines()[0], parent=self)
            box.setDetailedText(report.summary_text())
            box.setInformativeText(f"{len(report.skipped)} file(s) were skipped; see the details.")
            box.open()
        if self._active is None:
            self.set_active(report.style)

    def _on_cancelled(self) -> None:
        self._finish("Cancelled; the style is unchanged.")

    def _on_failed(self, error: JobError) -> None:
        self._finish(error.message)
        self._error(error)

    def _error(self, error: JobError) -> None:
        if self.ask:
            QMessageBox.warning(self, "Style library", error.message)
        self.message.emit(error.message)

    # --- rename / delete ---------------------------------------------------------
    def rename_selected(self, new: str | None = None) -> None:
        old = self.selected()
        if not old:
            return
        if new is None:
            new, ok = QInputDialog.getText(self, "Rename style", f"New name for “{old}”:", text=old)
            if not ok:
                return
        new = new.strip()
        if not new or new == old:
            return
        self.worker.rename_style(old, new, on_error=self._error,
                                 on_done=lambda _r: self._style_changed(f"Renamed “{old}” to “{new}”.", (old, new)))

    def delete_selected(self, confirm: bool | None = None) -> None:
        name = self.selected()
        if not name:
            return
        if confirm is None:
            answer = QMessageBox.question(
                self, "Delete style", f"Delete the style “{name}” and its counts? This cannot be undone.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            confirm = answer == QMessageBox.StandardButton.Yes
        if not confirm:
            return
        self.worker.delete_style(name, on_error=self._error,
                                 on_done=lambda _r: self._style_changed(f"Deleted “{name}”.", (name, None)))

    def _style_changed(self, text: str, active_follows: tuple[str, str | None]) -> None:
        """After a rename or delete: the active style follows it (old name -> new or None), then relist."""
        old, new = active_follows
        if self._active == old:
            self.set_active(new)
        self.message.emit(text)
        self.refresh()

    # --- details, export, style files ----------------------------------------------------
    def _blend_says(self, name: str, what: str) -> bool:
        """For a saved blend, which has no documents of its own: say what to do instead (True)."""
        info = self._info(name)
        if info is None or not info.is_blend:
            return False
        self.message.emit(f"“{name}” is a blend of styles: {what}.")
        return True

    def show_details(self) -> int | None:
        name = self.selected()
        info = self._info(name)
        if info is not None and info.is_blend:  # a blend's details are its weights: edit them
            self.blend_editor.setVisible(True)
            self.blend_button.setChecked(True)
            self.blend_editor.load(info.name, info.blend)
            return None
        if not name:
            return None
        return self.worker.style_details(name, on_done=self._open_details, on_error=self._error)

    def _open_details(self, details: StyleDetails) -> StyleDetailsDialog:
        dlg = StyleDetailsDialog(details, self)
        dlg.removeRequested.connect(lambda sha: self.remove_document(details.name, sha, dlg))
        self.details_dialog = dlg
        if self.ask:
            dlg.open()
        return dlg

    def remove_document(self, style: str, sha256: str, dlg: StyleDetailsDialog | None = None) -> int:
        def done(_r: object) -> None:
            self.message.emit(f"Removed a document from “{style}”; its n-grams were subtracted.")
            self.refresh()
            if dlg is not None:
                self.worker.style_details(style, on_done=dlg.set_details, on_error=self._error)

        return self.worker.remove_document(style, sha256, on_done=done, on_error=self._error)

    def export_selected(self, file: Path | None = None) -> int | None:
        name = self.selected()
        if not name or self._blend_says(name, "export its styles"):
            return None
        if file is None:
            chosen, _ = QFileDialog.getSaveFileName(self, "Export style", f"{name}.stylesteer",
                                                    "StyleSteer style (*.stylesteer);;All files (*)")
            if not chosen:
                return None
            file = Path(chosen)
        return self.worker.export_style(name, file, on_done=lambda p: self.message.emit(f"Exported “{name}” to {p}"),
                                        on_error=self._error)

    def import_style_file(self, file: Path | None = None) -> int | None:
        if file is None:
            chosen, _ = QFileDialog.getOpenFileName(self, "Import a style file", "",
                                                    "StyleSteer style (*.stylesteer);;All files (*)")
            if not chosen:
                return None
            file = Path(chosen)

        def done(name: str) -> None:
            self.message.emit(f"Added the style “{name}”.")
            self.refresh()

        return self.worker.import_style_file(file, on_done=done, on_error=self._error)

    # --- drag and drop -----------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.start_import(paths)


def _blend_cell(s: StyleInfo) -> tuple[QTableWidgetItem, str]:
    """The tokenizer column of a saved blend (its mix) and the name's tooltip."""
    mix = " + ".join(f"{name} {weight:.0%}" for name, weight in s.blend)
    cell = QTableWidgetItem("blend" + (" (style missing)" if s.missing else "" if s.compatible else " (other model)"))
    cell.setToolTip(mix)
    tip = f"Blend of {mix}"
    if s.missing:
        tip += f"\nNo longer in the library: {', '.join(s.missing)}. Save the blend again without it."
    elif not s.compatible:
        tip += "\nSome of its styles were built with another tokenizer: rebuild them for the loaded model."
    return cell, tip


class StyleDetailsDialog(QDialog):
    """One style's documents (removable one by one), n-gram counts and skipped files."""

    removeRequested = Signal(str)  # sha256

    def __init__(self, details: StyleDetails, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Style details")
        layout = QVBoxLayout(self)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.docs = QTableWidget(0, 2)
        self.docs.setAccessibleName("Documents")
        self.docs.setHorizontalHeaderLabels(["Document", "Tokens"])
        self.docs.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.docs.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.docs.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        layout.addWidget(self.docs, 1)
        self.remove_button = push_button("Remove document", self._remove,
                                         tip="Take this document out of the style (its n-grams are subtracted)")
        layout.addWidget(self.remove_button)
        self.skipped = QLabel()
        self.skipped.setObjectName("hint")
        self.skipped.setWordWrap(True)
        layout.addWidget(self.skipped)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(640, 480)
        self.set_details(details)

    def set_details(self, details: StyleDetails) -> None:
        self.details = details
        self.setWindowTitle(f"Style “{details.name}”")
        grams = ", ".join(f"{n}-grams {c:,}" for n, c in sorted(details.ngrams.items()))
        self.summary.setText(f"<b>{details.name}</b>: {len(details.documents)} document(s). Distinct {grams}.")
        self.docs.setRowCount(len(details.documents))
        for r, (sha, path, tokens) in enumerate(details.documents):
            item = QTableWidgetItem(path)
            item.setData(Qt.ItemDataRole.UserRole, sha)
            item.setToolTip(f"{path}\nSHA-256 {sha}")
            count = QTableWidgetItem(f"{tokens:,}")
            count.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.docs.setItem(r, 0, item)
            self.docs.setItem(r, 1, count)
        if details.skipped:
            lines = "<br>".join(f"{Path(p).name}: {why}" for p, why in details.skipped[:30])
            self.skipped.setText(f"Skipped when imported:<br>{lines}")
        else:
            self.skipped.setText("No files were skipped.")

    def _remove(self) -> None:
        rows = self.docs.selectionModel().selectedRows()
        if rows:
            self.removeRequested.emit(self.docs.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole))
