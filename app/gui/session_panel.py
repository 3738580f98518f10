"""The Memory and Author's note editors (what the model is told besides the text, kept per document), and their
shading in the context viewer."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QPalette, QTextCursor
from PySide6.QtWidgets import QFormLayout, QLabel, QPlainTextEdit, QSpinBox, QTextEdit, QVBoxLayout, QWidget

from app.gui.editor import u16len
from engine.context import DEFAULT_NOTE_DEPTH

MAX_NOTE_DEPTH = 99


class SessionPanel(QWidget):
    """Memory (always first in the context) and the Author's note (a set number of paragraphs before the cursor)."""

    changed = Signal()  # the user edited one of them

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._setting = False
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Memory: always at the top of what the model reads"))
        self.memory = QPlainTextEdit()
        self.memory.setAccessibleName("Memory")
        self.memory.setPlaceholderText("Who is who, where we are, what must not be forgotten…")
        lay.addWidget(self.memory, 2)
        lay.addWidget(QLabel("Author's note: read just before your latest paragraphs"))
        self.note = QPlainTextEdit()
        self.note.setAccessibleName("Author's note")
        self.note.setPlaceholderText("[Tone: tense. Short sentences.]")
        lay.addWidget(self.note, 1)
        form = QFormLayout()
        self.depth = QSpinBox()
        self.depth.setRange(0, MAX_NOTE_DEPTH)
        self.depth.setValue(DEFAULT_NOTE_DEPTH)
        self.depth.setAccessibleName("Author's note depth")
        self.depth.setToolTip("How many paragraphs before the cursor the note goes (0: right at the cursor)")
        form.addRow("Paragraphs before the cursor:", self.depth)
        lay.addLayout(form)
        self.hint = QLabel("Saved with the document's session, in the data folder; the document itself is not "
                           "changed.")
        self.hint.setWordWrap(True)
        lay.addWidget(self.hint)
        self.memory.textChanged.connect(self._edited)
        self.note.textChanged.connect(self._edited)
        self.depth.valueChanged.connect(self._edited)

    def _edited(self, *_args: object) -> None:
        if not self._setting:
            self.changed.emit()

    def values(self) -> tuple[str, str, int]:
        """(memory, authors_note, note_depth) as typed."""
        return self.memory.toPlainText(), self.note.toPlainText(), self.depth.value()

    def set_values(self, memory: str, note: str, depth: int) -> None:
        """Show a document's Memory and note (no `changed`: nothing was edited)."""
        self._setting = True
        try:
            if self.memory.toPlainText() != memory:
                self.memory.setPlainText(memory)
            if self.note.toPlainText() != note:
                self.note.setPlainText(note)
            self.depth.setValue(max(0, min(MAX_NOTE_DEPTH, depth)))
        finally:
            self._setting = False


def shade_spans(view: QPlainTextEdit, spans: list[tuple[int, int]]) -> None:
    """Shade str [start, end) spans of a read-only view's text (positions converted to Qt's UTF-16 ones)."""
    text = view.toPlainText()
    selections = []
    for a, b in spans:
        sel = QTextEdit.ExtraSelection()
        cursor = view.textCursor()
        cursor.setPosition(u16len(text[:a]))
        cursor.setPosition(u16len(text[:b]), QTextCursor.MoveMode.KeepAnchor)
        sel.cursor = cursor
        sel.format.setBackground(view.palette().color(QPalette.ColorRole.AlternateBase).darker(110))
        selections.append(sel)
    view.setExtraSelections(selections)
