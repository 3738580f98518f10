"""Tools ▸ Check Style: tint the text's sentences by how much they read like the style, list the least in-style."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.gui import palette
from app.gui.editor import u16len, u16prefix
from app.gui.jobslot import JobSlot
from app.jobs.worker import JobError, Worker

# A colour-blind-safe diverging ramp (ColorBrewer PuOr): orange for less like the style, purple for more.
LOW = QColor("#e66101")
LOW_MID = QColor("#fdb863")
HIGH_MID = QColor("#b2abd2")
HIGH = QColor("#5e3c99")
SCALE_NATS = 0.5  # a sentence this far from the text's middle score, either way, gets the full colour
LEGEND_TICKS = (-1.0, -0.5, 0.0, 0.5, 1.0)  # as fractions of SCALE_NATS


def diverging(t: float) -> QColor | None:
    """The ramp at t in [-1, 1]: None near 0 (no tint), orange below, purple above."""
    if math.isnan(t) or abs(t) < 0.05:
        return None
    t = max(-1.0, min(1.0, t))
    mid, end = (LOW_MID, LOW) if t < 0 else (HIGH_MID, HIGH)
    return palette.blend(end, abs(t), mid)


def tint(t: float, base: QColor, dark: bool = False) -> QColor | None:
    """The opaque background for a position t in [-1, 1] over the editor's `base` colour."""
    c = diverging(t)
    if c is None:
        return None
    return palette.blend(c, (0.45 if dark else 0.35) + 0.45 * min(1.0, abs(t)), base)


def center(scores: list[float]) -> float:
    """The middle of the scores: the tints show each sentence against the rest of the text."""
    s = sorted(scores)
    n = len(s)
    return 0.0 if not n else (s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2)


class Legend(QWidget):
    """The diverging ramp with its ends named and the score at each tick."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("styleCheckLegend")
        self.setAccessibleName("Style check legend")
        self.setMinimumHeight(40)
        self.middle = 0.0

    def set_middle(self, middle: float) -> None:
        self.middle = middle
        self.setToolTip(f"Sentence score: mean per-token log-likelihood gain (nats) from mixing in the style's "
                        f"prior. The middle of this text is {middle:+.2f}; ±{SCALE_NATS} nats is full colour.")
        self.update()

    def paintEvent(self, _event: Any) -> None:
        p = QPainter(self)
        colors = self.palette()
        base = colors.color(QPalette.ColorRole.Base)
        text = colors.color(QPalette.ColorRole.WindowText)
        w = self.width()
        bar = QRectF(4, 2, w - 8, 14)
        grad = QLinearGradient(bar.left(), 0, bar.right(), 0)
        for i in range(21):
            t = -1 + i / 10
            grad.setColorAt(i / 20, tint(t, base) or base)
        p.fillRect(bar, grad)
        p.setPen(text)
        for t in LEGEND_TICKS:
            x = bar.left() + (t + 1) / 2 * bar.width()
            p.drawLine(int(x), int(bar.bottom()), int(x), int(bar.bottom()) + 3)
            label = f"{self.middle + t * SCALE_NATS:+.2f}"
            fm = p.fontMetrics()
            tw = fm.horizontalAdvance(label)
            p.drawText(int(min(max(0, x - tw / 2), w - tw)), int(bar.bottom()) + 4 + fm.ascent(), label)
        p.end()


class StyleCheckPanel(QWidget):
    """The dock's contents: legend, what was checked, and the sentences, the least in-style first."""

    sentenceChosen = Signal(int)  # index into the result's sentences
    clearRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("styleCheckPanel")
        self.status = QLabel("Tools ▸ Check Style (Ctrl+Shift+K) scores the selection, or the whole text, "
                             "against the active style.")
        self.status.setWordWrap(True)
        self.legend = Legend()
        ends = QHBoxLayout()
        ends.addWidget(QLabel("less like the style"))
        ends.addStretch(1)
        ends.addWidget(QLabel("more like the style"))
        self.list = QListWidget()
        self.list.setObjectName("styleCheckList")
        self.list.setAccessibleName("Sentences, least like the style first")
        self.list.setWordWrap(True)
        self.list.itemActivated.connect(self._chosen)
        self.list.itemClicked.connect(self._chosen)
        self.clear_button = QPushButton("Clear Tints")
        self.clear_button.setEnabled(False)
        self.clear_button.clicked.connect(self.clearRequested)
        lay = QVBoxLayout(self)
        lay.addWidget(self.status)
        lay.addWidget(self.legend)
        lay.addLayout(ends)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.clear_button)

    def _chosen(self, item: QListWidgetItem) -> None:
        self.sentenceChosen.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def show_busy(self, what: str) -> None:
        self.status.setText(what)
        self.list.clear()

    def show_result(self, text: str, rows: list[tuple[int, float, str]], middle: float) -> None:
        """rows: (sentence index, score, sentence text), already in the order to list them."""
        self.status.setText(text)
        self.legend.set_middle(middle)
        self.list.clear()
        for index, score, sentence in rows:
            one = " ".join(sentence.split())
            item = QListWidgetItem(f"{score:+.2f}  {one[:160]}{'…' if len(one) > 160 else ''}")
            item.setData(Qt.ItemDataRole.UserRole, index)
            item.setToolTip(one[:1000])
            self.list.addItem(item)
        self.clear_button.setEnabled(True)


class StyleCheck:
    """Runs a check on the worker, tints the editor (ExtraSelections: never in the document, never undone),
    fills the panel, and selects a sentence in the editor when it is chosen in the list."""

    def __init__(self, worker: Worker, editor: Any, panel: StyleCheckPanel,
                 show_error: Callable[[str], None]) -> None:
        self.worker = worker
        self.editor = editor
        self.panel = panel
        self.show_error = show_error
        self.slot = JobSlot(worker)
        self.sentences: list[QTextCursor] = []  # each sentence's span, following later edits
        panel.sentenceChosen.connect(self.select_sentence)
        panel.clearRequested.connect(self.clear)

    def run(self, style: str | None) -> int | None:
        """Check the selection (or the whole text) against `style` on the worker thread."""
        if not style:
            self.show_error("Choose a style first: the check scores your text against a style.")
            return None
        if self.worker.model is None:
            self.show_error("No model is loaded yet.")
            return None
        if self.editor.has_ghost():
            self.show_error("Accept or discard the suggestion first: the check scores your own text.")
            return None
        full = self.editor.full_text()
        cur = self.editor.textCursor()
        lo16, hi16 = (cur.selectionStart(), cur.selectionEnd()) if cur.hasSelection() else (0, u16len(full))
        lo = len(u16prefix(full, lo16))
        hi = len(u16prefix(full, hi16))
        text = full[lo:hi]
        if not text.strip():
            self.show_error("There is no text to check: write or select some first.")
            return None
        what = "the selection" if cur.hasSelection() else "the text"
        self.panel.show_busy(f"Checking {what} against “{style}”…")

        def done(result: Any) -> None:
            self.show(full, lo, result, style, what)

        def failed(error: JobError) -> None:
            self.panel.show_busy("The check did not finish.")
            self.show_error(error.message if error.user else f"The style check failed: {error.message}")

        def launch(**callbacks: Any) -> int:
            return self.worker.submit(
                "check", lambda ctx: ctx.backend.check_style(style, text, cancel=ctx.cancel), **callbacks)

        return self.slot.start(launch, on_done=done, on_error=failed,
                               on_cancelled=lambda: self.panel.show_busy("Cancelled."))

    def show(self, full: str, lo: int, result: Any, style: str, what: str) -> None:
        """Tint and list a result for the text `full[lo:lo + len(result.text)]` (as it was when checked)."""
        if self.editor.full_text() != full:
            self.panel.show_busy("The text changed while it was checked: run the check again.")
            return
        doc = self.editor.document()
        to16 = _u16_offsets(full)
        scored = [s for s in result.sentences if s.score is not None]
        middle = center([s.score for s in scored])
        base = self.editor.palette().color(QPalette.ColorRole.Base)
        text_color = self.editor.palette().color(QPalette.ColorRole.Text)
        self.sentences = []
        selections = []
        for s in result.sentences:
            c = QTextCursor(doc)
            c.setPosition(to16(lo + s.start))
            c.setPosition(to16(lo + s.end), QTextCursor.MoveMode.KeepAnchor)
            self.sentences.append(c)
            if s.score is None:
                continue
            color = tint((s.score - middle) / SCALE_NATS, base, palette.luminance(base) < 0.2)
            if color is None:
                continue
            sel = QTextEdit.ExtraSelection()
            sel.cursor = QTextCursor(c)
            fmt = QTextCharFormat()
            fmt.setBackground(color)
            fmt.setForeground(palette.text_on(color, text_color))
            sel.format = fmt
            selections.append(sel)
        self.editor.set_overlay(selections)
        rows = [(s.index, float(s.score), result.text[s.start:s.end]) for s in result.least_in_style()]
        overall = result.score()
        summary = (f"{what.capitalize()} against “{style}”: {len(rows)} sentences, score "
                   f"{overall:+.2f} nats per token. Least like the style first; click one to select it.")
        self.panel.show_result(summary if overall is not None else f"Nothing in {what} could be scored.",
                               rows, middle)

    def select_sentence(self, index: int) -> None:
        if not 0 <= index < len(self.sentences):
            return
        self.editor.setTextCursor(QTextCursor(self.sentences[index]))
        self.editor.ensureCursorVisible()
        self.editor.setFocus()

    def clear(self) -> None:
        self.slot.cancel()
        self.sentences = []
        self.editor.set_overlay([])
        self.panel.show_busy("Tints cleared.")
        self.panel.clear_button.setEnabled(False)


def _u16_offsets(text: str) -> Callable[[int], int]:
    """Python index -> UTF-16 position (what Qt counts), fast where the text has no astral characters."""
    if all(ord(ch) < 0x10000 for ch in text):
        return lambda i: i
    prefix = [0]
    for ch in text:
        prefix.append(prefix[-1] + (2 if ord(ch) >= 0x10000 else 1))
    return lambda i: prefix[i]
