"""The status bar's live word, character and token counts of the writer's text, counted off the GUI thread.

A moment after the last edit (debounced) the keeper takes the editor's text without its suggestion (ghost text)
and counts it twice, each with at most one count in flight, the newest text counted next when one ends:
words and characters on a Qt thread pool, line by line with each line's count cached (after a keystroke in a
10 MB document only that line is counted again, and the pool thread lets go of the GIL between lines), and tokens
on the engine's worker with the model's tokenizer (engine.token_count caches by chunk the same way). Before a model
is loaded there is no token count, and none is shown. While a suggestion streams nothing is counted: the writer's
text cannot change under it, and the worker is busy generating.
"""

from __future__ import annotations

import re
import threading
import traceback
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from app.gui.background import run_in_pool
from app.gui.editor import Editor
from app.jobs.worker import JobError, Worker

WORD_RE = re.compile(r"\w+(?:['’\-]\w+)*")
DEBOUNCE_MS = 300  # counting on every key would only be thrown away by the next one
_LONG_LINE = 65_536  # a line longer than this is counted in pieces cut at spaces
_CHECK_EVERY = 2048  # lines between looks at the cancel flag


def _pieces(text: str) -> list[str]:
    """Lines, the very long ones cut at spaces: words never span either cut."""
    out: list[str] = []
    for line in text.split("\n"):
        start = 0
        while len(line) - start > _LONG_LINE:
            cut = line.find(" ", start + _LONG_LINE)
            if cut == -1:
                break
            out.append(line[start:cut])
            start = cut
        out.append(line[start:] if start else line)
    return out


class WordCounter:
    """Words of a text as the sum of its lines' words, each line's count remembered between calls."""

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def count(self, text: str, cancel: threading.Event | None = None) -> tuple[int, int] | None:
        """(words, characters); None when `cancel` was set."""
        seen: dict[str, int] = {}
        total = 0
        for i, piece in enumerate(_pieces(text)):
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
        return total, len(text)


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
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.refresh)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._cancel = threading.Event()  # set at close: a word count in flight stops early
        self._words = WordCounter()
        self._words_busy = False
        self._words_done: str | None = None  # the text the words label is for (or is being counted)
        self._words_next: str | None = None
        self._token_job: int | None = None
        self._tokens_done: str | None = None
        self._tokens_next: str | None = None
        self._closed = False
        self.words_label = ""
        self.tokens_label = ""
        editor.document().contentsChanged.connect(self._timer.start)
        editor.ghostChanged.connect(self._on_ghost_changed)
        worker.modelLoaded.connect(self._on_model_loaded)

    def schedule(self) -> None:
        self._timer.start()

    def refresh(self) -> None:
        """Count the editor's text now (the results arrive later, on the GUI thread)."""
        if self._closed:
            return
        text = self._editor.text()
        self._count_words(text)
        if not self._editor.has_ghost():
            self._count_tokens(text)

    def close(self) -> None:
        """Stop counting; waits for a word count in flight (it stops at its next look at the flag)."""
        self._closed = True
        self._timer.stop()
        self._cancel.set()
        self._pool.waitForDone(5000)

    # --- words and characters, on the pool ---------------------------------------------------------
    def _count_words(self, text: str) -> None:
        if self._words_busy:
            self._words_next = text
            return
        if text == self._words_done:
            return
        self._words_busy = True
        self._words_done = text
        counter, cancel = self._words, self._cancel
        run_in_pool(self._pool, lambda: counter.count(text, cancel), self._words_counted, self._words_failed)

    def _words_counted(self, result: tuple[int, int] | None) -> None:
        self._words_busy = False
        if self._closed or result is None:
            return
        self.words_label = words_text(*result)
        self.wordsChanged.emit(self.words_label)
        self._words_again()

    def _words_failed(self, exc: BaseException) -> None:
        self._words_busy = False
        self._words_done = None
        if not self._closed:
            traceback.print_exception(exc)

    def _words_again(self) -> None:
        text, self._words_next = self._words_next, None
        if text is not None:
            self._count_words(text)

    # --- tokens, on the worker ----------------------------------------------------------------------
    def _count_tokens(self, text: str) -> None:
        if self._worker.model is None:
            return
        if self._token_job is not None:
            self._tokens_next = text
            return
        if text == self._tokens_done:
            return
        try:
            self._token_job = self._worker.count_tokens(
                text, on_done=self._tokens_counted, on_error=self._tokens_failed, on_cancelled=self._tokens_cancelled)
        except RuntimeError:  # the worker has been shut down: a window on its way out counts nothing more
            return
        self._tokens_done = text

    def _tokens_counted(self, count: Any) -> None:
        self._token_job = None
        if self._closed:
            return
        self.tokens_label = tokens_text(count)
        self.tokensChanged.emit(self.tokens_label)
        text, self._tokens_next = self._tokens_next, None
        if text is not None and not self._editor.has_ghost():
            self._count_tokens(text)

    def _tokens_failed(self, error: JobError) -> None:
        self._token_job = None
        self._tokens_done = None
        self.tokens_label = ""
        self.tokensChanged.emit("")
        if not error.user:
            print(f"Counting tokens failed: {error.message}\n{error.details}")

    def _tokens_cancelled(self) -> None:
        self._token_job = None
        self._tokens_done = None  # counted again once the suggestion is gone

    def _on_ghost_changed(self, showing: bool) -> None:
        if showing:
            # The suggestion's generation is queued behind a count: the count gives way (a large document's first
            # count takes about a second per megabyte).
            self._worker.cancel(self._token_job)
            self._tokens_next = None
        else:
            self._timer.start()

    def _on_model_loaded(self, _info: object) -> None:
        """Another tokenizer: every token count so far is void."""
        self._tokens_done = None
        self.tokens_label = ""
        self.tokensChanged.emit("")
        self._timer.start()
