"""The status bar's live word, character and token counts of the writer's text, counted off the GUI thread.

The keeper mirrors the document as a list of its blocks' texts, kept up to date from each change Qt reports (one
block read per keystroke), so it never asks Qt for the whole text: for a 10 MB document that alone takes ~100 ms.
A moment after the last edit (debounced) it counts a snapshot of that list twice, each with at most one count in
flight and the newest text counted next when one ends: words and characters on a Qt thread pool, line by line
with each line's count cached (the pool thread lets go of the GIL between lines), and tokens on the engine's
worker with the model's tokenizer (engine.token_count caches by chunk the same way). Before a model is loaded
there is no token count, and none is shown. While a suggestion (ghost text) shows nothing is counted: it is not
the writer's text, and the writer's own text cannot change under it.
"""

from __future__ import annotations

import re
import threading
import traceback
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from PySide6.QtGui import QTextDocument

from app.gui.background import run_in_pool
from app.gui.editor import Editor
from app.jobs.worker import JobError, Worker

WORD_RE = re.compile(r"\w+(?:['’\-]\w+)*")
DEBOUNCE_MS = 300  # counting on every key would only be thrown away by the next one
_LONG_LINE = 65_536  # a line longer than this is counted in pieces cut at spaces
_CHECK_EVERY = 2048  # lines between looks at the cancel flag


class WordCounter:
    """Words of a text as the sum of its lines' words, each line's count remembered between calls."""

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def count(self, lines: list[str], cancel: threading.Event | None = None) -> int | None:
        """Words in these lines; None when `cancel` was set."""
        seen: dict[str, int] = {}
        total = 0
        for i, line in enumerate(lines):
            for piece in _pieces(line):
                n = seen.get(piece)
                if n is None:
                    n = self._cache.get(piece)
                    if n is None:
                        n = len(WORD_RE.findall(piece))
                    seen[piece] = n
                total += n
            if cancel is not None and i % _CHECK_EVERY == _CHECK_EVERY - 1 and cancel.is_set():
                return None
        self._cache = seen  # the latest text's lines only: memory stays bounded by its size
        return total


def _pieces(line: str) -> list[str]:
    """A line, a very long one cut at spaces (words never span a space)."""
    if len(line) <= _LONG_LINE:
        return [line]
    out = []
    start = 0
    while len(line) - start > _LONG_LINE:
        cut = line.find(" ", start + _LONG_LINE)
        if cut == -1:
            break
        out.append(line[start:cut])
        start = cut
    out.append(line[start:])
    return out


class BlockMirror:
    """The document's block texts as a list, following every change (`version` counts them)."""

    def __init__(self, doc: QTextDocument) -> None:
        self._doc = doc
        self.lines: list[str] = []
        self._blocks = 0
        self.version = 0
        self.rebuilds = 0  # whole-document reads after the first (a report that did not add up)
        self._rebuild()
        self.rebuilds = 0
        doc.contentsChange.connect(self._changed)

    def _rebuild(self) -> None:
        self.rebuilds += 1
        lines = []
        block = self._doc.firstBlock()
        while block.isValid():
            lines.append(block.text())
            block = block.next()
        self.lines = lines
        self._blocks = self._doc.blockCount()

    def text(self) -> str:
        """Everything in the document, a newline between blocks (as Editor.full_text())."""
        return "\n".join(self.lines)

    def _changed(self, pos: int, _removed: int, added: int) -> None:
        doc = self._doc
        blocks = doc.blockCount()
        delta, self._blocks = blocks - self._blocks, blocks
        last = max(0, doc.characterCount() - 1)
        first = doc.findBlock(min(pos, last))
        end = doc.findBlock(min(pos + added, last))
        a, b = first.blockNumber(), end.blockNumber()
        old_end = b + 1 - delta  # the blocks a..b are new; the old ones they replace end here
        self.version += 1
        if not 0 <= a < old_end <= len(self.lines) or len(self.lines) - (old_end - a) + (b + 1 - a) != blocks:
            self._rebuild()  # a change Qt reported oddly: read everything again rather than drift
            return
        new = []
        block = first
        while block.isValid():
            new.append(block.text())
            if block == end:
                break
            block = block.next()
        self.lines[a:old_end] = new


def words_text(words: int, chars: int) -> str:
    return f"{words:,} words · {chars:,} characters"


def tokens_text(count: Any) -> str:
    """The label for an engine.token_count.TokenCount ('' for None: no model yet)."""
    if count is None:
        return ""
    return f"{'' if count.exact else '≈'}{count.tokens:,} tokens"


class CountKeeper(QObject):
    """Keeps the word/character and token labels' texts up to date with the editor (suggestion left out)."""

    wordsChanged = Signal(str)
    tokensChanged = Signal(str)

    def __init__(self, editor: Editor, worker: Worker, parent: QObject | None = None,
                 delay_ms: int = DEBOUNCE_MS) -> None:
        super().__init__(parent)
        self._editor = editor
        self._worker = worker
        self.mirror = BlockMirror(editor.document())
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.refresh)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._cancel = threading.Event()  # set at close: a word count in flight stops early
        self._words = WordCounter()
        self._words_busy = False
        self._words_version = -1  # the mirror version the words label is for (or is being counted)
        self._text: tuple[int, str] | None = None  # (version, text) of the last count of words
        self._token_job: int | None = None
        self._tokens_version = -1  # the version the token label is for (or is being counted)
        self._closed = False
        self.words_label = ""
        self.tokens_label = ""
        editor.document().contentsChanged.connect(self._timer.start)
        editor.ghostChanged.connect(self._on_ghost_changed)
        worker.modelLoaded.connect(self._on_model_loaded)

    def refresh(self) -> None:
        """Count the writer's text now, if it changed (the results arrive later, on the GUI thread)."""
        if self._closed or self._editor.has_ghost():
            return
        self._count_words()

    def _count_words(self) -> None:
        """Count the document as the mirror holds it now, which must be the writer's text alone."""
        version = self.mirror.version
        if self._words_busy or version == self._words_version:
            self._count_tokens()
            return
        self._words_busy = True
        self._words_version = version
        lines, counter, cancel = list(self.mirror.lines), self._words, self._cancel

        def count() -> tuple[int, int, str, int] | None:
            words = counter.count(lines, cancel)
            if words is None:
                return None
            text = "\n".join(lines)
            return words, len(text), text, version

        run_in_pool(self._pool, count, self._words_counted, self._words_failed)

    def close(self) -> None:
        """Stop counting; waits for a word count in flight (it stops at its next look at the flag)."""
        self._closed = True
        self._timer.stop()
        self._cancel.set()
        self._pool.waitForDone(5000)

    # --- words and characters, on the pool ---------------------------------------------------------
    def _words_counted(self, result: tuple[int, int, str, int] | None) -> None:
        self._words_busy = False
        if self._closed or result is None:
            return
        words, chars, text, version = result
        self.words_label = words_text(words, chars)
        self.wordsChanged.emit(self.words_label)
        self._text = (version, text)
        if self.mirror.version != version and not self._editor.has_ghost():
            self.refresh()  # edited while counting
        else:
            self._count_tokens()  # (a suggestion's text does not count: with one showing, this text is the writer's)

    def _words_failed(self, exc: BaseException) -> None:
        self._words_busy = False
        self._words_version = -1
        if not self._closed:
            traceback.print_exception(exc)

    # --- tokens, on the worker ----------------------------------------------------------------------
    def _count_tokens(self) -> None:
        if self._closed or self._worker.model is None or self._token_job is not None or self._text is None:
            return
        version, text = self._text
        if version == self._tokens_version:
            return
        if self._editor.has_ghost():
            # Counted once the suggestion is gone (it must not wait behind a count); until then the count of the
            # text before the edit would be wrong, so none is shown.
            if self.tokens_label:
                self.tokens_label = ""
                self.tokensChanged.emit("")
            return
        try:
            self._token_job = self._worker.count_tokens(
                text, on_done=self._tokens_counted, on_error=self._tokens_failed, on_cancelled=self._tokens_cancelled)
        except RuntimeError:  # the worker has been shut down: a window on its way out counts nothing more
            return
        self._tokens_version = version

    def _tokens_counted(self, count: Any) -> None:
        self._token_job = None
        if self._closed:
            return
        self.tokens_label = tokens_text(count)
        self.tokensChanged.emit(self.tokens_label)
        self._count_tokens()  # the text may have moved on meanwhile

    def _tokens_failed(self, error: JobError) -> None:
        self._token_job = None
        self.tokens_label = ""
        self.tokensChanged.emit("")
        if not error.user:
            print(f"Counting tokens failed: {error.message}\n{error.details}")

    def _tokens_cancelled(self) -> None:
        self._token_job = None
        self._tokens_version = -1  # counted again once the suggestion is gone

    def _on_ghost_changed(self, showing: bool) -> None:
        if showing:
            # The suggestion's generation is queued behind a count: the count gives way (a large document's first
            # count takes about a second per megabyte).
            self._worker.cancel(self._token_job)
            if self._timer.isActive() and not self._closed:
                # An edit not counted yet: the suggestion has no text so far, so the words can be counted now
                # rather than showing the text before the edit for as long as the suggestion stays.
                self._timer.stop()
                self._count_words()
        else:
            self._timer.start()

    def _on_model_loaded(self, _info: object) -> None:
        """Another tokenizer: every token count so far is void."""
        self._tokens_version = -1
        self.tokens_label = ""
        self.tokensChanged.emit("")
        self._count_tokens()
