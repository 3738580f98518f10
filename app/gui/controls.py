"""Steering (λ, mode, budget τmax) and sampling controls; λ acts live on the stream in progress."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.gui.settings import SteerSettings
from engine.phrase_rules import PhraseRules
from engine.types import MODES, SamplingConfig

SLIDER_STEPS = 1000
MODE_HELP = {
    "paper": "paper: the published update, only on tokens the style has seen (faithful to the paper)",
    "dense": "dense: product of experts over every token (p_model · p_style^λ)",
    "budget": "budget: dense steering as strong as each token's JS budget allows; the budget is λ × τmax, scaled by "
              "how unsure the model is at that token; words the model finds implausible there are never chosen",
}


def slider_to_lam(v: int) -> float:
    """Quadratic: half the slider covers λ 0–0.25, where the useful range is."""
    return round((v / SLIDER_STEPS) ** 2, 4)


def lam_to_slider(lam: float) -> int:
    return round(math.sqrt(max(0.0, min(1.0, lam))) * SLIDER_STEPS)


class SteeringControls(QWidget):
    lamChanged = Signal(float)
    changed = Signal()  # any setting, for persisting

    def __init__(self, settings: SteerSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Steering and sampling")
        # Banned phrases and biases: the list for every document, and the open document's own.
        self.global_rules: PhraseRules | None = None
        self.document_rules: PhraseRules | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self._build_steering())
        layout.addWidget(self._build_sampling())
        layout.addStretch(1)
        self.set_values(settings)
        self._connect_signals()

    def _build_steering(self) -> QGroupBox:
        """λ (slider and exact box), mode with its help line, and the budget τmax."""
        steer = QGroupBox("Steering")
        sform = QFormLayout(steer)
        lam_row = QHBoxLayout()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setAccessibleName("Lambda")
        self.slider.setToolTip("Steering strength λ (0 = the model alone). Finer near 0, where it matters; "
                               "acts live on the text being generated.")
        self.lam_box = self._dspin(0.0, 1.0, 0.005, 3, "Lambda value")
        self.lam_box.setObjectName("lamReadout")
        lam_row.addWidget(self.slider, 1)
        lam_row.addWidget(self.lam_box)
        sform.addRow("λ:", lam_row)
        self.mode = QComboBox()
        self.mode.setAccessibleName("Steering mode")
        for m in MODES:
            self.mode.addItem(m, m)
            self.mode.setItemData(self.mode.count() - 1, MODE_HELP[m], Qt.ItemDataRole.ToolTipRole)
        sform.addRow("Mode:", self.mode)
        self.budget = self._dspin(0.001, 1.0, 0.005, 3, "Budget tau max")
        self.budget.setSuffix(" bits")
        self.budget.setToolTip("budget mode: the JS divergence a token may spend at λ = 1 where the model is as "
                               "unsure as between 16 words (4 bits of entropy); at λ it may spend λ × this, more "
                               "where the model is less sure, less where it is surer")
        sform.addRow("Budget τmax:", self.budget)
        self.mode_help = QLabel()
        self.mode_help.setObjectName("hint")
        self.mode_help.setWordWrap(True)
        sform.addRow(self.mode_help)
        return steer

    def _build_sampling(self) -> QGroupBox:
        """Greedy, temperature, top-p/k, repetition penalty, seed and token limit."""
        samp = QGroupBox("Sampling")
        form = QFormLayout(samp)
        self.greedy = QCheckBox("Greedy (deterministic; small models loop)")
        self.greedy.setAccessibleName("Greedy decoding")
        form.addRow(self.greedy)
        self.temperature = self._dspin(0.05, 2.0, 0.05, 2, "Temperature")
        self.top_p = self._dspin(0.05, 1.0, 0.01, 2, "Top-p")
        self.top_k = self._spin(0, 1000, "Top-k", special="off")
        self.rep = self._dspin(1.0, 2.0, 0.01, 2, "Repetition penalty")
        self.seed = self._spin(-1, 2**31 - 1, "Seed", special="random")
        self.max_tokens = self._spin(1, 1024, "Maximum new tokens")
        self.context_limit = self._spin(0, 1 << 20, "Context limit in tokens", special="model's window")
        self.context_limit.setSingleStep(256)
        self.context_limit.setToolTip("The most tokens of your text (with Memory and the Author's note) the model is "
                                      "given; smaller is faster. The model's own window always applies.")
        form.addRow("Temperature:", self.temperature)
        form.addRow("Top-p:", self.top_p)
        form.addRow("Top-k:", self.top_k)
        form.addRow("Repetition penalty:", self.rep)
        form.addRow("Seed:", self.seed)
        form.addRow("Max tokens:", self.max_tokens)
        form.addRow("Context limit:", self.context_limit)
        return samp

    def _connect_signals(self) -> None:
        self.slider.valueChanged.connect(self._slider_moved)
        self.lam_box.valueChanged.connect(self._box_changed)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.greedy.toggled.connect(self._greedy_toggled)
        for w in (self.budget, self.temperature, self.top_p, self.rep, self.top_k, self.seed, self.max_tokens,
                  self.context_limit):
            w.valueChanged.connect(lambda _v: self.changed.emit())

    @staticmethod
    def _spin(lo: int, hi: int, name: str, special: str = "") -> QSpinBox:
        w = QSpinBox()
        w.setRange(lo, hi)
        if special:
            w.setSpecialValueText(special)
        w.setAccessibleName(name)
        return w

    @staticmethod
    def _dspin(lo: float, hi: float, step: float, decimals: int, name: str) -> QDoubleSpinBox:
        w = QDoubleSpinBox()
        w.setDecimals(decimals)  # before the range, which Qt rounds to the current decimals
        w.setRange(lo, hi)
        w.setSingleStep(step)
        w.setAccessibleName(name)
        return w

    def set_values(self, s: SteerSettings) -> None:
        self._syncing = True
        self.slider.setValue(lam_to_slider(s.lam))
        self.lam_box.setValue(s.lam)
        self._syncing = False
        self.mode.setCurrentIndex(max(0, self.mode.findData(s.mode)))
        self.budget.setValue(s.budget_bits)
        self.greedy.setChecked(s.greedy)
        self.temperature.setValue(s.temperature)
        self.top_p.setValue(s.top_p)
        self.top_k.setValue(s.top_k)
        self.rep.setValue(s.repetition_penalty)
        self.seed.setValue(s.seed)
        self.max_tokens.setValue(s.max_new_tokens)
        self.context_limit.setValue(s.context_limit)
        self._mode_changed()
        self._greedy_toggled(s.greedy)

    def lam(self) -> float:
        return float(self.lam_box.value())

    def set_lam(self, lam: float) -> None:
        self.lam_box.setValue(max(0.0, min(1.0, float(lam))))

    def set_mode(self, mode: str) -> None:
        """Select a steering mode (ignored when unknown)."""
        index = self.mode.findData(mode)
        if index >= 0:
            self.mode.setCurrentIndex(index)

    def _slider_moved(self, v: int) -> None:
        if self._syncing:
            return
        self._syncing = True
        self.lam_box.setValue(slider_to_lam(v))
        self._syncing = False
        self.lamChanged.emit(self.lam())
        self.changed.emit()

    def _box_changed(self, value: float) -> None:
        if not self._syncing:
            self._syncing = True
            self.slider.setValue(lam_to_slider(value))
            self._syncing = False
        self.lamChanged.emit(self.lam())
        self.changed.emit()

    def _mode_changed(self, *_args: object) -> None:
        mode = self.mode.currentData()
        self.budget.setEnabled(mode == "budget")
        self.mode_help.setText(MODE_HELP.get(mode, ""))
        self.changed.emit()

    def _greedy_toggled(self, on: bool) -> None:
        for w in (self.temperature, self.top_p, self.top_k):
            w.setEnabled(not on)
        self.changed.emit()

    @property
    def rules(self) -> PhraseRules | None:
        """What every generation uses: the global list and the document's together (None when both are empty)."""
        g, d = self.global_rules, self.document_rules
        merged = d if g is None else g.merged(d)
        return None if merged is None or merged.empty else merged

    def values(self) -> SteerSettings:
        return SteerSettings(lam=self.lam(), mode=self.mode.currentData(), budget_bits=self.budget.value(),
                             greedy=self.greedy.isChecked(), temperature=self.temperature.value(),
                             top_p=self.top_p.value(), top_k=self.top_k.value(),
                             repetition_penalty=self.rep.value(), seed=self.seed.value(),
                             max_new_tokens=self.max_tokens.value(), context_limit=self.context_limit.value())

    def sampling(self, seed: int | None = None) -> SamplingConfig:
        v = self.values()
        chosen = v.seed if seed is None else seed
        return SamplingConfig(max_new_tokens=v.max_new_tokens, greedy=v.greedy, temperature=v.temperature,
                              top_k=v.top_k, top_p=v.top_p, repetition_penalty=v.repetition_penalty,
                              seed=None if chosen < 0 else chosen, rules=self.rules)
