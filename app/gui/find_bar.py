"""Find and replace in the editor: case, whole word, regular expression; wraps; Replace All is one undo step."""

from __future__ import annotations

import bisect
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QToolButton, QWidget

from app.gui.editor import Editor


class FindBar(QWidget):
    """A bar under the editor (Ctrl+F finds, Ctrl+H also replaces, Esc closes).

    Searching works on the writer's text only: a pending suggestion is discarded first, so no
    match and no replacement ever lands inside ghost text.
    """

    message = Signal(str)

    def __init__(self, editor: Editor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.setObjectName("findBar")
        self.setAccessibleName("Find and replace")
        self.find_edit = self._line("Find", "Text or pattern to find")
        self.replace_edit = self._line("Replace with", "Replacement (\\1 for a group with regular expressions)")
        self.case = QCheckBox("Aa")
        self.case.setToolTip("Match case")
        self.case.setAccessibleName("Match case")
        self.word = QCheckBox("Word")
        self.word.setToolTip("Whole words only")
        self.word.setAccessibleName("Whole words")
        self.regex = QCheckBox(".*")
        self.regex.setToolTip("Regular expression (Python syntax)")
        self.regex.setAccessibleName("Regular expression")
        self.status = QLabel("")
        self.status.setAccessibleName("Find status")
        self._build_layout()
        self.find_edit.returnPressed.connect(self.find_next)
        self.replace_edit.returnPressed.connect(self.replace)
        self.find_edit.textChanged.connect(lambda _t: self.status.setText(""))
        self.hide()

    def _line(self, placeholder: str, tip: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        edit.setToolTip(tip)
        edit.setAccessibleName(placeholder)
        edit.setClearButtonEnabled(True)
        for button in edit.findChildren(QToolButton):
            button.setAccessibleName(f"Clear {placeholder.lower()}")
        return edit

    def _button(self, text: str, slot, tip: str) -> QPushButton:  # type: ignore[no-untyped-def]
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setAccessibleName(text)
        button.clicked.connect(lambda _c=False: slot())
        return button

    def _build_layout(self) -> None:
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 6, 2)
        row.addWidget(self.find_edit, 2)
        row.addWidget(self._button("Previous", self.find_previous, "Find the previous match (Shift+Enter)"))
        row.addWidget(self._button("Next", self.find_next, "Find the next match (Enter)"))
        for box in (self.case, self.word, self.regex):
            row.addWidget(box)
        row.addWidget(self.replace_edit, 2)
        self.replace_button = self._button("Replace", self.replace, "Replace this match and find the next")
        self.replace_all_button = self._button("Replace All", self.replace_all, "Replace every match (one undo step)")
        row.addWidget(self.replace_button)
        row.addWidget(self.replace_all_button)
        row.addWidget(self.status, 1)
        row.addWidget(self._button("✕", self.close_bar, "Close (Esc)"))

    # --- opening -----------------------------------------------------------------------------
    def open_find(self, *, replace: bool = False) -> None:
        for w in (self.replace_edit, self.replace_button, self.replace_all_button):
            w.setVisible(replace)
        selected = self.editor.textCursor().selectedText()
        if selected and "\u2029" not in selected:
            self.find_edit.setText(selected)
        self.show()
        self.find_edit.setFocus()
        self.find_edit.selectAll()

    def close_bar(self) -> None:
        self.hide()
        self.editor.setFocus()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.close_bar()
            return
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and shift:
            self.find_previous()
            return
        super().keyPressEvent(event)

    # --- matching ----------------------------------------------------------------------------
    def pattern(self) -> re.Pattern[str] | None:
        """The search as a compiled regular expression; None (with a message) when it is invalid."""
        text = self.find_edit.text()
        if not text:
            return None
        source = text if self.regex.isChecked() else re.escape(text)
        if self.word.isChecked():
            source = rf"\b(?:{source})\b"
        try:
            return re.compile(source, 0 if self.case.isChecked() else re.IGNORECASE)
        except re.error as exc:
            self._say(f"Invalid pattern: {exc}")
            return None

    def _matches(self, text: str, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        return [m for m in pattern.finditer(text) if m.end() > m.start()]

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.message.emit(text)

    def _prepare(self) -> tuple[str, re.Pattern[str]] | None:
        self.editor.dismiss_ghost()  # stops a stream too: no suggestion lands on a match
        pattern = self.pattern()
        if pattern is None:
            return None
        return self.editor.full_text(), pattern

    def _select(self, start: int, end: int, text: str) -> None:
        """Select [start, end) given in Python string offsets (Qt counts UTF-16 units)."""
        pos = _Positions(text)
        cursor = QTextCursor(self.editor.document())
        cursor.setPosition(pos.qt(start))
        cursor.setPosition(pos.qt(end), QTextCursor.MoveMode.KeepAnchor)
        self.editor.setTextCursor(cursor)
        self.editor.ensureCursorVisible()

    def _cursor_offsets(self, text: str) -> tuple[int, int]:
        cursor = self.editor.textCursor()
        pos = _Positions(text)
        return pos.py(cursor.selectionStart()), pos.py(cursor.selectionEnd())

    def find_next(self) -> bool:
        return self._find(forward=True)

    def find_previous(self) -> bool:
        return self._find(forward=False)

    def _find(self, *, forward: bool) -> bool:
        prepared = self._prepare()
        if prepared is None:
            return False
        text, pattern = prepared
        matches = self._matches(text, pattern)
        if not matches:
            self._say("No match")
            return False
        start, end = self._cursor_offsets(text)
        if forward:
            after = [m for m in matches if m.start() >= end]
            chosen, wrapped = (after[0], False) if after else (matches[0], True)
        else:
            before = [m for m in matches if m.end() <= start]
            chosen, wrapped = (before[-1], False) if before else (matches[-1], True)
        self._select(chosen.start(), chosen.end(), text)
        index = matches.index(chosen) + 1
        self._say(f"{index} of {len(matches)}" + (" (wrapped)" if wrapped else ""))
        return True

    # --- replacing ---------------------------------------------------------------------------
    def _replacement(self, match: re.Match[str]) -> str:
        """The replacement text; with regular expressions, groups (\\1, \\g<name>) are filled in."""
        if self.regex.isChecked():
            return match.expand(self.replace_edit.text())
        return self.replace_edit.text()

    def replace(self) -> bool:
        """Replace the selected match (if the selection is one) and move to the next."""
        prepared = self._prepare()
        if prepared is None:
            return False
        text, pattern = prepared
        start, end = self._cursor_offsets(text)
        selected = next((m for m in self._matches(text, pattern) if m.span() == (start, end)), None)
        if selected is not None:
            try:
                replacement = self._replacement(selected)
            except (re.error, IndexError) as exc:
                self._say(f"Invalid replacement: {exc}")
                return False
            self.editor.textCursor().insertText(replacement)
        return self.find_next()

    def replace_all(self) -> int:
        """Replace every match as one undo step; returns how many were replaced."""
        prepared = self._prepare()
        if prepared is None:
            return 0
        text, pattern = prepared
        matches = self._matches(text, pattern)
        if not matches:
            self._say("No match")
            return 0
        try:
            replacements = [self._replacement(m) for m in matches]
        except (re.error, IndexError) as exc:
            self._say(f"Invalid replacement: {exc}")
            return 0
        pos = _Positions(text)
        cursor = QTextCursor(self.editor.document())
        cursor.beginEditBlock()
        for m, new in zip(reversed(matches), reversed(replacements), strict=True):
            # From the end, so earlier positions stay valid.
            cursor.setPosition(pos.qt(m.start()))
            cursor.setPosition(pos.qt(m.end()), QTextCursor.MoveMode.KeepAnchor)
            cursor.insertText(new)
        cursor.endEditBlock()
        self._say(f"Replaced {len(matches)}")
        return len(matches)


class _Positions:
    """Python string offsets <-> QTextDocument positions, which count UTF-16 code units.

    They differ only after a character outside the Basic Multilingual Plane (an emoji, say);
    for text without one the mapping is the identity and costs nothing.
    """

    def __init__(self, text: str) -> None:
        self._astral = [i for i, ch in enumerate(text) if ord(ch) > 0xFFFF] if not text.isascii() else []

    def qt(self, index: int) -> int:
        return index + bisect.bisect_left(self._astral, index)

    def py(self, position: int) -> int:
        index = position
        for rank, i in enumerate(self._astral):  # each astral character before it takes two units
            if i + rank >= position:
                break
            index -= 1
        return index
