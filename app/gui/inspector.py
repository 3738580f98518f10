"""One token under the mouse or cursor: base vs steered probability, JS, alternatives to reroll from."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QLinearGradient, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui import palette
from app.gui.editor import TokenRef

MAX_ALTERNATIVES = 8  # buttons per side; the engine sends 5 by default


def _show(text: str) -> str:
    """A token's text made visible: spaces and newlines drawn as symbols."""
    return text.replace(" ", "·").replace("\n", "⏎").replace("\t", "→") or "∅"


class Legend(QWidget):
    """The JS colour scale in use with its ticks in bits, and a line saying which scale it is (View ▸ Tint Scale):
    one suggestion's own range, or the fixed one."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("JS divergence colour legend")
        self.setToolTip("Token tint: Jensen–Shannon divergence between the base and steered "
                        "distributions at that step, in bits (logarithmic scale). By default each suggestion "
                        "spreads over the colours on its own scale, from its low to its high JS; "
                        "View ▸ Tint Scale ▸ Fixed puts every suggestion on one scale.")
        self._scale = palette.FIXED
        self._caption = "fixed scale"
        self.setAccessibleDescription(self._caption)
        self.setMinimumHeight(52)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_scale(self, sc: palette.Scale, caption: str) -> None:
        """Show the scale `sc`, with `caption` (e.g. "0.021 – 0.066 bits, this suggestion") under it."""
        self._scale, self._caption = sc, caption
        self.setAccessibleDescription(caption)
        self.update()

    def scale(self) -> palette.Scale:
        return self._scale

    def caption(self) -> str:
        return self._caption

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w = self.width() - 24
        bar = QRectF(12, 4, w, 14)
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        for i in range(11):
            grad.setColorAt(i / 10, palette.ramp(i / 10))
        p.fillRect(bar, grad)
        p.setPen(self.palette().color(self.foregroundRole()))
        p.drawRect(bar)
        font = p.font()
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
        p.setFont(font)
        fixed = self._scale == palette.FIXED
        for v in self._scale.ticks():
            x = 12 + self._scale.position(v) * w
            p.drawLine(int(x), 18, int(x), 22)
            label = f"{v:g}" if fixed else palette.bits_label(v)
            fw = p.fontMetrics().horizontalAdvance(label)
            p.drawText(int(min(max(0, x - fw / 2), self.width() - fw)), 34, label)
        caption = p.fontMetrics().elidedText(self._caption, Qt.TextElideMode.ElideRight, self.width())
        fw = p.fontMetrics().horizontalAdvance(caption)
        p.drawText(int(max(0, (self.width() - fw) / 2)), 48, caption)
        p.end()


class Inspector(QWidget):
    """Shows one TokenRef; clicking an alternative asks to regenerate from that point."""

    alternativeChosen = Signal(object, str)  # (TokenRef, alternative text)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Token inspector")
        self._ref: TokenRef | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        title = QLabel("JS divergence (bits)")
        title.setObjectName("legendTitle")
        layout.addWidget(title)
        self.legend = Legend()
        layout.addWidget(self.legend)

        self.token_label = QLabel("Hover a generated token, or move the cursor onto one.")
        self.token_label.setObjectName("hint")
        self.token_label.setWordWrap(True)
        self.token_label.setAccessibleName("Token")
        layout.addWidget(self.token_label)

        form = QFormLayout()
        self.p_base = QLabel("–")
        self.p_base.setAccessibleName("Base probability")
        self.p_steered = QLabel("–")
        self.p_steered.setAccessibleName("Steered probability")
        self.js = QLabel("–")
        self.js.setAccessibleName("JS divergence")
        self.lam = QLabel("–")
        self.lam.setAccessibleName("Lambda applied")
        form.addRow("p base:", self.p_base)
        form.addRow("p steered:", self.p_steered)
        form.addRow("JS:", self.js)
        form.addRow("λ applied:", self.lam)
        self.rules = QLabel("–")
        self.rules.setAccessibleName("Banned or biased")
        self.rules.setToolTip("\"banned/biased\": at this step a banned phrase was blocked, or a phrase bias "
                              "moved a token's probability by at least a point (Generate ▸ Banned Phrases and Bias)")
        form.addRow("phrases:", self.rules)
        layout.addLayout(form)

        alts = QHBoxLayout()
        self.base_box = QGroupBox("Base top")
        self.base_box.setAccessibleName("Top alternatives under the base model")
        self.base_box.setLayout(QVBoxLayout())
        self.steer_box = QGroupBox("Steered top")
        self.steer_box.setAccessibleName("Top alternatives under the steered model")
        self.steer_box.setLayout(QVBoxLayout())
        alts.addWidget(self.base_box)
        alts.addWidget(self.steer_box)
        layout.addLayout(alts)
        hint = QLabel("Click an alternative to regenerate from there.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addStretch(1)
        self.alt_buttons: list[QToolButton] = []
        self._pools: dict[int, list[QToolButton]] = {}
        self._empty: dict[int, QLabel] = {}
        self._fill(self.base_box, [])
        self._fill(self.steer_box, [])

    def token(self) -> TokenRef | None:
        return self._ref

    def show_token(self, ref: TokenRef | None) -> None:
        if ref is None:
            return  # keep the last token visible while the mouse crosses plain text
        self._ref = ref
        step = ref.step
        where = "suggestion" if ref.ghost else "accepted text"
        if step is None:
            self.token_label.setText(f"A token you chose ({where}): no diagnostics")
            for lbl in (self.p_base, self.p_steered, self.js, self.lam, self.rules):
                lbl.setText("–")
            self._fill(self.base_box, [])
            self._fill(self.steer_box, [])
            return
        self.token_label.setText(f"Token {step.step + 1}: ⟨{_show(step.text)}⟩ ({where})")
        if step.p_base == step.p_base:  # NaN: a token restored from an older session keeps its JS only
            self.p_base.setText(f"{step.p_base:.3f}")
            self.p_steered.setText(f"{step.p_steered:.3f}  ({_ratio(step.p_steered, step.p_base)})")
        else:
            self.p_base.setText("–")
            self.p_steered.setText("–")
        self.js.setText(f"{step.js_bits:.4f} bits")
        self.lam.setText(f"{step.lam:.3f}" if step.lam == step.lam else "–")
        self.rules.setText("banned/biased" if step.adjusted else "–")
        self._fill(self.base_box, step.top_base)
        self._fill(self.steer_box, step.top_steered)

    def _pool(self, box: QGroupBox) -> list[QToolButton]:
        """The box's buttons, made once: hovering tokens only relabels them (making widgets per
        hover would cost the GUI thread tens of milliseconds while text streams in)."""
        pool = self._pools.get(id(box))
        if pool is None:
            pool = []
            layout = box.layout()
            for _ in range(MAX_ALTERNATIVES):
                b = QToolButton()
                b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
                b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
                b.setToolTip("Regenerate from here with this token")
                b.setAccessibleName("Alternative token")
                b.clicked.connect(lambda _c=False, b=b: self._choose(b.property("altText")))
                b.setVisible(False)
                layout.addWidget(b)
                pool.append(b)
            empty = QLabel("–")
            layout.addWidget(empty)
            self._empty[id(box)] = empty
            self._pools[id(box)] = pool
        return pool

    def _fill(self, box: QGroupBox, alts: list) -> None:
        pool = self._pool(box)
        # The pool holds MAX_ALTERNATIVES buttons; there may be fewer alternatives (the rest are hidden below).
        for b, (_tid, text, prob) in zip(pool, alts[:MAX_ALTERNATIVES], strict=False):
            b.setText(f"{_show(text)}   {prob:.3f}")
            b.setAccessibleName(f"Alternative {text.strip() or repr(text)}, probability {prob:.3f}")
            b.setProperty("altText", text)
            b.setVisible(True)
        for b in pool[len(alts):]:
            b.setVisible(False)
        self._empty[id(box)].setVisible(not alts)
        self.alt_buttons = [b for p in self._pools.values() for b in p if not b.isHidden()]

    def _choose(self, text: str | None) -> None:
        if self._ref is not None and text is not None:
            self.alternativeChosen.emit(self._ref, text)

    def clear(self) -> None:
        self._ref = None
        self.token_label.setText("Hover a generated token, or move the cursor onto one.")
        for lbl in (self.p_base, self.p_steered, self.js, self.lam, self.rules):
            lbl.setText("–")
        self._fill(self.base_box, [])
        self._fill(self.steer_box, [])


def _ratio(a: float, b: float) -> str:
    if b <= 0:
        return "n/a"
    r = a / b
    return f"×{r:.2f}"


