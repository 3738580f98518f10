"""The prose editor: streaming ghost text, per-token JS tints, one-step accept, token hover."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from PySide6.QtCore import QMimeData, QPoint, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QFont,
    QInputMethodEvent,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPalette,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtWidgets import QMenu, QPlainTextEdit, QTextEdit, QWidget

from app.gui import palette
from engine.types import TokenStep

MAX_TINTED_RUNS = 50  # accepted completions that keep their alternatives (older ones keep their tints only)
SCALE_SETTLE = 0.02  # a streaming suggestion's scale is redrawn once an end moves this far (a fraction of its width)
TINT_SCALES = ("suggestion", "fixed")  # each suggestion on its own bits scale, or all on palette.FIXED


def u16len(s: str) -> int:
    """Length in UTF-16 code units: QTextDocument positions count those, not code points."""
    return len(s.encode("utf-16-le")) // 2


def u16prefix(s: str, n: int) -> str:
    return s.encode("utf-16-le")[: 2 * n].decode("utf-16-le", errors="ignore")


@dataclass
class TokenRef:
    """One generated token in the editor: where it is and what the engine said about it."""

    step: TokenStep | None  # None for text the user chose (an alternative), not generated
    start: int  # document position
    end: int
    ghost: bool  # still a suggestion, not part of the document
    run: int  # which generation/acceptance it came from
    index: int  # position in that run


class _Accepted:
    """Accepted tokens of one run: [start, end) spans kept in step with every later edit."""

    def __init__(self, spans: list[list[int]], steps: list[TokenStep | None],
                 scale: palette.Scale | None = None) -> None:
        self.spans = spans
        self.steps = steps
        # Its own tint scale, kept from when it was accepted (edits that remove tokens leave it as it was).
        self.scale = scale if scale is not None else palette.scale_for(s.js_bits for s in steps if s is not None)

    def follow(self, pos: int, removed: int, added: int) -> None:
        """Shift spans after an edit at pos; a token whose text was edited stops being a token."""
        keep_spans, keep_steps = [], []
        for (a, b), step in zip(self.spans, self.steps, strict=True):
            if pos >= b:
                keep_spans.append([a, b])
            elif pos + removed <= a:
                keep_spans.append([a + added - removed, b + added - removed])
            else:
                continue
            keep_steps.append(step)
        self.spans, self.steps = keep_spans, keep_steps


SEAL_PROPERTY = QTextFormat.Property.UserProperty + 7


def end_sealed_block(cursor: QTextCursor, start: int, end: int) -> None:
    """End an edit block so that nothing typed afterwards can merge into its undo step.

    Qt merges a plain insertion into the previous undo command when that command is an
    insertion ending where the new one starts, even when it closed an edit block
    (QTextDocumentPrivate::appendUndoItem). Text typed right after an accepted suggestion
    would join the suggestion's undo step, and one Ctrl+Z would take both away. A character
    format change on the last inserted character, inside the block, makes the block end in a
    command that nothing merges into. (Over the whole span, Qt's redo would place the cursor
    past the end.) The property it sets is invisible and never saved.
    """
    if end > start:
        seal = QTextCursor(cursor.document())
        seal.setPosition(end - 1)
        seal.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        fmt = QTextCharFormat()
        fmt.setProperty(SEAL_PROPERTY, not bool(seal.charFormat().property(SEAL_PROPERTY)))
        seal.mergeCharFormat(fmt)
    cursor.endEditBlock()


class _TintHighlighter(QSyntaxHighlighter):
    """Paints each generated token's JS tint as a layout format: one drawing pass, not in the
    document (no undo entries, never inherited by typed text), unlike one ExtraSelection per
    token, which Qt redraws line by line for every selection."""

    def __init__(self, editor: Editor) -> None:
        super().__init__(editor.document())
        self._editor = editor

    def highlightBlock(self, text: str) -> None:
        ed = self._editor
        if ed._show_tints:
            block = self.currentBlock()
            b0 = block.position()
            b1 = b0 + block.length()
            for start, end, step, ghost, sc in ed._spans(b0, b1):
                fmt = ed._tint_format(step.js_bits, ghost, sc)
                if fmt is not None:
                    a = max(start, b0)
                    self.setFormat(a - b0, min(end, b1) - a, fmt)
        if ed._spell_hook is not None:
            ed._spell_hook(self, text)  # spelling underlines on top of the tints (app.gui.spelling)


class Editor(QPlainTextEdit):
    """QPlainTextEdit for prose with a ghost-text completion after the cursor."""

    tokenHovered = Signal(object)  # TokenRef | None
    generateRequested = Signal()
    regenerateRequested = Signal()
    stopRequested = Signal()  # Esc: stop and discard
    ghostAccepted = Signal(str)
    ghostChanged = Signal(bool)  # whether a suggestion is showing
    tintScaleChanged = Signal(object, str)  # (palette.Scale, caption): the scale of the run the legend speaks of

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("editor")
        self.setAccessibleName("Editor")
        self.setAccessibleDescription("Your text. Ctrl+Enter suggests a continuation in your style.")
        self.setTabChangesFocus(False)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setCenterOnScroll(False)
        font = QFont("Georgia")
        font.setStyleHint(QFont.StyleHint.Serif)
        font.setPointSizeF(12.5)
        self.setFont(font)
        self.document().setDocumentMargin(18)
        self.document().setModified(False)  # a layout setting, not an edit: a fresh window has nothing to save
        self.viewport().setMouseTracking(True)
        self._ghost_start: int | None = None
        self._ghost_text = ""
        self._ghost_steps: list[TokenStep | None] = []
        self._ghost_offsets: list[int] = []  # UTF-16 offset of each ghost token from the start
        self._ghost_run = 0
        self._runs: list[_Accepted] = []
        self._show_tints = True
        self._tint_scale = "suggestion"
        self._ghost_scale = palette.FIXED
        self._legend: tuple[palette.Scale, str] | None = None
        self._dark = False
        self._hovered: TokenRef | None = None
        self._overlay: list[QTextEdit.ExtraSelection] = []  # another view's marks (the style check's tints)
        self._ours = False  # True while we edit the document ourselves
        self.cursorPositionChanged.connect(self._on_cursor_moved)
        # Connected before the highlighter's own handler, so spans move before it repaints.
        self.document().contentsChange.connect(self._on_contents_change)
        self._fmt_cache: dict[tuple[float, bool, bool], QTextCharFormat | None] = {}
        self._spell_hook: Callable[[QSyntaxHighlighter, str], None] | None = None
        self._menu_hook: Callable[[QMenu, int], None] | None = None
        self._highlighter = _TintHighlighter(self)

    # --- appearance --------------------------------------------------------------
    def set_dark(self, dark: bool) -> None:
        self._dark = dark
        self._fmt_cache.clear()
        self._highlighter.rehighlight()

    def set_show_tints(self, on: bool) -> None:
        self._show_tints = on
        self._highlighter.rehighlight()
        self._refresh_tints()

    def set_tint_scale(self, mode: str) -> None:
        """"suggestion": each run of generated tokens tinted on its own bits scale; "fixed": all on palette.FIXED."""
        if mode not in TINT_SCALES or mode == self._tint_scale:
            return
        self._tint_scale = mode
        self._highlighter.rehighlight()
        self._update_legend()

    def tint_scale(self) -> str:
        return self._tint_scale

    def _tint_format(self, js_bits: float, ghost: bool = False,
                     sc: palette.Scale | None = None) -> QTextCharFormat | None:
        """The tint for a JS value on its run's scale `sc` (or the fixed one) with a text colour that reads on it,
        cached by its place on the legend (streams call this a lot)."""
        if sc is None or self._tint_scale == "fixed":
            sc = palette.FIXED
        t = round(sc.position(js_bits), 3)
        key = (t if js_bits >= palette.JS_ZERO_BITS else -1.0, self._dark, ghost)
        fmt = self._fmt_cache.get(key, False)
        if fmt is False:
            colors = self.palette()
            color = (palette.tint_at(t, self._dark, colors.color(QPalette.ColorRole.Base))
                     if js_bits >= palette.JS_ZERO_BITS else None)
            fmt = None
            if color is not None:
                fmt = QTextCharFormat()
                fmt.setBackground(color)
                fmt.setForeground(palette.text_on(color, colors.color(QPalette.ColorRole.Text), ghost))
            self._fmt_cache[key] = fmt
        return fmt  # type: ignore[return-value]

    def _spans(self, lo: int, hi: int):
        """(start, end, step, is_ghost, scale) of generated tokens overlapping [lo, hi), without building
        TokenRefs."""
        for run in self._runs:
            if not run.spans or run.spans[0][0] >= hi or run.spans[-1][1] <= lo:
                continue  # a run's spans are in order: most runs are skipped without a look at their tokens
            for (a, b), step in zip(run.spans, run.steps, strict=True):
                if step is not None and b > lo and a < hi:
                    yield a, b, step, False, run.scale
        g = self._ghost_start
        if g is not None and self._ghost_offsets:
            offsets = self._ghost_offsets
            total = u16len(self._ghost_text)
            i = max(0, bisect.bisect_right(offsets, lo - g) - 1)
            while i < len(offsets):
                a = g + offsets[i]
                if a >= hi:
                    break
                b = g + (offsets[i + 1] if i + 1 < len(offsets) else total)
                step = self._ghost_steps[i]
                if step is not None and b > lo:
                    yield a, b, step, True, self._ghost_scale
                i += 1

    def _rehighlight(self, start: int, end: int) -> None:
        """Repaint the tints of the blocks between two positions."""
        doc = self.document()
        last = max(0, doc.characterCount() - 1)
        block = doc.findBlock(min(max(0, start), last))
        stop = doc.findBlock(min(max(0, end), last))
        while block.isValid():
            self._highlighter.rehighlightBlock(block)
            if block == stop:
                break
            block = block.next()

    def show_tints(self) -> bool:
        return self._show_tints

    def highlighter(self) -> QSyntaxHighlighter:
        return self._highlighter

    def set_spell_hook(self, underline: Callable[[QSyntaxHighlighter, str], None] | None,
                       menu: Callable[[QMenu, int], None] | None) -> None:
        """`underline(highlighter, block_text)` formats each block after its tints; `menu(menu, position)` adds
        entries to the context menu for a document position."""
        self._spell_hook = underline
        self._menu_hook = menu

    def _ghost_format(self) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setFontItalic(True)
        text = self.palette().color(QPalette.ColorRole.Text)
        ghost = QColor(text)
        ghost.setAlphaF(0.62)
        fmt.setForeground(ghost)
        fmt.setProperty(QTextFormat.Property.UserProperty + 1, True)
        return fmt

    # --- the document without the suggestion -------------------------------------
    def changing_itself(self) -> bool:
        """True while the editor edits the document itself (adding or taking away a suggestion)."""
        return self._ours

    def has_ghost(self) -> bool:
        return self._ghost_start is not None

    def ghost_text(self) -> str:
        return self._ghost_text

    def ghost_tokens(self) -> tuple[list[TokenStep | None], list[str]]:
        """The suggestion's token records and text pieces: `append_ghost(*ghost_tokens())` shows it again."""
        return list(self._ghost_steps), _split(self._ghost_text, self._ghost_offsets)

    def ghost_span(self) -> tuple[int, int] | None:
        """[start, end) of the suggestion in the document (UTF-16 positions), or None."""
        if self._ghost_start is None:
            return None
        return self._ghost_start, self._ghost_start + u16len(self._ghost_text)

    def full_text(self) -> str:
        """Everything in the document (a suggestion included), character for character.

        toPlainText() would turn a no-break space into a space and U+2028 into a newline, so a
        file saved from it would silently change; the raw text only marks paragraphs, as U+2029.
        """
        return self.document().toRawText().replace("\u2029", "\n")

    def text(self) -> str:
        """The document as the user wrote it: never includes a pending suggestion."""
        full = self.full_text()
        if self._ghost_start is None:
            return full
        enc = full.encode("utf-16-le")
        a, b = 2 * self._ghost_start, 2 * (self._ghost_start + u16len(self._ghost_text))
        return (enc[:a] + enc[b:]).decode("utf-16-le")

    def text_before_cursor(self) -> str:
        """What the user wrote before the cursor (a pending suggestion left out)."""
        pos = self._ghost_start if self._ghost_start is not None else self.textCursor().position()
        return u16prefix(self.full_text(), pos)

    def prompt_text(self) -> str:
        """Text the model continues: everything before the cursor (and any suggestion so far).

        All of it: the worker cuts it to the model's window by tokens, at a paragraph, sentence or
        word start (engine.context), and says so."""
        full = self.full_text()
        if self._ghost_start is not None:
            end = self._ghost_start + u16len(self._ghost_text)
        else:
            end = self.textCursor().position()
        return u16prefix(full, end)

    # --- ghost text ----------------------------------------------------------------
    def begin_ghost(self) -> None:
        """Start a suggestion at the cursor (any old one is discarded first)."""
        self.discard_ghost()
        cursor = self.textCursor()
        if cursor.hasSelection():
            cursor.clearSelection()
            self.setTextCursor(cursor)
        self._ghost_start = cursor.position()
        self._ghost_text = ""
        self._ghost_steps = []
        self._ghost_offsets = []
        self._ghost_scale = palette.FIXED
        self._ghost_run += 1
        self.ghostChanged.emit(True)
        self._update_legend()

    def append_ghost(self, steps: list[TokenStep | None], texts: list[str] | None = None) -> None:
        """Append streamed tokens to the suggestion (one edit block for the whole suggestion)."""
        if self._ghost_start is None:
            self.begin_ghost()
        pieces = texts if texts is not None else [s.text if s is not None else "" for s in steps]
        chunk = "".join(pieces)
        if not chunk and not steps:
            return
        offset = u16len(self._ghost_text)
        for step, piece in zip(steps, pieces, strict=True):
            self._ghost_steps.append(step)
            self._ghost_offsets.append(offset)
            offset += u16len(piece)
        rescaled = self._rescale_ghost()
        if chunk:
            at = self._ghost_start + u16len(self._ghost_text)
            first = not self._ghost_text
            # The spans include the chunk before it lands: the highlighter tints it as it arrives.
            self._ghost_text += chunk
            self._insert_ghost_chunk(chunk, at, first)
        if rescaled:
            self._rehighlight(self._ghost_start, self._ghost_start + u16len(self._ghost_text))
            self._update_legend()

    def _rescale_ghost(self) -> bool:
        """Take the suggestion's scale from its tokens so far; True when it moved enough to be redrawn."""
        new = palette.scale_for(s.js_bits for s in self._ghost_steps if s is not None)
        old = self._ghost_scale
        if new == old:
            return False
        if new != palette.FIXED and old != palette.FIXED:
            width = math.log(new.hi / new.lo)
            if max(abs(math.log(new.lo / old.lo)), abs(math.log(new.hi / old.hi))) < SCALE_SETTLE * width:
                return False  # the colours would not change: nothing is repainted
        self._ghost_scale = new
        return self._tint_scale != "fixed"

    def _insert_ghost_chunk(self, chunk: str, at: int, first: bool) -> None:
        user = self.textCursor()
        anchor, pos = user.anchor(), user.position()
        cur = QTextCursor(self.document())
        cur.setPosition(at)
        self._ours = True
        try:
            # The whole suggestion is one undo command: Esc undoes it, leaving the text untouched.
            if first:
                cur.beginEditBlock()
            else:
                cur.joinPreviousEditBlock()
            cur.insertText(chunk, self._ghost_format())
            cur.endEditBlock()
        finally:
            self._ours = False
        if pos <= at and anchor <= at:
            # Inserting at the cursor would push it along; the cursor stays where the user left it.
            keep = self.textCursor()
            keep.setPosition(anchor)
            keep.setPosition(pos, QTextCursor.MoveMode.KeepAnchor)
            self.setTextCursor(keep)

    def _take_ghost(self) -> tuple[str, list[TokenStep | None], list[int]] | None:
        """Remove the suggestion from the document (undoing its edit block); return what it was."""
        if self._ghost_start is None:
            return None
        text, steps, offsets = self._ghost_text, self._ghost_steps, self._ghost_offsets
        start = self._ghost_start
        if text:
            self._ours = True
            try:
                self.document().undo()
                # Nothing of the suggestion may come back through Redo.
                self.document().clearUndoRedoStacks(QTextDocument.Stacks.RedoStack)
            finally:
                self._ours = False
        cursor = self.textCursor()
        if cursor.position() > start and not cursor.hasSelection():
            cursor.setPosition(min(start, self.document().characterCount() - 1))
            self.setTextCursor(cursor)
        self._ghost_start = None
        self._ghost_text = ""
        self._ghost_steps = []
        self._ghost_offsets = []
        self._hovered = None
        self._rehighlight(start, start)
        return text, steps, offsets

    def discard_ghost(self) -> bool:
        """Esc: the document goes back byte for byte to what it was."""
        taken = self._take_ghost()
        if taken is None:
            return False
        self._refresh_tints()
        self.ghostChanged.emit(False)
        return True

    def accept_ghost(self, n_tokens: int | None = None) -> str:
        """Make the first n tokens (all by default) part of the document, as one undo step."""
        if self._ghost_start is None:
            return ""
        start = self._ghost_start
        text, steps, offsets = self._take_ghost()  # type: ignore[misc]
        n = len(steps) if n_tokens is None else max(0, min(n_tokens, len(steps)))
        cut = offsets[n] if n < len(steps) else u16len(text)
        accepted, rest = u16prefix(text, cut), text.encode("utf-16-le")[2 * cut:].decode("utf-16-le")
        if accepted:
            cur = QTextCursor(self.document())
            cur.setPosition(start)
            self._ours = True
            try:
                cur.beginEditBlock()
                cur.insertText(accepted, QTextCharFormat(self.currentCharFormat()))
                end_sealed_block(cur, start, start + cut)
            finally:
                self._ours = False
            spans = [[start + offsets[i], start + (offsets[i + 1] if i + 1 < len(offsets) else u16len(text))]
                     for i in range(n)]
            self._runs.append(_Accepted(spans, steps[:n]))
            if len(self._runs) > MAX_TINTED_RUNS:
                # Older completions keep their tints but not their alternatives, so memory stays bounded.
                run = self._runs[len(self._runs) - MAX_TINTED_RUNS - 1]
                run.steps = [_compact(s) for s in run.steps]
            self._rehighlight(start, start + cut)
            end = QTextCursor(self.document())
            end.setPosition(start + cut)
            self.setTextCursor(end)
        if n < len(steps):
            # A partial accept keeps the rest on screen as the suggestion.
            self._ghost_start = start + cut
            self._ghost_text = ""
            self._ghost_steps, self._ghost_offsets = [], []
            self.append_ghost(steps[n:], _split(rest, [o - cut for o in offsets[n:]]))
        else:
            self.ghostChanged.emit(False)
        self._refresh_tints()
        self.ghostAccepted.emit(accepted)
        return accepted

    def accept_word(self) -> str:
        """Ctrl+Right: accept whole tokens up to the end of the next word."""
        if not self._ghost_steps:
            return ""
        pieces = _split(self._ghost_text, self._ghost_offsets)
        seen_word = False
        n = 0
        for i, piece in enumerate(pieces):
            if seen_word and (piece[:1].isspace() or not piece):
                break
            n = i + 1
            if piece.strip():
                seen_word = True
        return self.accept_ghost(n)

    def truncate_ghost(self, n_tokens: int) -> None:
        """Keep only the first n tokens of the suggestion (before rerolling from there)."""
        if self._ghost_start is None:
            return
        start = self._ghost_start
        text, steps, offsets = self._take_ghost()  # type: ignore[misc]
        pieces = _split(text, offsets)[:n_tokens]
        self._ghost_start = start
        self._ghost_text = ""
        self._ghost_steps, self._ghost_offsets = [], []
        self.append_ghost(steps[:n_tokens], pieces)

    def cut_accepted_from(self, ref: TokenRef) -> int:
        """Delete an accepted run from this token on (one undo step); return where it started."""
        run = self._runs[ref.run]
        start = ref.start
        end = max(b for _, b in run.spans[ref.index:])
        run.spans, run.steps = run.spans[:ref.index], run.steps[:ref.index]
        cur = QTextCursor(self.document())
        cur.setPosition(start)
        cur.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        cur.beginEditBlock()
        cur.removeSelectedText()
        cur.endEditBlock()
        self._rehighlight(start, start)
        place = QTextCursor(self.document())
        place.setPosition(start)
        self.setTextCursor(place)
        self._refresh_tints()
        return start

    def restore_runs(self, runs: list[tuple[list[list[int]], list[TokenStep | None]]]) -> list[int]:
        """Tint text already in the document as accepted runs (a reopened document's), each (spans, steps) with
        spans in order; returns the runs' indices."""
        first = len(self._runs)
        self._runs += [_Accepted([list(sp) for sp in spans], list(steps)) for spans, steps in runs]
        if runs:
            self._highlighter.rehighlight()
            self._update_legend()
        return list(range(first, len(self._runs)))

    def accepted_runs(self) -> list[tuple[list[list[int]], list[TokenStep | None]]]:
        """(spans, steps) of every accepted run, in acceptance order, as they are now (positions in UTF-16 units)."""
        return [(run.spans, run.steps) for run in self._runs]

    def clear_runs(self) -> None:
        self._runs = []
        self._highlighter.rehighlight()
        self._refresh_tints()

    # --- tokens: lookup and tint -------------------------------------------------------
    def tokens(self) -> list[TokenRef]:
        out: list[TokenRef] = []
        for r, run in enumerate(self._runs):
            for i, ((a, b), step) in enumerate(zip(run.spans, run.steps, strict=True)):
                out.append(TokenRef(step, a, b, False, r, i))
        if self._ghost_start is not None:
            total = u16len(self._ghost_text)
            for i, (step, off) in enumerate(zip(self._ghost_steps, self._ghost_offsets, strict=True)):
                end = self._ghost_offsets[i + 1] if i + 1 < len(self._ghost_offsets) else total
                out.append(TokenRef(step, self._ghost_start + off, self._ghost_start + end, True, -1, i))
        return out

    def is_current(self, ref: TokenRef) -> bool:
        """Whether a TokenRef (e.g. held by the inspector) still names the same token."""
        return any(t.start == ref.start and t.end == ref.end and t.ghost == ref.ghost
                   and t.index == ref.index and t.run == ref.run and t.step is ref.step
                   for t in self.tokens())

    def token_at(self, pos: int, *, before: bool = False) -> TokenRef | None:
        for t in self.tokens():
            if t.start <= pos < t.end or (before and t.start < pos == t.end):
                return t
        return None

    def set_overlay(self, selections: list[QTextEdit.ExtraSelection]) -> None:
        """Marks another view lays over the text (drawn under the hovered token's underline, never saved)."""
        self._overlay = list(selections)
        self._refresh_tints()

    def overlay(self) -> list[QTextEdit.ExtraSelection]:
        return list(self._overlay)

    def _refresh_tints(self) -> None:
        """The overlay, then the hovered token's underline (generated tokens' tints are the highlighter's)."""
        selections = list(self._overlay)
        ref = self._hovered
        if ref is not None and ref.end > ref.start:
            sel = QTextEdit.ExtraSelection()
            c = QTextCursor(self.document())
            last = max(0, self.document().characterCount() - 1)
            c.setPosition(min(ref.start, last))
            c.setPosition(min(ref.end, last), QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = c
            fmt = QTextCharFormat()
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.SingleUnderline)
            fmt.setUnderlineColor(self.palette().color(QPalette.ColorRole.Text))
            sel.format = fmt
            selections.append(sel)
        self.setExtraSelections(selections)
        self._update_legend()

    def legend_scale(self) -> tuple[palette.Scale, str]:
        """The scale the legend shows, with its caption: that of the hovered token's run, else of the suggestion
        on screen, else of the latest accepted one."""
        if self._tint_scale == "fixed":
            return palette.FIXED, "fixed scale"
        ref = self._hovered
        if ref is not None and ref.ghost and self._ghost_start is not None:
            sc, what = self._ghost_scale, "this suggestion"
        elif ref is not None and not ref.ghost and 0 <= ref.run < len(self._runs):
            sc, what = self._runs[ref.run].scale, "this accepted text"
        elif self._ghost_start is not None:
            sc, what = self._ghost_scale, "this suggestion"
        elif self._runs:
            sc, what = self._runs[-1].scale, "latest suggestion"
        else:
            return palette.FIXED, "fixed scale until a suggestion"
        if sc == palette.FIXED:
            return sc, f"fixed scale ({what}: too few tinted tokens)"
        return sc, f"{palette.scale_caption(sc)}, {what}"

    def _update_legend(self) -> None:
        legend = self.legend_scale()
        if legend != self._legend:
            self._legend = legend
            self.tintScaleChanged.emit(*legend)

    def _set_hovered(self, ref: TokenRef | None) -> None:
        same = (ref is None and self._hovered is None) or (
            ref is not None and self._hovered is not None and ref.start == self._hovered.start
            and ref.end == self._hovered.end and ref.ghost == self._hovered.ghost)
        if same:
            return
        self._hovered = ref
        self._refresh_tints()
        self.tokenHovered.emit(ref)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        pos = self.cursorForPosition(event.position().toPoint()).position()
        ref = self.token_at(pos)
        if ref is None and pos > 0:
            # cursorForPosition rounds to the nearest gap; look at the char on either side.
            ref = self.token_at(pos - 1)
        if ref is not None:
            self._set_hovered(ref)

    def _on_cursor_moved(self) -> None:
        if self._ours:
            return
        ref = self.token_at(self.textCursor().position())
        if ref is None:
            ref = self.token_at(self.textCursor().position(), before=True)
        if ref is not None:
            self._set_hovered(ref)

    def hover_token(self, ref: TokenRef | None) -> None:
        self._set_hovered(ref)

    def _on_contents_change(self, pos: int, removed: int, added: int) -> None:
        if self._runs:
            for run in self._runs:
                run.follow(pos, removed, added)
            if not self._ours:
                self._refresh_tints()

    # --- keys ----------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, mods = event.key(), event.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        if ctrl and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.generateRequested.emit()
            return
        if ctrl and key == Qt.Key.Key_R and not mods & Qt.KeyboardModifier.ShiftModifier:
            # Also the menu's shortcut; handled here when the key reaches the editor first.
            self.regenerateRequested.emit()
            return
        if self._ghost_start is not None:
            if key == Qt.Key.Key_Tab and not ctrl:
                self.accept_ghost()
                return
            if key == Qt.Key.Key_Right and ctrl:
                self.accept_word()
                return
            if key == Qt.Key.Key_Escape or event.matches(QKeySequence.StandardKey.Undo) or event.matches(
                    QKeySequence.StandardKey.Redo):
                # Esc (and Undo) while a suggestion shows: stop and discard, nothing else.
                self.dismiss_ghost()
                return
            if _edits(event):
                # Typing over a suggestion dismisses it, like any editor's inline completion.
                self.dismiss_ghost()
        super().keyPressEvent(event)

    def insertFromMimeData(self, source: QMimeData) -> None:
        self.dismiss_ghost()
        super().insertFromMimeData(source)

    def dismiss_ghost(self) -> bool:
        """Stop the stream and take the suggestion away (before the writer's own edit, or Esc)."""
        if self._ghost_start is None:
            return False
        self.stopRequested.emit()
        self.discard_ghost()
        return True

    def cut(self) -> None:
        self.dismiss_ghost()
        super().cut()

    def paste(self) -> None:
        self.dismiss_ghost()
        super().paste()

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        # The menu's Cut, Paste and Delete edit the document without a key press.
        self.dismiss_ghost()
        menu = self.context_menu(event.pos())
        menu.exec(event.globalPos())
        menu.deleteLater()

    def context_menu(self, pos: QPoint) -> QMenu:
        """The standard menu for a viewport point, with the spelling entries for the word there first."""
        menu = self.createStandardContextMenu(pos)
        if self._menu_hook is not None:
            self._menu_hook(menu, self.cursorForPosition(pos).position())
        return menu

    def inputMethodEvent(self, event: QInputMethodEvent) -> None:
        if event.commitString() or event.preeditString():
            self.dismiss_ghost()
        super().inputMethodEvent(event)

    def undo(self) -> None:
        if not self.dismiss_ghost():
            super().undo()

    def redo(self) -> None:
        if not self.dismiss_ghost():
            super().redo()

    def load_text(self, text: str) -> None:
        """Replace the whole document (open/new): a fresh undo history."""
        self.discard_ghost()
        self._runs = []
        self.setPlainText(text)
        self.document().setModified(False)
        self._refresh_tints()


def _compact(step: TokenStep | None) -> TokenStep | None:
    if step is None or not (step.top_base or step.top_steered):
        return step
    return replace(step, top_base=[], top_steered=[])


def _split(text: str, offsets: list[int]) -> list[str]:
    enc = text.encode("utf-16-le")
    bounds = [*offsets, len(enc) // 2]
    return [enc[2 * a: 2 * b].decode("utf-16-le", errors="ignore") for a, b in itertools.pairwise(bounds)]


def _edits(event: QKeyEvent) -> bool:
    """Whether a key press would change the text."""
    if event.text() and event.text().isprintable():
        return True
    if event.key() in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete, Qt.Key.Key_Return, Qt.Key.Key_Enter):
        return True
    return any(event.matches(k) for k in (QKeySequence.StandardKey.Cut, QKeySequence.StandardKey.Paste,
                                          QKeySequence.StandardKey.DeleteStartOfWord,
                                          QKeySequence.StandardKey.DeleteEndOfWord))
