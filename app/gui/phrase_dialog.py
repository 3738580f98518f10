"""The banned phrases and biases editor: one list for every document, kept in the settings."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.controls import SteeringControls
from app.gui.settings import Settings
from engine.phrase_rules import BIAS_LIMIT, PhraseRuleError, PhraseRules

DEFAULT_BIAS = -5.0


def _table(columns: list[str], name: str) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(columns)
    t.setAccessibleName(name)
    t.verticalHeader().setVisible(False)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return t


class PhraseRulesDialog(QDialog):
    """Edit banned phrases and phrase biases; OK checks every row and names the first bad one.

    `rulesAccepted(PhraseRules)` is emitted when OK finds them all valid.
    """

    rulesAccepted = Signal(object)

    def __init__(self, rules: PhraseRules, parent: QWidget | None = None, scope: str = "every document") -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Banned Phrases and Bias: {scope}")
        self.setAccessibleName("Banned phrases and bias")
        self.result_rules: PhraseRules | None = None
        layout = QVBoxLayout(self)
        intro = QLabel("A banned phrase is never written, however the model spells it in tokens. A bias "
                       f"({-BIAS_LIMIT:g} to {BIAS_LIMIT:g}) is added to the logits of the tokens that write its "
                       "phrase: negative avoids it, positive favours it. Spaces count: “ suddenly” matches "
                       "the word after a space or a line break, “suddenly” anywhere.")
        intro.setWordWrap(True)
        layout.addWidget(intro)

        self.bans = _table(["Banned phrase"], "Banned phrases")
        self.biases = _table(["Phrase", "Bias"], "Phrase biases")
        self.biases.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        for title, table, add in (("Banned phrases", self.bans, self.add_ban),
                                  ("Biases", self.biases, self.add_bias)):
            box = QGroupBox(title)
            col = QVBoxLayout(box)
            col.addWidget(table)
            row = QHBoxLayout()
            plus = QPushButton("Add")
            plus.setAccessibleName(f"Add to {title.lower()}")
            plus.clicked.connect(lambda _c=False, add=add: add())
            minus = QPushButton("Remove")
            minus.setAccessibleName(f"Remove from {title.lower()}")
            minus.clicked.connect(lambda _c=False, t=table: self._remove_selected(t))
            row.addWidget(plus)
            row.addWidget(minus)
            row.addStretch(1)
            col.addLayout(row)
            layout.addWidget(box)

        self.ignore_case = QCheckBox("Match every case (Suddenly, SUDDENLY, …)")
        self.ignore_case.setChecked(rules.ignore_case)
        layout.addWidget(self.ignore_case)
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setAccessibleName("Problem")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._try_accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        for phrase in rules.bans:
            self.add_ban(phrase)
        for phrase, value in rules.biases:
            self.add_bias(phrase, value)
        self.resize(560, 520)

    def add_ban(self, phrase: str = "") -> None:
        r = self.bans.rowCount()
        self.bans.insertRow(r)
        self.bans.setItem(r, 0, QTableWidgetItem(phrase))
        if not phrase:
            self.bans.editItem(self.bans.item(r, 0))

    def add_bias(self, phrase: str = "", value: float = DEFAULT_BIAS) -> None:
        r = self.biases.rowCount()
        self.biases.insertRow(r)
        self.biases.setItem(r, 0, QTableWidgetItem(phrase))
        spin = QDoubleSpinBox()
        spin.setRange(-BIAS_LIMIT, BIAS_LIMIT)
        spin.setDecimals(1)
        spin.setSingleStep(0.5)
        spin.setValue(value)
        spin.setAccessibleName("Bias")
        self.biases.setCellWidget(r, 1, spin)
        if not phrase:
            self.biases.editItem(self.biases.item(r, 0))

    def _remove_selected(self, table: QTableWidget) -> None:
        rows = sorted({i.row() for i in table.selectedIndexes()} or {table.currentRow()}, reverse=True)
        for r in rows:
            if r >= 0:
                table.removeRow(r)

    def _phrase(self, table: QTableWidget, row: int) -> str:
        item = table.item(row, 0)
        return item.text() if item is not None else ""

    def rules(self) -> PhraseRules:
        """What the tables hold; PhraseRuleError naming the first row that cannot be used."""
        bans = []
        for r in range(self.bans.rowCount()):
            try:
                bans.append(PhraseRules(bans=(self._phrase(self.bans, r),)).bans[0])
            except PhraseRuleError as exc:
                raise PhraseRuleError(f"Banned phrase {r + 1}: {exc}") from None
        biases = []
        for r in range(self.biases.rowCount()):
            spin = self.biases.cellWidget(r, 1)
            value = spin.value() if isinstance(spin, QDoubleSpinBox) else DEFAULT_BIAS
            try:
                biases.append(PhraseRules(biases=((self._phrase(self.biases, r), value),)).biases[0])
            except PhraseRuleError as exc:
                raise PhraseRuleError(f"Bias {r + 1}: {exc}") from None
        return PhraseRules(tuple(bans), tuple(biases), self.ignore_case.isChecked())

    def _try_accept(self) -> None:
        try:
            rules = self.rules()
        except PhraseRuleError as exc:
            self.error.setText(str(exc))
            self.error.setVisible(True)
            return
        self.result_rules = rules
        self.rulesAccepted.emit(rules)
        self.accept()


def apply_phrase_rules(controls: SteeringControls, rules: PhraseRules) -> None:
    """Every later generation, in every document, uses `rules` (none when the list is empty)."""
    controls.global_rules = None if rules.empty else rules


def edit_phrase_rules(parent: QWidget, settings: Settings, controls: SteeringControls) -> PhraseRulesDialog:
    """Open the editor on the saved list for every document; OK saves it and applies it to the next generation."""
    dlg = PhraseRulesDialog(settings.phrase_rules(), parent)

    def accepted(rules: PhraseRules) -> None:
        settings.set_phrase_rules(rules)
        apply_phrase_rules(controls, rules)

    dlg.rulesAccepted.connect(accepted)
    dlg.open()
    return dlg


def edit_document_phrase_rules(parent: QWidget, controls: SteeringControls,
                               saved: Callable[[PhraseRules], None]) -> PhraseRulesDialog:
    """Open the editor on the open document's own list (kept in its session); OK applies it with the global one
    and hands it to `saved`."""
    dlg = PhraseRulesDialog(controls.document_rules or PhraseRules(), parent, scope="this document")

    def accepted(rules: PhraseRules) -> None:
        controls.document_rules = None if rules.empty else rules
        saved(rules)

    dlg.rulesAccepted.connect(accepted)
    dlg.open()
    return dlg
