"""Generation history: the suggestions made at one place in the text, brought back by Alt+[ / Alt+]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

from app.gui.editor import Editor, u16len
from engine.types import TokenStep


@dataclass(frozen=True)
class Suggestion:
    """One suggestion as the editor showed it: its tokens (with the records their tints come from) and text pieces."""

    steps: tuple[TokenStep | None, ...]
    pieces: tuple[str, ...]
    summary: Any = None  # engine.types.Summary of the generation, when it finished

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class SuggestionHistory:
    """Suggestions at one place: the cursor position and the text the writer had when they were made.

    Ctrl+R adds to it instead of throwing the last suggestion away; editing the text or moving the
    cursor elsewhere starts over (`matches` tells the window when that happened).
    """

    def __init__(self) -> None:
        self.items: list[Suggestion] = []
        self.index = -1  # which one is showing; -1 when none of them is
        self.place: tuple[int, str] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def reset(self, place: tuple[int, str] | None = None) -> None:
        """Forget every suggestion; the next ones belong to `place` (cursor position, text)."""
        self.items, self.index, self.place = [], -1, place

    def matches(self, place: tuple[int, str]) -> bool:
        return self.place is not None and self.place == place

    def add(self, suggestion: Suggestion) -> None:
        """Keep a finished suggestion (an empty one is not worth cycling to) and show it."""
        if not suggestion.text:
            return
        self.items.append(suggestion)
        self.index = len(self.items) - 1

    def step(self, delta: int) -> Suggestion | None:
        """The suggestion `delta` away from the one showing (-1 older, +1 newer), or None at either end."""
        if not self.items:
            return None
        target = (len(self.items) if self.index < 0 else self.index) + delta
        if not 0 <= target < len(self.items):
            return None
        self.index = target
        return self.items[target]

    def leave(self) -> None:
        """None of the kept suggestions is showing (a new one streams, or the one showing was discarded)."""
        self.index = -1

    def label(self) -> str:
        """'2 / 4' while the second of four is showing; '' when there is nothing to cycle through."""
        if len(self.items) < 2 or self.index < 0:
            return ""
        return f"{self.index + 1} / {len(self.items)}"


class HistoryKeeper(QObject):
    """Keeps the editor's finished suggestions in a SuggestionHistory and brings them back on request.

    It watches the editor: the writer's own edit, or the cursor moving off the place, starts over.
    `label` shows "2 / 4" while a kept suggestion is on screen.
    """

    message = Signal(str)  # a one-line status message
    shown = Signal(object)  # the Suggestion brought back

    def __init__(self, editor: Editor, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.history = SuggestionHistory()
        self.label = QLabel("")
        self.label.setAccessibleName("Suggestion history")
        self.label.setToolTip("Suggestions at this place: Alt+[ and Alt+] go through them")
        editor.document().contentsChange.connect(self._on_contents_change)
        editor.cursorPositionChanged.connect(self._on_cursor_moved)
        editor.ghostChanged.connect(lambda _showing: self._update_label())
        editor.ghostAccepted.connect(lambda _text: self._start_over())  # the text has changed

    def place(self) -> tuple[int, str]:
        """Where a suggestion is: the cursor (a suggestion starts there) and the writer's text.

        The position is -1, a place nothing matches, while the cursor is away from the suggestion showing.
        """
        pos = self.editor.textCursor().position()
        if self.editor.has_ghost() and pos != u16len(self.editor.text_before_cursor()):
            pos = -1
        return pos, self.editor.text()

    def start_here(self) -> None:
        """A fresh history at the cursor (Ctrl+Enter); Ctrl+R then adds to it."""
        self.history.reset(self.place())
        self._update_label()

    def streaming(self) -> None:
        """A new suggestion is on its way: none of the kept ones is showing."""
        self.history.leave()
        self._update_label()

    def keep(self, summary: Any = None) -> None:
        """The suggestion showing has finished: keep it with the others at its place."""
        if not self.editor.has_ghost():
            return
        place = self.place()
        if place[0] < 0:
            return
        if not self.history.matches(place):
            self.history.reset(place)
        steps, pieces = self.editor.ghost_tokens()
        self.history.add(Suggestion(tuple(steps), tuple(pieces), summary))
        self._update_label()

    def cycle(self, delta: int) -> Suggestion | None:
        """Show the earlier (-1) or later (+1) suggestion at this place, with its tints; None when there is none."""
        if not self.history.matches(self.place()):
            self.history.reset()
            self._update_label()
            self.message.emit("No other suggestions here: Ctrl+R makes another.")
            return None
        suggestion = self.history.step(delta)
        if suggestion is None:
            self.message.emit(f"This is the {'earliest' if delta < 0 else 'latest'} suggestion here.")
            return None
        self.editor.begin_ghost()
        self.editor.append_ghost(list(suggestion.steps), list(suggestion.pieces))
        self._update_label()
        self.shown.emit(suggestion)
        return suggestion

    def _on_contents_change(self, _pos: int, _removed: int, _added: int) -> None:
        # The writer's own edit: the suggestions kept belong to a text that is gone.
        if not self.editor.changing_itself():
            self._start_over()

    def _on_cursor_moved(self) -> None:
        place = self.history.place
        if place is not None and not self.editor.changing_itself() and \
                self.editor.textCursor().position() != place[0]:
            self._start_over()

    def _start_over(self) -> None:
        if self.history.place is not None:
            self.history.reset()
            self._update_label()

    def _update_label(self) -> None:
        self.label.setText(self.history.label() if self.editor.has_ghost() else "")
