"""The "Tune λ" panel: ask for a small sweep of the active style, plot it, propose a lambda, apply it."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.jobs.backend import TuneParams
from engine.plots import draw_pareto, repetitive
from engine.sweep import TuneResult
from engine.types import MODES


class TunePanel(QWidget):
    """Controls for a small lambda sweep, its Pareto plot and a "Use λ = x" button.

    The panel does no model work: `runRequested(params)` carries the keyword arguments of
    `engine.sweep.tune` (mode, margin, n_prompts, max_new_tokens); the app's worker runs it and
    feeds back `set_progress`, then `show_result`. `cancelRequested` asks the worker to stop.
    """

    runRequested = Signal(object)  # TuneParams
    cancelRequested = Signal()
    lambdaApplied = Signal(float)
    modeApplied = Signal(str)  # emitted just before lambdaApplied: the mode the proposal was tuned in

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tunePanel")
        self._result: TuneResult | None = None
        self._busy = False

        self.style_label = QLabel("No style selected")
        self.style_label.setWordWrap(True)
        form = self._build_form()
        buttons = self._build_run_buttons()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self._build_plot()
        self.result_label = QLabel("Run a sweep to get a proposal.")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.apply_button = QPushButton("Use λ")
        self.apply_button.setEnabled(False)
        self.apply_button.clicked.connect(self._on_apply)

        layout = QVBoxLayout(self)
        layout.addWidget(self.style_label)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.result_label)
        layout.addWidget(self.apply_button)

    def _build_form(self) -> QFormLayout:
        """Mode, fluency margin, number of prompts and tokens per prompt."""
        self.mode_box = QComboBox()
        self.mode_box.addItems(list(MODES))
        self.mode_box.setCurrentText("dense")
        self.mode_box.setToolTip("Steering mode to tune")
        self.margin_box = QDoubleSpinBox()
        self.margin_box.setRange(0.0, 2.0)
        self.margin_box.setSingleStep(0.05)
        self.margin_box.setValue(0.25)
        self.margin_box.setToolTip("How far from λ = 0 the proposal may go, as a fraction (0.25 = 25%): median "
                                   "base PPL up to 1.25x, and distinct-2 down to 0.75x (repetition loops)")
        self.prompts_box = QSpinBox()
        self.prompts_box.setRange(1, 20)
        self.prompts_box.setValue(4)
        self.prompts_box.setToolTip("How many of the paper's prompts to decode at each λ")
        self.tokens_box = QSpinBox()
        self.tokens_box.setRange(8, 256)
        self.tokens_box.setSingleStep(8)
        self.tokens_box.setValue(48)
        self.tokens_box.setToolTip("Tokens generated per prompt and λ")
        form = QFormLayout()
        form.addRow("Mode", self.mode_box)
        form.addRow("Fluency margin", self.margin_box)
        form.addRow("Prompts", self.prompts_box)
        form.addRow("Tokens", self.tokens_box)
        return form

    def _build_run_buttons(self) -> QHBoxLayout:
        """Run sweep and Cancel."""
        self.run_button = QPushButton("Run sweep")
        self.run_button.setToolTip("Decode a few prompts at several λ in the background and propose one")
        self.run_button.clicked.connect(self._on_run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancelRequested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        return buttons

    def _build_plot(self) -> None:
        """The matplotlib figure and canvas for the Pareto plot, drawn empty to start."""
        self.figure = Figure(figsize=(4.0, 3.2), dpi=90)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.canvas.setMinimumHeight(220)
        self._axes = self.figure.add_subplot(1, 1, 1)
        self._draw_empty()

    # --- what the app feeds in ------------------------------------------------------------------
    def params(self) -> TuneParams:
        """What the controls hold, for engine.sweep.tune."""
        return TuneParams(mode=self.mode_box.currentText(), margin=float(self.margin_box.value()),
                          n_prompts=int(self.prompts_box.value()), max_new_tokens=int(self.tokens_box.value()))

    @Slot(str)
    def set_style(self, name: str) -> None:
        self.style_label.setText(f"Style: {name}" if name else "No style selected")
        self.run_button.setEnabled(bool(name) and not self._busy)

    @Slot(str)
    def set_mode(self, mode: str) -> None:
        """Start from the mode the app steers with (the sweep can then tune another)."""
        if mode in MODES:
            self.mode_box.setCurrentText(mode)

    @Slot(int, int)
    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, int(total)))
        self.progress.setValue(max(0, min(int(done), int(total))))

    @Slot(bool)
    def set_busy(self, busy: bool) -> None:
        self._busy = bool(busy)
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        for w in (self.mode_box, self.margin_box, self.prompts_box, self.tokens_box):
            w.setEnabled(not busy)
        if busy:
            self.apply_button.setEnabled(False)
            self.progress.setRange(0, 0)  # busy indicator until the first progress report
        elif self._result is not None:
            self.apply_button.setEnabled(self._result.proposed_lam is not None)

    @Slot(object)
    def show_result(self, result: TuneResult) -> None:
        """Plot a finished (or cancelled) tuning sweep and offer its proposed lambda."""
        self._result = result
        self._axes.clear()
        proposed = (result.mode, result.proposed_lam) if result.proposed_lam is not None else None
        if result.pareto:
            draw_pareto(self._axes, result.pareto, proposed=proposed,
                        repetitive=repetitive(result.rows, result.margin))
            zero = next((p for p in result.pareto if p.lam == 0.0), None)
            if zero is not None:
                # The proposal rule's fluency limit: points right of this line are not proposed.
                self._axes.axvline((1 + result.margin) * zero.base_ppl, color="grey", linestyle="--", linewidth=1,
                                   label=f"λ = 0 base PPL + {result.margin:.0%}")
                self._axes.legend(fontsize=7)
            self._axes.set_title(f"{result.style}: {result.mode} mode", fontsize=9)
        else:
            self._draw_empty("Cancelled: nothing measured" if result.cancelled else "No results")
        self.figure.tight_layout()
        self.canvas.draw_idle()
        if result.proposed_lam is None:
            self.result_label.setText("Cancelled before a proposal." if result.cancelled
                                      else "No λ could be proposed.")
            self.apply_button.setText("Use λ")
            self.apply_button.setEnabled(False)
            return
        lam = result.proposed_lam
        row = next((r for r in result.rows if abs(float(r["lam"]) - lam) < 1e-9), None)
        zero = next((r for r in result.rows if float(r["lam"]) == 0.0), None)
        detail = ""
        if row is not None and zero is not None and row.get("heldout_style_ppl_median") and zero.get(
                "heldout_style_ppl_median") and zero.get("base_ppl_median"):
            ds = row["heldout_style_ppl_median"] / zero["heldout_style_ppl_median"] - 1
            db = row["base_ppl_median"] / zero["base_ppl_median"] - 1
            detail = f": held-out style PPL {ds:+.0%}, base PPL {db:+.0%} against λ = 0"
        note = "" if lam > 0 else " (no λ > 0 beat λ = 0 within the margin)"
        self.result_label.setText(f"Proposed λ = {lam:g}{detail}{note}. "
                                  f"{len(result.rows)} λ values, {result.seconds:.0f} s.")
        sample = result.texts.get(lam)
        self.result_label.setToolTip(f"First prompt at λ = {lam:g}:\n{sample}" if sample else "")
        self.apply_button.setText(f"Use λ = {lam:g}")
        self.apply_button.setEnabled(not self._busy)

    def result(self) -> TuneResult | None:
        return self._result

    # --- internals --------------------------------------------------------------------------------
    def _draw_empty(self, text: str = "Run a sweep to see fluency against style") -> None:
        self._axes.clear()
        self._axes.set_axis_off()
        self._axes.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, transform=self._axes.transAxes)
        self.canvas.draw_idle()

    def _on_run(self) -> None:
        self.runRequested.emit(self.params())

    def _on_apply(self) -> None:
        if self._result is not None and self._result.proposed_lam is not None:
            self.modeApplied.emit(str(self._result.mode))
            self.lambdaApplied.emit(float(self._result.proposed_lam))
