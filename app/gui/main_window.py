"""The StyleSteer window: editor in the middle, styles/steering/inspector docks, model in the status bar."""

from __future__ import annotations

import os
import tempfile
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui import resources, theme
from app.gui.compare_view import CompareView
from app.gui.controls import SteeringControls
from app.gui.counts import CountKeeper
from app.gui.document import DocumentController
from app.gui.editor import Editor, TokenRef, end_sealed_block
from app.gui.find_bar import FindBar
from app.gui.history import HistoryKeeper
from app.gui.inspector import Inspector
from app.gui.jobslot import JobSlot
from app.gui.model_dialog import DEMO, ModelChoice, ModelDialog
from app.gui.phrase_dialog import apply_phrase_rules, edit_document_phrase_rules, edit_phrase_rules
from app.gui.session_panel import SessionPanel, shade_spans
from app.gui.sessions import SessionKeeper
from app.gui.settings import Settings
from app.gui.spelling import Spelling
from app.gui.style_panel import StylePanel
from app.gui.tune_panel import TunePanel
from app.jobs.backend import Backend, ModelInfo, SteerParams, SweepParams, TuneParams
from app.jobs.worker import JobError, Worker
from engine.types import SamplingConfig

MAX_RECENT = 8

SHORTCUTS = (
    ("Ctrl+Enter", "Generate a continuation at the cursor"),
    ("Tab", "Accept the whole suggestion (one undo step)"),
    ("Ctrl+Right", "Accept the next word of the suggestion"),
    ("Esc", "Stop and discard the suggestion"),
    ("Ctrl+R", "Regenerate the suggestion (next seed); the earlier ones are kept"),
    ("Alt+[ / Alt+]", "Earlier / later suggestion at the same place"),
    ("Ctrl+Shift+C", "Compare baseline and steered"),
    ("Ctrl+Shift+M", "Choose the model"),
    ("Ctrl+Shift+K", "Check the selection (or the text) against the style"),
    ("Ctrl+I", "Import files into a style"),
    ("Ctrl+F / Ctrl+H", "Find, find and replace (F3 / Shift+F3: next, previous)"),
    ("Ctrl+N / Ctrl+O / Ctrl+S", "New, open, save"),
    ("Ctrl+Shift+S", "Save as"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Undo, redo"),
    ("Ctrl+Q", "Quit"),
    ("F1", "This list"),
)


class MainWindow(QMainWindow):
    """Composes the panels; every engine call goes through `self.worker`."""

    generationFinished = Signal(object)  # Summary of the last generation (tests, screenshots)
    errorShown = Signal(str)

    def __init__(self, backend: Backend | None = None, *, settings: Settings | None = None,
                 interactive: bool = True, model: str | None = None, autoload: bool = True) -> None:
        super().__init__()
        self.interactive = interactive  # False in tests: no modal dialogs, messages recorded instead
        self.settings = settings or Settings()
        self.errors: list[str] = []
        self._open_boxes: set[str] = set()  # messages shown in a dialog that is still open
        self._data_folder_problem: str | None = None
        if backend is None:
            from app.jobs.real_backend import RealBackend

            backend = RealBackend()
        self.worker = Worker(backend, self)
        self.worker.unhandledError.connect(self.show_job_error)
        self.worker.notice.connect(lambda line: self.statusBar().showMessage(line, 8000))
        self.worker.modelLoaded.connect(self._on_model_loaded)
        self.worker.libraryNotice.connect(self._on_library_notice)

        self.setWindowTitle("StyleSteer")
        self.setWindowIcon(resources.app_icon())
        self.setObjectName("mainWindow")
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        self.gen_slot = JobSlot(self.worker)
        self.last_context: Any = None  # engine.context.AssembledContext of the last suggestion
        self._gen_prompt = ""
        self._regen_count = 0
        self.load_slot = JobSlot(self.worker)
        self.compare_slot = JobSlot(self.worker)
        self.tune_slot = JobSlot(self.worker)
        self.sweep_slot = JobSlot(self.worker)
        self.sweep_dialog = None
        self.last_summary = None

        self._build_editor()
        self._build_panels(interactive)
        self._build_style_check()
        self._build_compare()
        self._build_status_bar()
        self._build_menus()
        self._apply_theme(self.settings.theme())
        hints = QApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(lambda _s: self._apply_theme(self.settings.theme()))
        self._restore_layout()
        self._data_folder_problem = data_folder_problem()
        self.doc.report_data_folder(self._data_folder_problem)
        self._update_title()
        self._update_actions()
        self.editor.setFocus()  # a writing app starts where you write
        self._start(model, autoload)

    # --- construction helpers ------------------------------------------------------------------
    def _build_editor(self) -> None:
        self.editor = Editor()
        self.find_bar = FindBar(self.editor)
        self.find_bar.message.connect(lambda m: self.statusBar().showMessage(m, 4000))
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.editor, 1)
        column.addWidget(self.find_bar)
        self.setCentralWidget(central)
        self.counts = CountKeeper(self.editor, self.worker, self)  # debounced, off the GUI thread
        self.editor.generateRequested.connect(self.generate)
        self.editor.regenerateRequested.connect(self.regenerate)
        self.editor.stopRequested.connect(self.stop_generation)
        self.editor.ghostChanged.connect(self._update_actions)
        self.editor.ghostChanged.connect(self._on_ghost_changed)
        self.history = HistoryKeeper(self.editor, self)  # the suggestions at the cursor, for Alt+[ / Alt+]
        self.history.message.connect(lambda m: self.statusBar().showMessage(m, 4000))
        self.history.shown.connect(lambda suggestion: self._on_suggestion_shown(suggestion.summary))
        self.history.shown.connect(lambda suggestion: self.sessions.suggestion_shown(suggestion.steps))
        self.doc = DocumentController(self, self)
        self.doc.changed.connect(self._update_title)
        self.doc.fileUsed.connect(self._file_used)

    def _build_panels(self, interactive: bool) -> None:
        self.controls = SteeringControls(self.settings.steer())
        apply_phrase_rules(self.controls, self.settings.phrase_rules())
        self.controls.lamChanged.connect(self._on_lam_changed)
        self.controls.changed.connect(self._save_steer)
        self.styles = StylePanel(self.worker, ask=interactive)
        self.styles.activeStyleChanged.connect(self._on_style_changed)
        self.styles.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.inspector = Inspector()
        self.editor.tokenHovered.connect(self.inspector.show_token)
        self.inspector.alternativeChosen.connect(self.reroll_from)

        self.styles_dock = self._dock("Styles", self.styles, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.controls_dock = self._dock("Steering", self.controls, Qt.DockWidgetArea.RightDockWidgetArea)
        self.inspector_dock = self._dock("Token", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tune_panel = TunePanel()
        self.tune_dock = self._dock("Tune λ", self.tune_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._setup_tune(self.tune_panel)
        self.session_panel = SessionPanel()
        self.session_dock = self._dock("Memory", self.session_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tabifyDockWidget(self.styles_dock, self.session_dock)
        self.styles_dock.raise_()
        self.sessions = SessionKeeper(self, self)
        self.doc.textReplaced.connect(self.sessions.document_replaced)
        self.doc.saved.connect(self.sessions.document_saved)

    def _build_style_check(self) -> None:
        from app.gui.style_check import StyleCheck, StyleCheckPanel

        self.check_panel = StyleCheckPanel()
        self.check_dock = self._dock("Style Check", self.check_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.tune_dock, self.check_dock)
        self.inspector_dock.raise_()
        self.style_check = StyleCheck(self.worker, self.editor, self.check_panel, self.show_error)

    def check_style(self) -> int | None:
        """Tools ▸ Check Style: score the selection (or the text) against the active style."""
        job = self.style_check.run(self.styles.active())
        if job is not None:
            self.check_dock.show()
            self.check_dock.raise_()
        return job

    def _build_compare(self) -> None:
        self.compare_view = CompareView()
        self.compare_view.runRequested.connect(self.run_compare)
        self.compare_view.stopRequested.connect(self.compare_slot.stop)
        self.compare_view.insertRequested.connect(self.insert_text)
        self.compare_dialog = QDialog(self)
        self.compare_dialog.setWindowTitle("Compare: baseline vs steered")
        self.compare_dialog.setAccessibleName("Compare window")
        lay = QVBoxLayout(self.compare_dialog)
        lay.addWidget(self.compare_view)
        self.compare_dialog.resize(1000, 700)

    def _restore_layout(self) -> None:
        self.resize(1280, 800)
        if (geo := self.settings.geometry()) is not None:
            self.restoreGeometry(geo)
        if (state := self.settings.window_state()) is not None:
            self.restoreState(state)

    def _start(self, model: str | None, autoload: bool) -> None:
        """List the styles, bring back the active one, and load the model (the remembered one)."""
        self.styles.refresh()
        wanted_style = self.settings.style()
        if wanted_style:
            self.worker.list_styles(on_done=lambda _names: self._restore_style(wanted_style))
        if autoload:
            choice = self.model_choice()
            spec = model or choice.spec
            self.load_model(ModelChoice(spec, choice.device, choice.quantize, choice.precision), remember=model is None)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock{title.replace(' ', '')}")
        dock.setAccessibleName(f"{title} panel")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _setup_tune(self, panel: TunePanel) -> None:
        self.tabifyDockWidget(self.inspector_dock, self.tune_dock)
        self.inspector_dock.raise_()
        panel.runRequested.connect(self.run_tune)
        # A proposal applies with the mode it was tuned in; the panel starts from the app's mode.
        panel.modeApplied.connect(self.controls.set_mode)
        panel.lambdaApplied.connect(self.controls.set_lam)
        panel.set_mode(self.controls.values().mode)
        self.controls.mode.currentIndexChanged.connect(lambda *_: panel.set_mode(self.controls.values().mode))
        panel.cancelRequested.connect(self.tune_slot.stop)
        panel.set_style("")

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.gen_label = QLabel("")
        self.gen_label.setAccessibleName("Generation status")
        self.load_bar = QProgressBar()
        self.load_bar.setAccessibleName("Model loading progress")
        self.load_bar.setMaximumWidth(180)
        self.load_bar.setRange(0, 100)
        self.load_bar.setVisible(False)
        self.load_cancel = QPushButton("Cancel")
        self.load_cancel.setAccessibleName("Cancel model loading")
        self.load_cancel.setVisible(False)
        self.load_cancel.clicked.connect(self.cancel_load)
        self.context_label = QLabel("")
        self.context_label.setAccessibleName("Context size")
        self.count_label = QLabel("")
        self.count_label.setAccessibleName("Word and character count")
        self.counts.wordsChanged.connect(self.count_label.setText)
        self.token_label = QLabel("")
        self.token_label.setAccessibleName("Token count")
        self.token_label.setToolTip("Tokens of your text with the model's tokenizer (≈: approximate for this "
                                    "tokenizer); a suggestion is not counted")
        self.counts.tokensChanged.connect(self.token_label.setText)
        self.model_label = QLabel("No model")
        self.model_label.setAccessibleName("Model, device, dtype and memory")
        self.style_label = QLabel("")
        self.style_label.setAccessibleName("Active style")
        bar.addPermanentWidget(self.count_label)
        bar.addPermanentWidget(self.token_label)
        bar.addPermanentWidget(self.context_label)
        bar.addPermanentWidget(self.history.label)
        bar.addPermanentWidget(self.gen_label)
        bar.addPermanentWidget(self.style_label)
        bar.addPermanentWidget(self.load_bar)
        bar.addPermanentWidget(self.load_cancel)
        bar.addPermanentWidget(self.model_label)

    def _action(self, menu, text: str, slot, shortcut: Any = None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
        act.triggered.connect(lambda _checked=False: slot())  # never pass `checked` as an argument
        menu.addAction(act)
        return act

    def _build_menus(self) -> None:
        mb = self.menuBar()
        self._build_file_menu(mb.addMenu("&File"))
        self._build_edit_menu(mb.addMenu("&Edit"))
        self._build_generate_menu(mb.addMenu("&Generate"))
        s = mb.addMenu("&Styles")
        self._action(s, "&Import Files…", self.styles.import_files, "Ctrl+I")
        self._action(s, "Import &Folder…", self.styles.import_folder)
        self._action(s, "&Refresh", self.styles.refresh)
        t = mb.addMenu("&Tools")
        self._action(t, "Full λ &Sweep (paper protocol)…", self.open_sweep,
                     tip="Decode the paper's prompts at every λ for the active style; results and figures")
        self._build_spelling(t)
        self.check_action = self._action(t, "Check Style", self.check_style, "Ctrl+Shift+K",
                                         "Tint the selection (or the whole text) by how much it reads like the style")
        m = mb.addMenu("&Model")
        self._action(m, "&Choose Model…", self.choose_model, "Ctrl+Shift+M")
        self.cancel_load_action = self._action(m, "Cancel &Loading", self.cancel_load)
        self._build_view_menu(mb.addMenu("&View"))
        h = mb.addMenu("&Help")
        self._action(h, "&Keyboard Shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents)
        self._action(h, "&About StyleSteer", self.show_about)

    def _build_file_menu(self, f: QMenu) -> None:
        self._action(f, "&New", self.new_file, QKeySequence.StandardKey.New)
        self._action(f, "&Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.recent_menu = f.addMenu("Open &Recent")
        self._rebuild_recent()
        self._action(f, "&Save", self.save, QKeySequence.StandardKey.Save)
        self._action(f, "Save &As…", self.save_as, "Ctrl+Shift+S")
        self._action(f, "Recover &Unsaved Text…", self._recover_menu,
                     tip="Offer back text left by windows that did not close normally")
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)

    def _build_edit_menu(self, e: QMenu) -> None:
        self.undo_action = self._action(e, "&Undo", self.editor.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = self._action(e, "&Redo", self.editor.redo, QKeySequence.StandardKey.Redo)
        e.addSeparator()
        self._action(e, "Cu&t", self.editor.cut, QKeySequence.StandardKey.Cut)
        self._action(e, "&Copy", self.editor.copy, QKeySequence.StandardKey.Copy)
        self._action(e, "&Paste", self.editor.paste, QKeySequence.StandardKey.Paste)
        e.addSeparator()
        self._action(e, "&Find…", lambda: self.find_bar.open_find(), QKeySequence.StandardKey.Find)
        self._action(e, "Find and &Replace…", lambda: self.find_bar.open_find(replace=True), "Ctrl+H")
        self._action(e, "Find &Next", self.find_bar.find_next, QKeySequence.StandardKey.FindNext)
        self._action(e, "Find Pre&vious", self.find_bar.find_previous, QKeySequence.StandardKey.FindPrevious)
        self.editor.undoAvailable.connect(self.undo_action.setEnabled)
        self.editor.redoAvailable.connect(self.redo_action.setEnabled)

    def _build_generate_menu(self, g: QMenu) -> None:
        self.generate_action = self._action(g, "&Generate at Cursor", self.generate, "Ctrl+Return",
                                            "Suggest a continuation in the active style")
        self.generate_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.regenerate_action = self._action(g, "&Regenerate", self.regenerate, "Ctrl+R")
        self._action(g, "&Earlier Suggestion", lambda: self.cycle_suggestion(-1), "Alt+[")
        self._action(g, "&Later Suggestion", lambda: self.cycle_suggestion(1), "Alt+]")
        self.accept_action = self._action(g, "&Accept Suggestion\tTab", self.editor.accept_ghost)
        self.accept_word_action = self._action(g, "Accept &Word\tCtrl+Right", self.editor.accept_word)
        self.stop_action = self._action(g, "&Stop and Discard\tEsc", self.discard_suggestion)
        g.addSeparator()
        self._action(g, "&Compare Baseline and Steered…", self.open_compare, "Ctrl+Shift+C")
        self._action(g, "Show the &Context…", self.show_context, "Ctrl+Shift+V",
                     "The exact text the model saw for the last suggestion")
        self._action(g, "&Banned Phrases and Bias…", lambda: edit_phrase_rules(self, self.settings, self.controls),
                     tip="Phrases never to write, and phrases to favour or avoid, in every document")
        self._action(g, "Banned Phrases and Bias for This &Document…",
                     lambda: edit_document_phrase_rules(self, self.controls,
                                                        lambda _r: self.sessions.document_rules_changed()),
                     tip="This document's own list, kept in its session and used with the one for every document")

    def _build_view_menu(self, v: QMenu) -> None:
        for dock in (self.styles_dock, self.controls_dock, self.inspector_dock, self.tune_dock, self.session_dock,
                     self.check_dock):
            v.addAction(dock.toggleViewAction())
        v.addSeparator()
        self.tints_action = QAction("Show Token &Tints", self, checkable=True)
        self.tints_action.setChecked(self.settings.show_tints())
        self.tints_action.toggled.connect(self._toggle_tints)
        self.editor.set_show_tints(self.settings.show_tints())
        v.addAction(self.tints_action)
        self._build_tint_scale_menu(v.addMenu("Tint &Scale"))
        tm = v.addMenu("T&heme")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for key, label in (("system", "Follow &System"), ("light", "&Light"), ("dark", "&Dark")):
            act = QAction(label, self, checkable=True)
            act.setChecked(self.settings.theme() == key)
            act.triggered.connect(lambda _c=False, k=key: self.set_theme(k))
            group.addAction(act)
            tm.addAction(act)
            self.theme_actions[key] = act

    def _build_spelling(self, tools: QMenu) -> None:
        """Tools ▸ Check Spelling, remembered; where it cannot work, the window says so once."""
        self.spelling = Spelling(self.editor, self)
        self.spelling.message.connect(lambda m: self.statusBar().showMessage(m, 10000))
        self.spelling.unavailable.connect(self._spelling_unavailable)
        tools.addSeparator()
        self.spell_action = QAction("Check S&pelling", self, checkable=True)
        self.spell_action.setStatusTip("Underline misspelled words; right-click one for suggestions")
        self.spell_action.setChecked(self.settings.spell_check())
        self.spell_action.toggled.connect(self._toggle_spelling)
        tools.addAction(self.spell_action)
        self.spelling.set_enabled(self.settings.spell_check())

    def _toggle_spelling(self, on: bool) -> None:
        self.settings.set_spell_check(on)
        self.spelling.set_enabled(on)

    def _spelling_unavailable(self, message: str) -> None:
        self.statusBar().showMessage(message, 15000)
        self.spell_action.blockSignals(True)  # the setting stays: it works again once the library is there
        self.spell_action.setChecked(False)
        self.spell_action.blockSignals(False)
        self.spell_action.setEnabled(False)
        self.spell_action.setStatusTip(message)

    # --- errors ------------------------------------------------------------------------------
    def show_error(self, message: str, details: str = "", title: str = "StyleSteer") -> None:
        """Every error the user should know about ends here: a clear line, details on demand."""
        self.errors.append(message)
        self.statusBar().showMessage(message, 10000)
        self.errorShown.emit(message)
        if not self.interactive:
            return
        if message in self._open_boxes:
            return  # the same message is on screen already: never a stack of identical dialogs
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._open_boxes.add(message)
        box.finished.connect(lambda _r: self._open_boxes.discard(message))
        if details:
            box.setDetailedText(details)
        box.open()

    def show_job_error(self, error: JobError) -> None:
        if error.user:
            self.show_error(error.message)
        else:
            self.show_error(f"Something went wrong ({error.kind}): {error.message}", error.details,
                            "StyleSteer: unexpected error")

    def _on_library_notice(self, text: str) -> None:
        """Said once; a read-only library in a data folder already said to be unwritable is not news."""
        if self._data_folder_problem is not None and "read-only" in text:
            self.statusBar().showMessage(text, 10000)
            return
        self.show_error(text, title="Style library")

    # --- model ---------------------------------------------------------------------------------
    def model_choice(self) -> ModelChoice:
        return ModelChoice(self.settings.model_spec() or DEMO, self.settings.device(), self.settings.quantize(),
                           self.settings.precision())

    def choose_model(self) -> None:
        dlg = ModelDialog(self.model_choice(), self)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.load_model(dlg.choice())

    def load_model(self, choice: ModelChoice, remember: bool = True) -> int:
        self.load_bar.setValue(0)
        self.load_bar.setFormat(f"Loading {choice.spec}… %p%")
        self.load_bar.setVisible(True)
        self.load_cancel.setVisible(True)
        self.statusBar().showMessage(f"Loading {choice.spec}…")

        def progress(done: int, total: int, stage: str) -> None:
            self.load_bar.setValue(int(100 * done / max(1, total)))
            self.load_bar.setToolTip(stage)
            self.statusBar().showMessage(f"Loading {choice.spec}: {stage}")

        def finish() -> None:
            self.load_bar.setVisible(False)
            self.load_cancel.setVisible(False)
            self._update_actions()

        def done(info: ModelInfo) -> None:
            finish()
            if remember:
                self.settings.set_model_spec(choice.spec)
                self.settings.set_device(choice.device)
                self.settings.set_quantize(choice.quantize)
                self.settings.set_precision(choice.precision)
            self.statusBar().showMessage(f"Model ready: {info.name}", 5000)
            self.styles.refresh()  # compatibility depends on the model's tokenizer

        def failed(error: JobError) -> None:
            finish()
            kept = f" Still using {self.worker.model.name}." if self.worker.model else ""
            self.show_error(f"{error.message}{kept}", error.details, "Model could not be loaded")

        def cancelled() -> None:
            finish()
            kept = f"; still using {self.worker.model.name}" if self.worker.model else ""
            self.statusBar().showMessage(f"Model loading cancelled{kept}.", 6000)

        job = self.load_slot.start(self.worker.load_model, choice.spec, device=choice.device_arg,
                                   quantize=choice.quantize_arg, precision=choice.precision_arg,
                                   on_progress=progress, on_done=done,
                                   on_error=failed, on_cancelled=cancelled, on_stale_error=self.show_job_error)
        self._update_actions()
        return job

    def cancel_load(self) -> None:
        self.load_slot.stop()  # its cancelled callback hides the bar

    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model_label.setText(info.status_text())
        self.model_label.setToolTip(f"source: {info.source}\nvocabulary: {info.vocab_size:,} tokens")

    # --- styles and steering --------------------------------------------------------------------
    def _restore_style(self, name: str) -> None:
        if self.styles.is_usable(name):
            self.styles.set_active(name)

    def _on_style_changed(self, name: str | None) -> None:
        self.settings.set_style(name)
        self.style_label.setText(f"Style: {name}" if name else "No style")
        self.tune_panel.set_style(name or "")
        self.compare_view.set_title(name, self.controls.lam(), self.controls.values().mode)

    def _on_lam_changed(self, lam: float) -> None:
        self.worker.set_lam(lam)  # thread-safe; applies from the next token of the current stream
        self.compare_view.set_title(self.styles.active(), lam, self.controls.values().mode)

    def _save_steer(self) -> None:
        self.settings.set_steer(self.controls.values())

    def steer_params(self) -> SteerParams:
        v = self.controls.values()
        return SteerParams(style=self.styles.active(), lam=v.lam, mode=v.mode, budget_bits=v.budget_bits)

    # --- generation ----------------------------------------------------------------------------
    def generating(self) -> bool:
        return self.gen_slot.busy()

    def generate(self) -> int | None:
        """Ctrl+Enter: stream a steered continuation after the cursor as a suggestion."""
        if self.worker.model is None:
            self.show_error("The model is still loading; try again in a moment." if self.load_slot.busy()
                            else "No model is loaded: choose one under Model.")
            return None
        self.stop_generation()
        self.editor.begin_ghost()
        self.history.start_here()  # Ctrl+R adds to the suggestions at this place
        self._regen_count = 0  # Ctrl+R counts seeds up from here
        return self._stream(self.editor.prompt_text())

    def _stream(self, text: str) -> int:
        """Assemble the context for `text` (by tokens, on the worker), then stream from it."""
        sampling = self.controls.sampling()
        self.gen_label.setText("Reading the context…")
        self.history.streaming()

        def assembled(context: Any) -> None:
            self.last_context = context
            self.context_label.setText(f"context {context.token_count:,} / {context.budget:,} tokens")
            self.context_label.setToolTip(context.notice or "The whole text before the cursor fits.")
            if context.notice:
                self.statusBar().showMessage(f"The model sees part of your text: {context.notice}.", 10000)
            self._stream_prompt(context.prompt, sampling)
            self.sessions.generation_started(context, sampling)

        def failed(error: JobError) -> None:
            self.editor.discard_ghost()
            self.gen_label.setText("")
            self._update_actions()
            self.show_job_error(error)

        return self.gen_slot.start(self.worker.assemble_context, text, sampling.max_new_tokens,
                                   *self.sessions.context_options(), self.controls.values().context_limit,
                                   on_done=assembled, on_error=failed,
                                   on_cancelled=self._update_actions,
                                   on_stale_error=self.show_job_error)

    def show_context(self) -> QDialog:
        """The exact text the model saw for the last suggestion, and how much was left out."""
        dlg = QDialog(self)
        dlg.setWindowTitle("Context the model sees")
        dlg.setAccessibleName("Context viewer")
        lay = QVBoxLayout(dlg)
        ctx = self.last_context
        if ctx is None:
            head = "Nothing generated yet: Ctrl+Enter assembles the context from the text before the cursor."
        else:
            cut = ctx.notice or "the whole text before the cursor fits"
            head = (f"{ctx.token_count:,} of {ctx.budget:,} tokens (the window less the new tokens); "
                    f"starts at character {ctx.context_start_char:,}: {cut}.")
            if ctx.memory_span or ctx.note_span:
                head += " Memory and the Author's note are shaded."
        label = QLabel(head)
        label.setWordWrap(True)
        lay.addWidget(label)
        view = QPlainTextEdit(ctx.prompt if ctx is not None else "")
        view.setReadOnly(True)
        view.setAccessibleName("Context text")
        if ctx is not None:
            shade_spans(view, [s for s in (ctx.memory_span, ctx.note_span) if s])
        lay.addWidget(view, 1)
        return _show_with_close(dlg, lay, 760, 560)

    def _stream_prompt(self, prompt: str, sampling: SamplingConfig) -> int:
        if sampling.seed is not None:
            sampling.seed += self._regen_count
        self._gen_prompt = prompt
        self.gen_label.setText("Generating…")

        def done(summary: Any) -> None:
            self.history.keep(summary)
            self._on_suggestion_shown(summary)
            self.generationFinished.emit(summary)

        def failed(error: JobError) -> None:
            self.editor.discard_ghost()
            self.gen_label.setText("")
            self._update_actions()
            self.show_job_error(error)

        def cancelled() -> None:
            self.gen_label.setText("Stopped")
            self._update_actions()

        job = self.gen_slot.start(self.worker.generate, prompt, sampling, self.steer_params(),
                                  on_yield=self._on_tokens, on_done=done, on_error=failed,
                                  on_cancelled=cancelled, on_stale_error=self.show_job_error)
        self._update_actions()
        return job

    def _on_suggestion_shown(self, summary: Any) -> None:
        """A suggestion finished, or a kept one came back (Alt+[ / Alt+])."""
        if summary is not None:
            self.last_summary = summary
            n = len(summary.token_ids)
            js = summary.metrics.get("js_mean_bits")
            extra = f", mean JS {js:.4f} bits" if js is not None else ""
            self.gen_label.setText(f"{n} tokens ({summary.stop_reason}{extra}) — Tab accepts, Esc discards")
        self._update_actions()

    def cycle_suggestion(self, delta: int) -> object:
        """Alt+[ (-1) / Alt+] (+1): the earlier or later suggestion at this place, as it was."""
        if self.generating():
            self.stop_generation()
        return self.history.cycle(delta)

    def _on_tokens(self, steps: list) -> None:
        self.editor.append_ghost(steps)
        self.sessions.tokens(steps)

    def _on_ghost_changed(self, showing: bool) -> None:
        """Once a suggestion is accepted or gone, no hint or inspector still speaks of it."""
        if showing:
            return
        if not self.gen_slot.busy():
            self.gen_label.setText("")
        shown = self.inspector.token()
        if shown is not None and shown.ghost:
            pos = self.editor.textCursor().position()
            ref = self.editor.token_at(pos, before=True) or self.editor.token_at(pos)
            if ref is not None:
                self.inspector.show_token(ref)
            else:
                self.inspector.clear()

    def stop_generation(self) -> None:
        if self.gen_slot.cancel():
            self.gen_label.setText("Stopped")
        self._update_actions()

    def discard_suggestion(self) -> None:
        self.stop_generation()
        self.editor.discard_ghost()

    def regenerate(self) -> int | None:
        """Ctrl+R: a fresh suggestion at the same place with the next seed."""
        self.stop_generation()
        self.editor.discard_ghost()
        self._regen_count += 1
        if self.worker.model is None:
            return self.generate()
        self.editor.begin_ghost()
        return self._stream(self.editor.prompt_text())

    def reroll_from(self, ref: TokenRef, alternative: str) -> int | None:
        """Replace a generated token by an alternative and regenerate from there."""
        if not self.editor.is_current(ref):
            self.statusBar().showMessage("That token has changed since; hover it again.", 5000)
            return None
        self.stop_generation()
        if ref.ghost:
            self.editor.truncate_ghost(ref.index)
        else:
            self.editor.cut_accepted_from(ref)
            self.editor.begin_ghost()
        self.editor.append_ghost([None], [alternative])
        if self.worker.model is None:
            return None
        return self._stream(self.editor.prompt_text())

    def insert_text(self, text: str) -> None:
        """Insert compare output at the cursor, as one undo step."""
        self.discard_suggestion()
        cursor = self.editor.textCursor()
        start = cursor.selectionStart()
        cursor.beginEditBlock()
        cursor.insertText(text)
        end_sealed_block(cursor, start, cursor.position())
        self.editor.setTextCursor(cursor)
        self.raise_()
        self.activateWindow()

    # --- compare ---------------------------------------------------------------------------
    def open_compare(self) -> None:
        prompt = self.editor.text_before_cursor()
        if not self.compare_view.prompt.toPlainText().strip() or prompt.strip():
            self.compare_view.prompt.setPlainText(prompt[-1500:])
        seed = self.controls.values().seed
        self.compare_view.seed.setValue(max(0, seed))
        self.compare_view.set_title(self.styles.active(), self.controls.lam(), self.controls.values().mode)
        self.compare_dialog.show()
        self.compare_dialog.raise_()

    def run_compare(self, prompt: str, seed: int) -> int | None:
        if self.worker.model is None:
            self.show_error("No model is loaded yet.")
            return None
        if not self.styles.active():
            self.show_error("Choose a style to compare against (Styles panel → Use).")
            return None
        view = self.compare_view
        view.begin()

        def ended(error: JobError | None = None) -> None:
            view.finish(None)
            if error is not None:
                self.show_job_error(error)

        return self.compare_slot.start(self.worker.compare, prompt, self.controls.sampling(seed=seed),
                                       self.steer_params(), on_yield=view.add_pairs, on_done=view.finish,
                                       on_error=ended, on_cancelled=ended, on_stale_error=self.show_job_error)

    # --- tune --------------------------------------------------------------------------------
    def run_tune(self, params: TuneParams) -> int | None:
        panel = self.tune_panel
        style = self.styles.active()
        if not style:
            self.show_error("Choose a style first: tuning measures λ against a style.")
            return None
        if self.worker.model is None:
            self.show_error("No model is loaded yet.")
            return None
        return self._run_panel_job(self.tune_slot, self.worker.tune, style, params, panel)

    # --- full sweep ----------------------------------------------------------------------------
    def open_sweep(self) -> QDialog | None:
        from app.gui.sweep_dialog import SweepDialog
        from styles.paths import slug, user_dir

        style = self.styles.active()
        if not style:
            self.show_error("Choose a style first: a sweep measures λ against a style.")
            return None
        if self.sweep_dialog is None or self.sweep_dialog.style_name != style:
            dlg = SweepDialog(style, user_dir() / "sweeps" / slug(style), self)
            dlg.runRequested.connect(self.run_sweep)
            dlg.cancelRequested.connect(self.sweep_slot.stop)
            self.sweep_dialog = dlg
        self.sweep_dialog.show()
        return self.sweep_dialog

    def run_sweep(self, params: SweepParams) -> int | None:
        dlg = self.sweep_dialog
        if dlg is None:
            return None
        if self.worker.model is None:
            self.show_error("No model is loaded yet.")
            return None
        if not params.modes:
            self.show_error("Tick at least one steering mode for the sweep.")
            return None
        return self._run_panel_job(self.sweep_slot, self.worker.sweep, dlg.style_name, params, dlg,
                                   cancelled_text="Cancelled.")

    def _run_panel_job(self, slot: JobSlot, launch: Any, style: str, params: Any, panel: Any,
                       cancelled_text: str | None = None) -> int:
        """A tune or sweep job shown in its panel: busy while it runs, its result or error after."""
        panel.set_busy(True)

        def done(result: Any) -> None:
            panel.set_busy(False)
            panel.show_result(result)
            if isinstance(result, str):
                self.statusBar().showMessage(result.split(".")[0], 8000)

        def ended(error: JobError | None = None) -> None:
            panel.set_busy(False)
            if cancelled_text is not None:
                panel.show_result(error.message if error is not None else cancelled_text)
            if error is not None:
                self.show_job_error(error)

        return slot.start(launch, style, params, on_progress=lambda d, t, _s: panel.set_progress(d, t),
                          on_done=done, on_error=ended, on_cancelled=ended, on_stale_error=self.show_job_error)

    # --- files (the document controller does the work) -------------------------------------------
    @property
    def path(self) -> Path | None:
        return self.doc.path

    def new_file(self) -> None:
        self.doc.new_file()

    def open_dialog(self) -> None:
        self.doc.open_dialog()

    def open_path(self, path: Path, *, confirm: bool = True) -> bool:
        return self.doc.open_path(path, confirm=confirm)

    def save(self) -> bool:
        return self.doc.save()

    def save_as(self) -> bool:
        return self.doc.save_as()

    def check_recovery(self, accept: bool | None = None) -> bool:
        return self.doc.check_recovery(accept)

    def _recover_menu(self) -> None:
        if not self.doc.check_recovery():
            self.statusBar().showMessage("No unsaved text from other windows to recover.", 5000)

    def _file_used(self, path: Path) -> None:
        self.settings.set_last_dir(str(path.parent))
        recent = [str(path)] + [p for p in self.settings.recent_files() if p != str(path)]
        self.settings.set_recent_files(recent[:MAX_RECENT])
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent_files()
        for p in recent:
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda _c=False, p=p: self.open_path(Path(p)))
        self.recent_menu.setEnabled(bool(recent))

    # --- view ----------------------------------------------------------------------------------
    def set_theme(self, choice: str) -> None:
        self.settings.set_theme(choice)
        if choice in self.theme_actions:
            self.theme_actions[choice].setChecked(True)
        self._apply_theme(choice)

    def _apply_theme(self, choice: str) -> None:
        app = QApplication.instance()
        if app is None:
            return
        resolved = theme.apply(app, choice)
        self.editor.set_dark(resolved == "dark")

    def _toggle_tints(self, on: bool) -> None:
        self.settings.set_show_tints(on)
        self.editor.set_show_tints(on)

    def _build_tint_scale_menu(self, menu: QMenu) -> None:
        """View ▸ Tint Scale: each suggestion on its own bits range (the default), or every one on the fixed scale."""
        self.editor.tintScaleChanged.connect(self.inspector.legend.set_scale)
        group = QActionGroup(self)
        self.tint_scale_actions: dict[str, QAction] = {}
        for key, label, tip in (("suggestion", "Per &Suggestion", "Each suggestion's tints spread over the colours"),
                                ("fixed", "&Fixed", "One bits scale for every suggestion, to compare them")):
            act = QAction(label, self, checkable=True)
            act.setStatusTip(tip)
            act.setChecked(self.settings.tint_scale() == key)
            act.triggered.connect(lambda _c=False, k=key: self.set_tint_scale(k))
            group.addAction(act)
            menu.addAction(act)
            self.tint_scale_actions[key] = act
        self.editor.set_tint_scale(self.settings.tint_scale())
        self.inspector.legend.set_scale(*self.editor.legend_scale())

    def set_tint_scale(self, mode: str) -> None:
        self.settings.set_tint_scale(mode)
        self.tint_scale_actions[mode].setChecked(True)
        self.editor.set_tint_scale(mode)

    def show_shortcuts(self) -> QDialog:
        dlg = QDialog(self)
        dlg.setWindowTitle("Keyboard shortcuts")
        dlg.setAccessibleName("Keyboard shortcuts")
        lay = QVBoxLayout(dlg)
        table = QTableWidget(len(SHORTCUTS), 2)
        table.setAccessibleName("Shortcut list")
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().setVisible(False)
        for r, (keys, what) in enumerate(SHORTCUTS):
            table.setItem(r, 0, QTableWidgetItem(keys))
            table.setItem(r, 1, QTableWidgetItem(what))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(table)
        return _show_with_close(dlg, lay, 520, 420)

    def show_about(self) -> None:
        from app import __version__

        QMessageBox.about(self, "About StyleSteer",
                          f"<b>StyleSteer {__version__}</b><br>Steer a local language model toward your own "
                          "writing style with n-gram priors injected into the logits (paper, dense and budget modes).")

    def _update_counts(self) -> None:
        """Count words, characters and tokens of the writer's text now (a pending suggestion does not count)."""
        self.counts.refresh()

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.doc.title()}[*] — StyleSteer")
        self.setWindowModified(self.editor.document().isModified())

    def _update_actions(self, *_args: object) -> None:
        ghost = self.editor.has_ghost()
        self.accept_action.setEnabled(ghost)
        self.accept_word_action.setEnabled(ghost)
        self.stop_action.setEnabled(ghost or self.gen_slot.busy())
        self.cancel_load_action.setEnabled(self.load_slot.busy())

    # --- closing -------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        # A pending suggestion is not the user's text: it neither asks to be saved nor survives.
        self.discard_suggestion()
        if not self.doc.confirm_discard():
            event.ignore()
            return
        try:  # settings are a convenience: failing to store them must never keep the app open
            self.settings.set_geometry(self.saveGeometry())
            self.settings.set_window_state(self.saveState())
            self._save_steer()
            self.settings.sync()
        except Exception:  # noqa: BLE001
            traceback.print_exc()
        self.sessions.close()
        self.compare_dialog.close()
        self.counts.close()
        self.spelling.close()
        self.worker.shutdown()
        self.doc.close()  # a clean exit: this window's draft is not needed any more
        event.accept()


def _show_with_close(dlg: QDialog, lay: QVBoxLayout, width: int, height: int) -> QDialog:
    """A Close button under the dialog's content; shown without blocking the window."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dlg.reject)
    lay.addWidget(buttons)
    dlg.resize(width, height)
    dlg.open()
    return dlg


def data_folder_problem() -> str | None:
    """Why the data folder cannot be written (one line), or None when it can."""
    from styles.paths import ENV_VAR, user_dir

    folder = os.environ.get(ENV_VAR) or "the data folder"
    try:
        folder = str(user_dir())  # creates it
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        return (f"The data folder {folder} cannot be written ({exc.strerror or exc}): autosave is off and "
                "styles open read-only. Opening and saving documents elsewhere still works.")
    return None
