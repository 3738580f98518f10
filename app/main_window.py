"""The StyleSteer window: editor in the middle, styles/steering/inspector docks, model in the status bar."""

from __future__ import annotations

import gc
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import app.qtfix  # noqa: F401  (before any Qt call: see the module)
from app import autosave, resources, theme
from app.backend import Backend, ModelInfo, SteerParams
from app.compare_view import CompareView
from app.controls import SteeringControls
from app.editor import Editor, TokenRef
from app.inspector import Inspector
from app.model_dialog import DEMO, ModelChoice, ModelDialog
from app.settings import Settings, init_application_names
from app.style_panel import StylePanel
from app.worker import JobError, Worker

try:  # the Tune λ dock is written separately; the app works without it
    from app.tune_panel import TunePanel
except ImportError:  # pragma: no cover - depends on the tree
    TunePanel = None  # type: ignore[assignment,misc]

FILE_FILTER = "Text (*.txt *.md);;Markdown (*.md);;All files (*)"
MAX_RECENT = 8

SHORTCUTS = (
    ("Ctrl+Enter", "Generate a continuation at the cursor"),
    ("Tab", "Accept the whole suggestion (one undo step)"),
    ("Ctrl+Right", "Accept the next word of the suggestion"),
    ("Esc", "Stop and discard the suggestion"),
    ("Ctrl+R", "Regenerate the suggestion (next seed)"),
    ("Ctrl+Shift+C", "Compare baseline and steered"),
    ("Ctrl+Shift+M", "Choose the model"),
    ("Ctrl+I", "Import files into a style"),
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
        if backend is None:
            from app.real_backend import RealBackend

            backend = RealBackend()
        self.worker = Worker(backend, self)
        self.worker.unhandledError.connect(self.show_job_error)
        self.worker.notice.connect(lambda line: self.statusBar().showMessage(line, 8000))
        self.worker.modelLoaded.connect(self._on_model_loaded)

        self.setWindowTitle("StyleSteer")
        self.setWindowIcon(resources.app_icon())
        self.setObjectName("mainWindow")
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        self.path: Path | None = None
        self._gen_job: int | None = None
        self._gen_prompt = ""
        self._regen_count = 0
        self._load_job: int | None = None
        self._compare_job: int | None = None
        self._tune_job: int | None = None
        self._sweep_job: int | None = None
        self.sweep_dialog = None
        self.last_summary = None

        self.editor = Editor()
        self.setCentralWidget(self.editor)
        self.editor.generateRequested.connect(self.generate)
        self.editor.regenerateRequested.connect(self.regenerate)
        self.editor.stopRequested.connect(self.stop_generation)
        self.editor.ghostChanged.connect(self._update_actions)
        self.editor.document().modificationChanged.connect(lambda _m: self._update_title())

        self.controls = SteeringControls(self.settings.steer())
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
        self.tune_panel = None
        self.tune_dock = None
        if TunePanel is not None:
            self._setup_tune()

        self.compare_view = CompareView()
        self.compare_view.runRequested.connect(self.run_compare)
        self.compare_view.stopRequested.connect(lambda: self.worker.cancel(self._compare_job))
        self.compare_view.insertRequested.connect(self.insert_text)
        self.compare_dialog = QDialog(self)
        self.compare_dialog.setWindowTitle("Compare: baseline vs steered")
        self.compare_dialog.setAccessibleName("Compare window")
        lay = QVBoxLayout(self.compare_dialog)
        lay.addWidget(self.compare_view)
        self.compare_dialog.resize(1000, 700)

        self._build_status_bar()
        self._build_menus()
        self._apply_theme(self.settings.theme())
        hints = QApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(lambda _s: self._apply_theme(self.settings.theme()))

        self.resize(1280, 800)
        if (geo := self.settings.geometry()) is not None:
            self.restoreGeometry(geo)
        if (state := self.settings.window_state()) is not None:
            self.restoreState(state)

        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(autosave.INTERVAL_MS)
        self.autosave_timer.timeout.connect(self.autosave_now)
        self.autosave_timer.start()
        self._autosaved_text: str | None = None

        self._update_title()
        self._update_actions()
        self.styles.refresh()
        wanted_style = self.settings.style()
        if wanted_style:
            self.worker.list_styles(on_done=lambda names: self._restore_style(wanted_style))
        if autoload:
            choice = self.model_choice()
            spec = model or choice.spec
            self.load_model(ModelChoice(spec, choice.device, choice.quantize), remember=model is None)

    # --- construction helpers ------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock{title.replace(' ', '')}")
        dock.setAccessibleName(f"{title} panel")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _setup_tune(self) -> None:
        try:
            panel = TunePanel()
        except Exception as exc:  # noqa: BLE001 - a broken optional panel must not take the app down
            self.statusBar().showMessage(f"Tune panel unavailable: {exc}", 8000)
            return
        self.tune_panel = panel
        self.tune_dock = self._dock("Tune λ", panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.inspector_dock, self.tune_dock)
        self.inspector_dock.raise_()
        panel.runRequested.connect(self.run_tune)
        # A proposal applies with the mode it was tuned in; the panel starts from the app's mode.
        panel.modeApplied.connect(self.controls.set_mode)
        panel.lambdaApplied.connect(self.controls.set_lam)
        panel.set_mode(self.controls.values().mode)
        self.controls.mode.currentIndexChanged.connect(lambda *_: panel.set_mode(self.controls.values().mode))
        if hasattr(panel, "cancelRequested"):
            panel.cancelRequested.connect(lambda: self.worker.cancel(self._tune_job))
        if hasattr(panel, "set_style"):
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
        self.model_label = QLabel("No model")
        self.model_label.setAccessibleName("Model, device, dtype and memory")
        self.style_label = QLabel("")
        self.style_label.setAccessibleName("Active style")
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
        f = mb.addMenu("&File")
        self._action(f, "&New", self.new_file, QKeySequence.StandardKey.New)
        self._action(f, "&Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.recent_menu = f.addMenu("Open &Recent")
        self._rebuild_recent()
        self._action(f, "&Save", self.save, QKeySequence.StandardKey.Save)
        self._action(f, "Save &As…", self.save_as, "Ctrl+Shift+S")
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        e = mb.addMenu("&Edit")
        self.undo_action = self._action(e, "&Undo", self.editor.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = self._action(e, "&Redo", self.editor.redo, QKeySequence.StandardKey.Redo)
        e.addSeparator()
        self._action(e, "Cu&t", self.editor.cut, QKeySequence.StandardKey.Cut)
        self._action(e, "&Copy", self.editor.copy, QKeySequence.StandardKey.Copy)
        self._action(e, "&Paste", self.editor.paste, QKeySequence.StandardKey.Paste)
        self.editor.undoAvailable.connect(self.undo_action.setEnabled)
        self.editor.redoAvailable.connect(self.redo_action.setEnabled)

        g = mb.addMenu("&Generate")
        self.generate_action = self._action(g, "&Generate at Cursor", self.generate, "Ctrl+Return",
                                            "Suggest a continuation in the active style")
        self.generate_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.regenerate_action = self._action(g, "&Regenerate", self.regenerate, "Ctrl+R")
        self.accept_action = self._action(g, "&Accept Suggestion\tTab", self.editor.accept_ghost)
        self.accept_word_action = self._action(g, "Accept &Word\tCtrl+Right", self.editor.accept_word)
        self.stop_action = self._action(g, "&Stop and Discard\tEsc", self._stop_and_discard)
        g.addSeparator()
        self._action(g, "&Compare Baseline and Steered…", self.open_compare, "Ctrl+Shift+C")

        s = mb.addMenu("&Styles")
        self._action(s, "&Import Files…", self.styles.import_files, "Ctrl+I")
        self._action(s, "Import &Folder…", self.styles.import_folder)
        self._action(s, "&Refresh", self.styles.refresh)

        t = mb.addMenu("&Tools")
        self._action(t, "Full λ &Sweep (paper protocol)…", self.open_sweep,
                     tip="Decode the paper's prompts at every λ for the active style; results and figures")

        m = mb.addMenu("&Model")
        self._action(m, "&Choose Model…", self.choose_model, "Ctrl+Shift+M")
        self.cancel_load_action = self._action(m, "Cancel &Loading", self.cancel_load)

        v = mb.addMenu("&View")
        for dock in (self.styles_dock, self.controls_dock, self.inspector_dock, self.tune_dock):
            if dock is not None:
                v.addAction(dock.toggleViewAction())
        v.addSeparator()
        self.tints_action = QAction("Show Token &Tints", self, checkable=True)
        self.tints_action.setChecked(self.settings.show_tints())
        self.tints_action.toggled.connect(self._toggle_tints)
        self.editor.set_show_tints(self.settings.show_tints())
        v.addAction(self.tints_action)
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

        h = mb.addMenu("&Help")
        self._action(h, "&Keyboard Shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents)
        self._action(h, "&About StyleSteer", self.show_about)

    # --- errors ------------------------------------------------------------------------------
    def show_error(self, message: str, details: str = "", title: str = "StyleSteer") -> None:
        """Every error the user should know about ends here: a clear line, details on demand."""
        self.errors.append(message)
        self.statusBar().showMessage(message, 10000)
        self.errorShown.emit(message)
        if not self.interactive:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=self)
        if details:
            box.setDetailedText(details)
        box.open()

    def show_job_error(self, error: JobError) -> None:
        if error.user:
            self.show_error(error.message)
        else:
            self.show_error(f"Something went wrong ({error.kind}): {error.message}", error.details,
                            "StyleSteer: unexpected error")

    # --- model ---------------------------------------------------------------------------------
    def model_choice(self) -> ModelChoice:
        return ModelChoice(self.settings.model_spec() or DEMO, self.settings.device(), self.settings.quantize())

    def choose_model(self) -> None:
        dlg = ModelDialog(self.model_choice(), self)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.load_model(dlg.choice())

    def load_model(self, choice: ModelChoice, remember: bool = True) -> int:
        if self._load_job is not None:
            self.worker.cancel(self._load_job)
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
            if self._load_job == job:
                self._load_job = None
            self.load_bar.setVisible(False)
            self.load_cancel.setVisible(False)
            self._update_actions()

        def done(info: ModelInfo) -> None:
            finish()
            if remember:
                self.settings.set_model_spec(choice.spec)
                self.settings.set_device(choice.device)
                self.settings.set_quantize(choice.quantize)
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

        job = self.worker.load_model(choice.spec, device=choice.device_arg, quantize=choice.quantize_arg,
                                     on_progress=progress, on_done=done, on_error=failed,
                                     on_cancelled=cancelled)
        self._load_job = job
        self._update_actions()
        return job

    def cancel_load(self) -> None:
        self.worker.cancel(self._load_job)

    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model_label.setText(info.status_text())
        self.model_label.setToolTip(f"source: {info.source}\nvocabulary: {info.vocab_size:,} tokens")

    # --- styles and steering --------------------------------------------------------------------
    def _restore_style(self, name: str) -> None:
        if name in self.styles.style_names():
            self.styles.set_active(name)

    def _on_style_changed(self, name: str | None) -> None:
        self.settings.set_style(name)
        self.style_label.setText(f"Style: {name}" if name else "No style")
        if self.tune_panel is not None and hasattr(self.tune_panel, "set_style"):
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
        return self._gen_job is not None

    def generate(self) -> int | None:
        """Ctrl+Enter: stream a steered continuation after the cursor as a suggestion."""
        if self.worker.model is None:
            self.show_error("The model is still loading; try again in a moment." if self._load_job
                            else "No model is loaded: choose one under Model.")
            return None
        self.stop_generation()
        self.editor.begin_ghost()
        self._regen_count = 0  # Ctrl+R counts seeds up from here
        return self._stream(self.editor.prompt_text())

    def _stream(self, prompt: str) -> int:
        sampling = self.controls.sampling()
        if sampling.seed is not None:
            sampling.seed += self._regen_count
        self._gen_prompt = prompt
        self.gen_label.setText("Generating…")
        job_holder: list[int] = []

        def on_tokens(steps: list) -> None:
            if self._gen_job == job_holder[0]:
                self.editor.append_ghost(steps)

        def done(summary: Any) -> None:
            if self._gen_job != job_holder[0]:
                return
            self._gen_job = None
            self.last_summary = summary
            n = len(summary.token_ids)
            js = summary.metrics.get("js_mean_bits")
            extra = f", mean JS {js:.4f} bits" if js is not None else ""
            self.gen_label.setText(f"{n} tokens ({summary.stop_reason}{extra}) — Tab accepts, Esc discards")
            self._update_actions()
            self.generationFinished.emit(summary)

        def failed(error: JobError) -> None:
            if self._gen_job == job_holder[0]:
                self._gen_job = None
                self.editor.discard_ghost()
                self.gen_label.setText("")
                self._update_actions()
            self.show_job_error(error)

        def cancelled() -> None:
            if self._gen_job == job_holder[0]:
                self._gen_job = None
                self.gen_label.setText("Stopped")
                self._update_actions()

        job = self.worker.generate(prompt, sampling, self.steer_params(), on_yield=on_tokens, on_done=done,
                                   on_error=failed, on_cancelled=cancelled)
        job_holder.append(job)
        self._gen_job = job
        self._update_actions()
        return job

    def stop_generation(self) -> None:
        if self._gen_job is not None:
            self.worker.cancel(self._gen_job)
            self._gen_job = None
            self.gen_label.setText("Stopped")
        self._update_actions()

    def _stop_and_discard(self) -> None:
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
        self._stop_and_discard()
        cursor = self.editor.textCursor()
        cursor.beginEditBlock()
        cursor.insertText(text)
        cursor.endEditBlock()
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
        if self._compare_job is not None:
            self.worker.cancel(self._compare_job)
        view = self.compare_view
        view.begin()
        holder: list[int] = []

        def pairs(items: list) -> None:
            if self._compare_job == holder[0]:
                view.add_pairs(items)

        def done(summaries: Any) -> None:
            if self._compare_job == holder[0]:
                self._compare_job = None
                view.finish(summaries)

        def ended(error: JobError | None = None) -> None:
            if self._compare_job == holder[0]:
                self._compare_job = None
                view.finish(None)
            if error is not None:
                self.show_job_error(error)

        job = self.worker.compare(prompt, self.controls.sampling(seed=seed), self.steer_params(),
                                  on_yield=pairs, on_done=done, on_error=ended, on_cancelled=ended)
        holder.append(job)
        self._compare_job = job
        return job

    # --- tune --------------------------------------------------------------------------------
    def run_tune(self, params: dict) -> int | None:
        panel = self.tune_panel
        style = self.styles.active()
        if panel is None:
            return None
        if not style:
            self.show_error("Choose a style first: tuning measures λ against a style.")
            return None
        if self.worker.model is None:
            self.show_error("No model is loaded yet.")
            return None
        panel.set_busy(True)

        def done(result: Any) -> None:
            self._tune_job = None
            panel.set_busy(False)
            panel.show_result(result)

        def ended(error: JobError | None = None) -> None:
            self._tune_job = None
            panel.set_busy(False)
            if error is not None:
                self.show_job_error(error)

        self._tune_job = self.worker.tune(style, dict(params), on_progress=lambda d, t, _s: panel.set_progress(d, t),
                                          on_done=done, on_error=ended, on_cancelled=ended)
        return self._tune_job

    # --- full sweep ----------------------------------------------------------------------------
    def open_sweep(self) -> QDialog | None:
        from app.sweep_dialog import SweepDialog
        from styles.paths import user_dir

        style = self.styles.active()
        if not style:
            self.show_error("Choose a style first: a sweep measures λ against a style.")
            return None
        if self.sweep_dialog is None or self.sweep_dialog.style_name != style:
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in style)
            dlg = SweepDialog(style, user_dir() / "sweeps" / safe, self)
            dlg.runRequested.connect(self.run_sweep)
            dlg.cancelRequested.connect(lambda: self.worker.cancel(self._sweep_job))
            self.sweep_dialog = dlg
        self.sweep_dialog.show()
        return self.sweep_dialog

    def run_sweep(self, params: dict) -> int | None:
        dlg = self.sweep_dialog
        if dlg is None:
            return None
        if self.worker.model is None:
            self.show_error("No model is loaded yet.")
            return None
        if not params.get("modes"):
            self.show_error("Tick at least one steering mode for the sweep.")
            return None
        dlg.set_busy(True)

        def done(text: str) -> None:
            self._sweep_job = None
            dlg.set_busy(False)
            dlg.show_result(text)
            self.statusBar().showMessage(text.split(".")[0], 8000)

        def ended(error: JobError | None = None) -> None:
            self._sweep_job = None
            dlg.set_busy(False)
            dlg.show_result(error.message if error is not None else "Cancelled.")
            if error is not None:
                self.show_job_error(error)

        self._sweep_job = self.worker.sweep(dlg.style_name, dict(params),
                                            on_progress=lambda d, t, _s: dlg.set_progress(d, t),
                                            on_done=done, on_error=ended, on_cancelled=ended)
        return self._sweep_job

    # --- files ---------------------------------------------------------------------------------
    def _confirm_discard(self) -> bool:
        """True when it is fine to drop the current text (saved, or the user said so)."""
        if not self.editor.document().isModified() or not self.editor.text():
            return True
        if not self.interactive:
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes", "Save the changes to your text first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new_file(self) -> None:
        if not self._confirm_discard():
            return
        self._stop_and_discard()
        self.editor.load_text("")
        self.path = None
        autosave.clear()
        self._update_title()

    def open_dialog(self) -> None:
        if not self._confirm_discard():
            return
        name, _ = QFileDialog.getOpenFileName(self, "Open", self.settings.last_dir(), FILE_FILTER)
        if name:
            self.open_path(Path(name), confirm=False)

    def open_path(self, path: Path, *, confirm: bool = True) -> bool:
        if confirm and not self._confirm_discard():
            return False
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.show_error(f"Cannot open {path.name}: {exc.strerror or exc}")
            return False
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            from charset_normalizer import from_bytes

            best = from_bytes(data).best()
            if best is None:
                self.show_error(f"Cannot open {path.name}: it does not look like text.")
                return False
            text = str(best)
        self._stop_and_discard()
        self.editor.load_text(text.replace("\r\n", "\n"))
        self.path = path
        self.settings.set_last_dir(str(path.parent))
        self._add_recent(path)
        autosave.clear()
        self._autosaved_text = None
        self._update_title()
        return True

    def save(self) -> bool:
        if self.path is None:
            return self.save_as()
        return self._write(self.path)

    def save_as(self) -> bool:
        start = str(self.path) if self.path else str(Path(self.settings.last_dir() or Path.home()) / "untitled.md")
        name, _ = QFileDialog.getSaveFileName(self, "Save as", start, FILE_FILTER)
        if not name:
            return False
        return self._write(Path(name))

    def _write(self, path: Path) -> bool:
        text = self.editor.text()  # never the pending suggestion
        try:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            self.show_error(f"Cannot save {path.name}: {exc.strerror or exc}. Your text is still here.")
            return False
        self.path = path
        self.settings.set_last_dir(str(path.parent))
        self._add_recent(path)
        self.editor.document().setModified(False)
        autosave.clear()
        self._autosaved_text = text
        self.statusBar().showMessage(f"Saved {path}", 4000)
        self._update_title()
        return True

    def _add_recent(self, path: Path) -> None:
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

    def autosave_now(self) -> bool:
        """Write the draft (without any suggestion) when it changed since the last autosave."""
        text = self.editor.text()
        if text == self._autosaved_text or not self.editor.document().isModified():
            return False
        try:
            autosave.write(text, str(self.path) if self.path else None)
        except OSError as exc:
            self.statusBar().showMessage(f"Autosave failed: {exc.strerror or exc}", 8000)
            return False
        self._autosaved_text = text
        return True

    def check_recovery(self, accept: bool | None = None) -> bool:
        """Offer back a draft left by a crash; returns whether it was restored."""
        draft = autosave.read()
        if not autosave.worth_recovering(draft):
            return False
        assert draft is not None
        if accept is None:
            if not self.interactive:
                return False
            where = f" of {Path(draft.path).name}" if draft.path else ""
            answer = QMessageBox.question(
                self, "Recover unsaved text",
                f"StyleSteer found unsaved text{where} from a previous session. Recover it?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
            accept = answer == QMessageBox.StandardButton.Yes
        if not accept:
            autosave.clear()
            return False
        self.editor.load_text(draft.text)
        self.path = Path(draft.path) if draft.path else None
        self.editor.document().setModified(True)
        self._update_title()
        self.statusBar().showMessage("Recovered unsaved text.", 6000)
        return True

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
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dlg.reject)
        lay.addWidget(buttons)
        dlg.resize(520, 420)
        dlg.open()
        return dlg

    def show_about(self) -> None:
        from app import __version__

        QMessageBox.about(self, "About StyleSteer",
                          f"<b>StyleSteer {__version__}</b><br>Steer a local language model toward your own "
                          "writing style with n-gram priors injected into the logits (paper, dense and budget modes).")

    def _update_title(self) -> None:
        name = self.path.name if self.path else "Untitled"
        self.setWindowTitle(f"{name}[*] — StyleSteer")
        self.setWindowModified(self.editor.document().isModified())

    def _update_actions(self, *_args: object) -> None:
        ghost = self.editor.has_ghost()
        self.accept_action.setEnabled(ghost)
        self.accept_word_action.setEnabled(ghost)
        self.stop_action.setEnabled(ghost or self._gen_job is not None)
        self.cancel_load_action.setEnabled(self._load_job is not None)

    # --- closing -------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        # A pending suggestion is not the user's text: it neither asks to be saved nor survives.
        self._stop_and_discard()
        if not self._confirm_discard():
            event.ignore()
            return
        self.settings.set_geometry(self.saveGeometry())
        self.settings.set_window_state(self.saveState())
        self._save_steer()
        self.settings.sync()
        self.autosave_timer.stop()
        self.compare_dialog.close()
        self.worker.shutdown()
        autosave.clear()  # a clean exit: nothing to recover
        event.accept()


def _install_excepthook(window_ref: list[MainWindow]) -> None:
    """An exception in a slot is never silent: it reaches the user with its traceback."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        previous(exc_type, exc, tb)
        if window_ref:
            window_ref[0].show_error(f"Unexpected error: {exc_type.__name__}: {exc}", text,
                                     "StyleSteer: unexpected error")

    sys.excepthook = hook


def preload_engine(app: QApplication | None = None) -> None:
    """Import torch and transformers before the event loop runs, behind a splash screen.

    Importing them later on the worker thread would hold the GIL for long stretches
    (C extensions load without releasing it) and freeze the window for seconds.
    """
    splash = None
    if app is not None:
        from PySide6.QtWidgets import QSplashScreen

        pix = QPixmap.fromImage(resources.render_svg(resources.read_bytes("stylesteer.svg"), 256))
        splash = QSplashScreen(pix)
        splash.showMessage("Starting StyleSteer…", Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignHCenter)
        splash.show()
        app.processEvents()
    import torch  # noqa: F401
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    import engine.decode
    import engine.metrics
    import engine.models
    import engine.steering  # noqa: F401
    import styles.importer
    import styles.prior
    import styles.store  # noqa: F401

    try:  # the architectures the bundled and default models use
        import transformers.models.llama.modeling_llama  # noqa: F401
    except ImportError:
        pass
    # torch and transformers leave ~350k long-lived objects; a full cyclic collection over them
    # takes 100-300 ms with the GIL held, on whichever thread triggers it. Freezing moves them out
    # of the collector's sight, so later collections stay short.
    gc.freeze()
    if splash is not None:
        splash.close()


def run_gui(model: str | None = None) -> int:
    """Open the app (`stylesteer` with no arguments); `model` overrides the remembered one."""
    init_application_names()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setWindowIcon(resources.app_icon())
    app.setDesktopFileName("stylesteer")
    ref: list[MainWindow] = []
    _install_excepthook(ref)
    preload_engine(app)
    window = MainWindow(model=model)
    ref.append(window)
    window.show()
    if os.environ.get("STYLESTEER_STARTUP_LOG"):  # the packaged build's smoke test times these lines
        print("stylesteer: window shown", file=sys.stderr, flush=True)
        window.worker.modelLoaded.connect(
            lambda info: print(f"stylesteer: model ready: {info.name}", file=sys.stderr, flush=True))
    QTimer.singleShot(0, window.check_recovery)
    code = app.exec()
    if window.worker.stuck:
        # A job (e.g. a model download) outlived the window; nothing is unsaved, so leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
