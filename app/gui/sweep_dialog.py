"""The paper's λ sweep from the app (what `stylesteer sweep` does): settings, progress, results folder."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.gui.style_panel import eta_text, push_button
from app.jobs.backend import SweepParams
from engine.types import MODES

PAPER_LAMS = "0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0"


class SweepDialog(QDialog):
    """Asks for a sweep, shows its progress; the worker does the decoding."""

    runRequested = Signal(object)  # SweepParams
    cancelRequested = Signal()

    def __init__(self, style: str, default_out: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"λ sweep for “{style}”")
        self.setAccessibleName("Lambda sweep")
        self.style_name = style
        self._t0 = 0.0
        layout = QVBoxLayout(self)
        intro = QLabel("Decodes the paper's 20 prompts at every λ and mode, scores each continuation and "
                       "writes results.csv, summary.csv, figures and report.md. A sweep into a folder that "
                       "already holds one continues where it stopped.")
        intro.setWordWrap(True)
        intro.setObjectName("hint")
        layout.addWidget(intro)
        layout.addLayout(self._build_form(default_out))
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Sweep progress")
        self.eta = QLabel("")
        self.eta.setAccessibleName("Time left")
        layout.addWidget(self.progress)
        layout.addWidget(self.eta)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.result.setAccessibleName("Sweep result")
        layout.addWidget(self.result)
        layout.addLayout(self._build_buttons())
        self.resize(640, 420)

    def _build_form(self, default_out: Path) -> QFormLayout:
        """Modes, λ values, tokens, sampling, prompt baseline and output folder."""
        form = QFormLayout()
        modes = QHBoxLayout()
        self.mode_boxes: dict[str, QCheckBox] = {}
        for m in MODES:
            box = QCheckBox(m)
            box.setAccessibleName(f"Mode {m}")
            box.setChecked(m == "paper")
            self.mode_boxes[m] = box
            modes.addWidget(box)
        form.addRow("Modes:", modes)
        self.lams = QLineEdit(PAPER_LAMS)
        self.lams.setAccessibleName("Lambdas")
        form.addRow("λ values:", self.lams)
        self.tokens = QSpinBox()
        self.tokens.setRange(1, 1024)
        self.tokens.setValue(256)
        self.tokens.setAccessibleName("Tokens per continuation")
        form.addRow("Tokens:", self.tokens)
        self.sample = QCheckBox("Sampling check (top-p 0.9, temperature 1.0) instead of greedy")
        self.sample.setAccessibleName("Sampling check")
        form.addRow(self.sample)
        self.baseline = QLineEdit()
        self.baseline.setAccessibleName("Prompt-only baseline")
        self.baseline.setPlaceholderText("optional, e.g. Write in the style of Arthur Conan Doyle:")
        form.addRow("Prompt baseline:", self.baseline)
        out_row = QHBoxLayout()
        self.out = QLineEdit(str(default_out))
        self.out.setAccessibleName("Output folder")
        browse = push_button("Browse…", self._browse, name="Choose the output folder")
        out_row.addWidget(self.out, 1)
        out_row.addWidget(browse)
        form.addRow("Output folder:", out_row)
        return form

    def _build_buttons(self) -> QHBoxLayout:
        """Run and Cancel on the left, Close on the right."""
        buttons = QHBoxLayout()
        self.run_button = push_button("Run sweep", self._run)
        self.cancel_button = push_button("Cancel", self.cancelRequested.emit, name="Cancel sweep")
        self.cancel_button.setEnabled(False)
        close = push_button("Close", self.close, name="")
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        return buttons

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Sweep output folder", self.out.text())
        if folder:
            self.out.setText(folder)

    def params(self) -> SweepParams:
        return SweepParams(out_dir=Path(self.out.text().strip()).expanduser(),
                           modes=tuple(m for m, b in self.mode_boxes.items() if b.isChecked()),
                           lams=self.lams.text(), max_new_tokens=self.tokens.value(), sample=self.sample.isChecked(),
                           prompt_baseline=self.baseline.text().strip() or None)

    def _run(self) -> None:
        self.runRequested.emit(self.params())

    def set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        if busy:
            self._t0 = time.monotonic()
            self.progress.setRange(0, 0)
            self.eta.setText("starting…")
            self.result.setText("")

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(min(done, total))
        self.eta.setText(eta_text(done, total, time.monotonic() - self._t0))

    def show_result(self, text: str) -> None:
        self.eta.setText("")
        self.result.setText(text)
