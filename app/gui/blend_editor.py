"""The blend editor: weights for the library's styles, a preview of the normalised mix, Use and Save."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from styles.blend import BlendError, BlendSpec, normalise

MAX_WEIGHT = 100.0


class BlendEditor(QWidget):
    """Pick styles with weights; the preview shows the weights normalised to 100%.

    `useRequested(spec)` asks to steer with the blend now (spec written `NAME:W,NAME:W`);
    `saveRequested(name, parts)` asks to save it under a name, usable like a style afterwards.
    """

    useRequested = Signal(str)
    saveRequested = Signal(str, object)  # name, tuple[(style, weight), ...] (normalised)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Blend editor")
        self._spins: dict[str, QDoubleSpinBox] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Blend styles</b>: give each style a weight (0 leaves it out)."))
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Style", "Weight"])
        self.table.setAccessibleName("Blend weights")
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table)
        self.preview = QLabel()
        self.preview.setAccessibleName("Blend preview")
        self.preview.setWordWrap(True)
        layout.addWidget(self.preview)
        layout.addLayout(self._build_actions())
        self._update()

    def _build_actions(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.use_button = QPushButton("Use blend")
        self.use_button.setToolTip("Steer toward this blend now")
        self.use_button.clicked.connect(lambda _checked=False: self.use())
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name to save it as")
        self.name_edit.setAccessibleName("Blend name")
        self.name_edit.textChanged.connect(lambda _t: self._update())
        self.save_button = QPushButton("Save blend")
        self.save_button.setToolTip("Save this blend under the name, to use it like a style")
        self.save_button.clicked.connect(lambda _checked=False: self.save())
        row.addWidget(self.use_button)
        row.addWidget(self.name_edit, 1)
        row.addWidget(self.save_button)
        return row

    # --- contents ------------------------------------------------------------------
    def set_styles(self, names: Sequence[str]) -> None:
        """The styles that can be blended (not blends); weights already set are kept."""
        old = self.weights_by_name()
        self._spins = {}
        self.table.setRowCount(len(names))
        for r, name in enumerate(names):
            item = QTableWidgetItem(name)
            item.setToolTip(name)
            spin = QDoubleSpinBox()
            spin.setRange(0.0, MAX_WEIGHT)
            spin.setDecimals(2)
            spin.setSingleStep(0.1)
            spin.setAccessibleName(f"Weight of {name}")
            spin.setValue(old.get(name, 0.0))
            spin.valueChanged.connect(lambda _v: self._update())
            self.table.setItem(r, 0, item)
            self.table.setCellWidget(r, 1, spin)
            self._spins[name] = spin
        self._update()

    def set_weight(self, name: str, weight: float) -> None:
        self._spins[name].setValue(weight)

    def load(self, name: str, parts: Sequence[tuple[str, float]]) -> None:
        """Edit a saved blend: its weights (styles it does not use at 0) and its name."""
        weights = dict(parts)
        for style, spin in self._spins.items():
            spin.setValue(round(weights.get(style, 0.0) * 100, 2))
        self.name_edit.setText(name)

    def weights_by_name(self) -> dict[str, float]:
        return {name: spin.value() for name, spin in self._spins.items()}

    def spec(self) -> BlendSpec | None:
        """The normalised blend, or None while no weight is above 0."""
        try:
            return normalise([(n, w) for n, w in self.weights_by_name().items() if w > 0] or [("", 0.0)])
        except BlendError:
            return None

    # --- actions -------------------------------------------------------------------
    def use(self) -> None:
        spec = self.spec()
        if spec is not None and _writable(spec):
            self.useRequested.emit(spec.text())

    def save(self) -> None:
        spec = self.spec()
        name = self.name_edit.text().strip()
        if spec is not None and name:
            self.saveRequested.emit(name, spec.parts)

    def _update(self) -> None:
        spec = self.spec()
        if spec is None:
            self.preview.setText("Give at least one style a weight above 0.")
        else:
            self.preview.setText("Blend: " + " + ".join(f"{name} {weight:.0%}" for name, weight in spec.parts))
        writable = spec is not None and _writable(spec)
        self.use_button.setEnabled(writable)
        self.use_button.setToolTip("Steer toward this blend now" if writable or spec is None else
                                   "A style whose name holds ',' can be blended only in a saved blend")
        self.save_button.setEnabled(spec is not None and bool(self.name_edit.text().strip())
                                    and ":" not in self.name_edit.text())


def _writable(spec: BlendSpec) -> bool:
    """Whether the blend can be written NAME:W,NAME:W (no style name holds a ',')."""
    return not any("," in name for name in spec.names)

