"""Baseline and steered side by side from one prompt and seed, streaming together, with metrics."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from engine.types import METRIC_NAMES, Summary, TokenStep

METRIC_LABELS = {
    "style_ppl": ("Style PPL", "lower = closer to the style"),
    "base_ppl": ("Base PPL", "lower = more fluent under the frozen model"),
    "js_mean_bits": ("Mean JS (bits)", "how far steering moved each step"),
    "js_median_bits": ("Median JS (bits)", ""),
    "unigram_overlap": ("Unigram overlap", "share of tokens among the style's top 5000"),
    "bigram_seen": ("Bigram seen rate", "share of bigrams found in the style corpus"),
    "distinct_2": ("Distinct-2", "share of distinct bigrams: low means loops"),
}
# Orange is the colour-blind-safe partner of the viridis blues/greens used for tints.
DIFF_COLOR = QColor(230, 159, 0, 90)


def format_metric(value: float | None, name: str = "") -> str:
    if value is None:
        return "–"
    if name.endswith("ppl"):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return f"{value:.4f}"  # rates and bits: all on one scale, so columns line up


def differing(base_ids: list[int], steer_ids: list[int]) -> tuple[list[bool], list[bool]]:
    """Which tokens of each side are not part of a common run (difflib alignment, not position)."""
    from difflib import SequenceMatcher

    base_diff = [True] * len(base_ids)
    steer_diff = [True] * len(steer_ids)
    for block in SequenceMatcher(None, base_ids, steer_ids, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            base_diff[block.a + k] = False
            steer_diff[block.b + k] = False
    return base_diff, steer_diff


class ComparePane(QTextEdit):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.setObjectName("comparePane")
        self.setReadOnly(True)
        self.setAccessibleName(name)
        font = QFont("Georgia")
        font.setStyleHint(QFont.StyleHint.Serif)
        font.setPointSizeF(11.5)
        self.setFont(font)

    def append_piece(self, text: str, differs: bool) -> None:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        fmt = QTextCharFormat()
        if differs:
            fmt.setBackground(DIFF_COLOR)
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.DotLine)
        cursor.insertText(text, fmt)


class CompareView(QWidget):
    """Prompt + seed in, two streaming panes, a metrics table, insert buttons."""

    runRequested = Signal(str, int)  # prompt, seed
    stopRequested = Signal()
    insertRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Compare baseline and steered")
        self.baseline_text = ""
        self.steered_text = ""
        self.n_diff = 0
        self.n_pairs = 0
        self.summaries: tuple[Summary, Summary] | None = None
        self._base_steps: list[TokenStep] = []
        self._steer_steps: list[TokenStep] = []

        layout = QVBoxLayout(self)
        layout.addLayout(self._build_prompt_row())
        layout.addLayout(self._build_panes(), 1)
        self.diff_label = QLabel("Tokens where the two sides differ are marked in orange.")
        self.diff_label.setWordWrap(True)
        self.diff_label.setObjectName("hint")
        self.diff_label.setAccessibleName("Differences")
        layout.addWidget(self.diff_label)
        self.metrics = self._build_metrics()
        layout.addWidget(self.metrics)
        self._set_insert_enabled(False)

    def _build_prompt_row(self) -> QHBoxLayout:
        """The shared prompt, the seed, Run and Stop."""
        top = QHBoxLayout()
        self.prompt = QPlainTextEdit()
        self.prompt.setAccessibleName("Compare prompt")
        self.prompt.setPlaceholderText("Prompt for both sides")
        self.prompt.setMaximumHeight(80)
        top.addWidget(self.prompt, 1)
        side = QGridLayout()
        side.addWidget(QLabel("Seed:"), 0, 0)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setAccessibleName("Compare seed")
        side.addWidget(self.seed, 0, 1)
        self.run_button = QPushButton("Run")
        self.run_button.setAccessibleName("Run comparison")
        self.run_button.setToolTip("Decode baseline (λ = 0) and steered from the same prompt and seed")
        self.run_button.clicked.connect(self._run)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop comparison")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stopRequested)
        side.addWidget(self.run_button, 1, 0)
        side.addWidget(self.stop_button, 1, 1)
        top.addLayout(side)
        return top

    def _build_panes(self) -> QGridLayout:
        """Titles, the two text panes and an insert button under each."""
        panes = QGridLayout()
        self.base_title = QLabel("<b>Baseline</b> (unsteered)")
        self.steer_title = QLabel("<b>Steered</b>")
        self.baseline = ComparePane("Baseline text")
        self.steered = ComparePane("Steered text")
        self.insert_base = self._insert_button("Insert baseline into editor", lambda: self.baseline_text)
        self.insert_steer = self._insert_button("Insert steered into editor", lambda: self.steered_text)
        panes.addWidget(self.base_title, 0, 0)
        panes.addWidget(self.steer_title, 0, 1)
        panes.addWidget(self.baseline, 1, 0)
        panes.addWidget(self.steered, 1, 1)
        panes.addWidget(self.insert_base, 2, 0)
        panes.addWidget(self.insert_steer, 2, 1)
        return panes

    def _insert_button(self, text: str, current_text: Callable[[], str]) -> QPushButton:
        """A button, named by its text, that asks to insert one side's text as it is when clicked."""
        button = QPushButton(text)
        button.setAccessibleName(text)
        button.clicked.connect(lambda: self.insertRequested.emit(current_text()))
        return button

    def _build_metrics(self) -> QTableWidget:
        """One row per metric, baseline and steered columns, sized to show every row."""
        metrics = QTableWidget(len(METRIC_NAMES), 2)
        metrics.setAccessibleName("Metrics")
        metrics.setHorizontalHeaderLabels(["Baseline", "Steered"])
        metrics.setVerticalHeaderLabels([METRIC_LABELS.get(m, (m, ""))[0] for m in METRIC_NAMES])
        for r, m in enumerate(METRIC_NAMES):
            metrics.verticalHeaderItem(r).setToolTip(METRIC_LABELS.get(m, (m, ""))[1])
        metrics.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        metrics.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        metrics.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        metrics.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        metrics.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        metrics.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Every metric row visible at once: the table is sized to its rows, the panes take the rest.
        metrics.setFixedHeight(metrics.verticalHeader().defaultSectionSize() * len(METRIC_NAMES)
                               + metrics.horizontalHeader().sizeHint().height() + 6)
        return metrics

    def _run(self) -> None:
        self.runRequested.emit(self.prompt.toPlainText(), self.seed.value())

    def _set_insert_enabled(self, on: bool) -> None:
        self.insert_base.setEnabled(on)
        self.insert_steer.setEnabled(on)

    def set_title(self, style: str | None, lam: float, mode: str) -> None:
        self.steer_title.setText(f"<b>Steered</b> toward “{style}” (λ = {lam:.3f}, {mode})" if style
                                 else "<b>Steered</b> (no style chosen: same as baseline)")

    def begin(self) -> None:
        self.baseline.clear()
        self.steered.clear()
        self.baseline_text = self.steered_text = ""
        self.n_diff = self.n_pairs = 0
        self.summaries = None
        self._base_steps, self._steer_steps = [], []
        for r in range(self.metrics.rowCount()):
            for c in range(2):
                self.metrics.setItem(r, c, QTableWidgetItem(""))
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self._set_insert_enabled(False)
        self.diff_label.setText("Decoding…")

    def add_pairs(self, pairs: list[tuple[TokenStep | None, TokenStep | None]]) -> None:
        for base, steer in pairs:
            differs = base is not None and steer is not None and base.token_id != steer.token_id
            differs = differs or (base is None) != (steer is None)
            self.n_pairs += 1
            self.n_diff += int(differs)
            # While streaming, mark by position; finish() realigns the two sides.
            if base is not None:
                self.baseline.append_piece(base.text, differs)
                self.baseline_text += base.text
                self._base_steps.append(base)
            if steer is not None:
                self.steered.append_piece(steer.text, differs)
                self.steered_text += steer.text
                self._steer_steps.append(steer)
        self.diff_label.setText(f"Decoding… {self.n_pairs} tokens; first difference marked in orange.")

    def _realign(self) -> None:
        """Mark only the tokens outside the runs both sides share."""
        base_diff, steer_diff = differing([s.token_id for s in self._base_steps],
                                          [s.token_id for s in self._steer_steps])
        for pane, steps, flags in ((self.baseline, self._base_steps, base_diff),
                                   (self.steered, self._steer_steps, steer_diff)):
            pane.clear()
            for step, flag in zip(steps, flags, strict=True):
                pane.append_piece(step.text, flag)
        shared = sum(1 for f in steer_diff if not f)
        self.n_diff = sum(steer_diff)
        self.diff_label.setText(
            f"{self.n_diff} of {len(steer_diff)} steered tokens differ from the baseline (orange); "
            f"{shared} are shared in the same order.")

    def finish(self, summaries: tuple[Summary, Summary] | None) -> None:
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self._set_insert_enabled(bool(self.baseline_text or self.steered_text))
        if self._base_steps or self._steer_steps:
            self._realign()
        if summaries is None:
            return
        self.summaries = summaries
        base, steer = summaries
        # The summaries hold the exact texts; they win over the streamed pieces.
        self.baseline_text, self.steered_text = base.text, steer.text
        for r, m in enumerate(METRIC_NAMES):
            for c, s in enumerate((base, steer)):
                item = QTableWidgetItem(format_metric(s.metrics.get(m), m))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.metrics.setItem(r, c, item)

    def metric_text(self, name: str, side: int) -> str:
        item = self.metrics.item(METRIC_NAMES.index(name), side)
        return item.text() if item else ""
