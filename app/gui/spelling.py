"""Spell checking in the editor: misspelled words underlined (never in a suggestion), suggestions and
"Add to Dictionary" / "Ignore" in the context menu, a personal word list in the data folder.

The dictionary is pyspellchecker's English word list, loaded once per process on a thread pool (about 0.3 s).
Where the library or its dictionary is missing the editor works as before and the window says so once.

The underlines are drawn by the editor's one syntax highlighter (the tints' own), which calls `Spelling.underline`
for each block it formats. Only blocks on screen (and a margin around them) are checked: a block formatted while
off screen is marked stale in its block state and checked when it scrolls into view, so opening or re-tinting a
10 MB document checks a screenful, not the whole text. Each word's verdict is cached until the word list changes.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QSyntaxHighlighter, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QMenu

from app.gui.background import run_in_pool
from app.gui.editor import Editor, u16len

PERSONAL_FILE = "dictionary.txt"
MAX_SUGGESTIONS = 5
LANGUAGE = "en"
STALE = -2  # block state: formatted off screen, not checked
MARGIN_BLOCKS = 30  # blocks above and below the screen that are checked too (small scrolls show no gap)

_WORD_RE = re.compile(r"\w+(?:['’]\w+)*")
# Addresses, e-mail addresses and paths are not words.
_SKIP_RE = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*://|www\.)\S+|\S+@\S+\.\w+|(?:~|\.{1,2})?/\S+")
_UNDERLINE = QColor(220, 30, 30)

_dictionary: Any = None
_dictionary_lock = threading.Lock()


class SpellingUnavailable(Exception):
    """No spell checking on this system: the message says why, in one line."""


def load_dictionary() -> Any:
    """pyspellchecker's English dictionary, loaded once per process; SpellingUnavailable where it cannot be."""
    global _dictionary
    with _dictionary_lock:
        if _dictionary is None:
            try:
                from spellchecker import SpellChecker
            except ImportError as exc:
                raise SpellingUnavailable(
                    "Spell checking is off: the pyspellchecker library is not installed.") from exc
            try:
                _dictionary = SpellChecker(language=LANGUAGE)
            except Exception as exc:  # a missing or damaged word list, whatever the library raises
                raise SpellingUnavailable(
                    f"Spell checking is off: its English dictionary could not be loaded ({exc}).") from exc
        return _dictionary


def personal_path() -> Path:
    from styles.paths import user_dir

    return user_dir() / PERSONAL_FILE


class PersonalWords:
    """The writer's own words, one per line in the data folder, kept in the order added."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.words: list[str] = []
        self.problem: str | None = None
        try:
            text = path.read_text(encoding="utf-8") if path is not None else ""
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as exc:
            self.problem = f"Your word list {path} could not be read ({exc}); words you add are kept for this session."
            text = ""
        self.words = [w.strip() for w in text.splitlines() if w.strip()]
        self._lower = {_key(w) for w in self.words}

    def __contains__(self, word: str) -> bool:
        return _key(word) in self._lower

    def add(self, word: str) -> None:
        """Add a word and write the list atomically: the old file stays whole until the new one is complete."""
        if word in self:
            return
        self.words.append(word)
        self._lower.add(_key(word))
        if self.problem is not None or self.path is None:
            return  # never overwrite a list that could not be read
        with contextlib.suppress(FileNotFoundError):  # another window may have added words since
            on_disk = [w.strip() for w in self.path.read_text(encoding="utf-8").splitlines() if w.strip()]
            mine = {_key(w) for w in on_disk}
            self.words = on_disk + [w for w in self.words if _key(w) not in mine]
            self._lower = {_key(w) for w in self.words}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write("".join(f"{w}\n" for w in self.words))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _key(word: str) -> str:
    return word.replace("’", "'").lower()


def _skipped(word: str) -> bool:
    """Words with digits or underscores, ALL-CAPS words and mixed-case names (iPhone, McKay) are not checked."""
    if any(c.isdigit() or c == "_" for c in word):
        return True
    letters = [c for c in word if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return True
    return any(c.isupper() for c in word[1:])


class Speller:
    """Which words of a text are misspelled, and what they might have been; every verdict cached."""

    def __init__(self, dictionary: Any, personal: PersonalWords) -> None:
        self.dictionary = dictionary
        self.personal = personal
        self.ignored: set[str] = set()
        self._known: dict[str, bool] = {}

    def known(self, word: str) -> bool:
        verdict = self._known.get(word)
        if verdict is None:
            verdict = self._look_up(word)
            self._known[word] = verdict
        return verdict

    def _look_up(self, word: str) -> bool:
        key = _key(word)
        if key in self.ignored or word in self.personal or key in self.dictionary:
            return True
        if key.endswith("'s"):  # a possessive: Holmes's, the writer's
            return self._look_up(word[:-2])
        return False

    def misspelled(self, text: str) -> Iterator[tuple[int, int]]:
        """(start, end) string indices of the misspelled words of `text`."""
        skip = [m.span() for m in _SKIP_RE.finditer(text)] if ("/" in text or "@" in text or "www." in text) else []
        for m in _WORD_RE.finditer(text):
            word = m.group()
            if _skipped(word) or self.known(word):
                continue
            a, b = m.span()
            if any(s < b and a < e for s, e in skip):
                continue
            yield a, b

    def suggestions(self, word: str) -> list[str]:
        """Up to MAX_SUGGESTIONS likely corrections, the most frequent first, in the word's capitalisation."""
        key = _key(word)
        found = self.dictionary.candidates(key) or set()
        found.discard(key)
        ranked = sorted(found, key=lambda w: (-self.dictionary.word_usage_frequency(w), w))[:MAX_SUGGESTIONS]
        if word[:1].isupper():
            ranked = [w[:1].upper() + w[1:] for w in ranked]
        return ranked

    def add(self, word: str) -> None:
        """Into the personal list (raises OSError when it cannot be written; the word is known anyway)."""
        self._known.clear()
        self.personal.add(word)

    def ignore(self, word: str) -> None:
        """Known until the window closes."""
        self.ignored.add(_key(word))
        self._known.clear()


def _u16_spans(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """String index spans as UTF-16 offsets, which is what Qt's text positions count."""
    if not spans or text.isascii() or max(text) <= "\uffff":
        return spans
    return [(u16len(text[:a]), u16len(text[:b])) for a, b in spans]


class Spelling(QObject):
    """The editor's spell checking: underlines, context menu entries and the on/off switch."""

    unavailable = Signal(str)  # said once: spell checking cannot work here
    message = Signal(str)  # a one-line notice for the status bar
    ready = Signal()  # the dictionary is loaded and the screen checked

    def __init__(self, editor: Editor, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._editor = editor
        self._enabled = False
        self._loading = False
        self._failed: str | None = None
        self._closed = False
        self.speller: Speller | None = None
        self._generation = 0  # block states below this are stale
        self._first, self._last = 0, 2 * MARGIN_BLOCKS
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._format = QTextCharFormat()
        self._format.setUnderlineStyle(QTextCharFormat.UnderlineStyle.SpellCheckUnderline)
        self._format.setUnderlineColor(_UNDERLINE)
        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(0)
        self._check_timer.timeout.connect(self.check_visible)
        editor.updateRequest.connect(lambda *_: self._check_timer.start())
        editor.set_spell_hook(self.underline, self.add_menu_entries)

    # --- switching on and off ------------------------------------------------------------
    def enabled(self) -> bool:
        return self._enabled

    def active(self) -> bool:
        """On, and its dictionary loaded."""
        return self._enabled and self.speller is not None

    def problem(self) -> str | None:
        return self._failed

    def set_enabled(self, on: bool) -> None:
        self._enabled = on
        if on and self.speller is None:
            self._load()
        self._redo()

    def _load(self) -> None:
        if self._loading or self._failed is not None:
            return
        self._loading = True
        run_in_pool(self._pool, load_dictionary, self._loaded, self._load_failed)

    def _loaded(self, dictionary: Any) -> None:
        self._loading = False
        if self._closed:
            return
        try:
            personal = PersonalWords(personal_path())
        except OSError as exc:  # no data folder: words added are kept for this session
            personal = PersonalWords(None)
            personal.problem = (f"Your word list cannot be kept ({exc.strerror or exc}); "
                                "words you add last this session.")
        self.speller = Speller(dictionary, personal)
        if personal.problem:
            self.message.emit(personal.problem)
        self._redo()
        self.ready.emit()

    def _load_failed(self, exc: BaseException) -> None:
        self._loading = False
        if self._closed:
            return
        self._failed = str(exc) if isinstance(exc, SpellingUnavailable) else (
            f"Spell checking is off: {type(exc).__name__}: {exc}")
        self.unavailable.emit(self._failed)

    def close(self) -> None:
        """Stop checking (the window is closing); a dictionary still loading is waited for, then dropped."""
        self._closed = True
        self._check_timer.stop()
        self._editor.set_spell_hook(None, None)
        self._pool.waitForDone(5000)

    # --- underlines ------------------------------------------------------------------------
    def _redo(self) -> None:
        """Everything checked so far is stale (switched, or the word list changed): check the screen again."""
        self._generation += 1
        self.check_visible()

    def _visible_blocks(self) -> tuple[int, int]:
        ed = self._editor
        block = ed.firstVisibleBlock()
        first = last = block.blockNumber()
        offset = ed.contentOffset()
        bottom = ed.viewport().height()
        while block.isValid() and ed.blockBoundingGeometry(block).translated(offset).top() <= bottom:
            last = block.blockNumber()
            block = block.next()
        return first, last

    def check_visible(self) -> None:
        """Format again the blocks on screen that were formatted off screen or before the last change."""
        if self._closed:
            return
        first, last = self._visible_blocks()
        self._first, self._last = first - MARGIN_BLOCKS, last + MARGIN_BLOCKS
        highlighter = self._editor.highlighter()
        block = self._editor.document().findBlockByNumber(max(0, self._first))
        while block.isValid() and block.blockNumber() <= self._last:
            if block.userState() != self._generation:
                highlighter.rehighlightBlock(block)
            block = block.next()

    def underline(self, highlighter: QSyntaxHighlighter, text: str) -> None:
        """Called by the editor's highlighter for each block it formats, after the tints."""
        block = highlighter.currentBlock()
        if not self._first <= block.blockNumber() <= self._last:
            highlighter.setCurrentBlockState(STALE)
            return
        highlighter.setCurrentBlockState(self._generation)
        if not self.active() or not text:
            return
        spans = _u16_spans(text, list(self.speller.misspelled(text)))  # type: ignore[union-attr]
        ghost = self._editor.ghost_span()
        b0 = block.position()
        for a, b in spans:
            if ghost is not None and ghost[0] < b0 + b and b0 + a < ghost[1]:
                continue  # a suggestion is not the writer's text
            for i in range(a, b):  # keep each character's tint, add the underline
                fmt = QTextCharFormat(highlighter.format(i))
                fmt.merge(self._format)
                highlighter.setFormat(i, 1, fmt)

    # --- the context menu ------------------------------------------------------------------
    def word_at(self, pos: int) -> tuple[int, int, str] | None:
        """(start, end, word) of the misspelled word at a document position, outside any suggestion."""
        if not self.active():
            return None
        doc = self._editor.document()
        block = doc.findBlock(pos)
        text = block.text()
        b0 = block.position()
        ghost = self._editor.ghost_span()
        for a, b in _u16_spans(text, list(self.speller.misspelled(text))):  # type: ignore[union-attr]
            if b0 + a <= pos <= b0 + b and not (ghost is not None and ghost[0] < b0 + b and b0 + a < ghost[1]):
                cur = QTextCursor(doc)
                cur.setPosition(b0 + a)
                cur.setPosition(b0 + b, QTextCursor.MoveMode.KeepAnchor)
                return b0 + a, b0 + b, cur.selectedText()
        return None

    def add_menu_entries(self, menu: QMenu, pos: int) -> None:
        """Suggestions, Add to Dictionary and Ignore for a misspelled word at `pos`, above the usual entries."""
        found = self.word_at(pos)
        if found is None:
            return
        start, end, word = found
        speller = self.speller
        assert speller is not None
        first = menu.actions()[0] if menu.actions() else None
        entries: list[QAction] = []
        for suggestion in speller.suggestions(word):
            act = QAction(suggestion, menu)
            act.triggered.connect(lambda _c=False, s=suggestion: self.replace(start, end, word, s))
            entries.append(act)
        if not entries:
            none = QAction("(no suggestions)", menu)
            none.setEnabled(False)
            entries.append(none)
        add = QAction(f"Add “{word}” to Dictionary", menu)
        add.triggered.connect(lambda _c=False: self.add_word(word))
        ignore = QAction(f"Ignore “{word}”", menu)
        ignore.triggered.connect(lambda _c=False: self.ignore_word(word))
        entries += [add, ignore]
        menu.insertActions(first, entries)  # type: ignore[arg-type]
        menu.insertSeparator(first)  # type: ignore[arg-type]

    def replace(self, start: int, end: int, word: str, suggestion: str) -> None:
        """Put a suggestion in place of the word (one undo step), if the word is still there."""
        cur = QTextCursor(self._editor.document())
        cur.setPosition(start)
        cur.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        if cur.selectedText() != word:
            return
        cur.beginEditBlock()
        cur.insertText(suggestion)
        cur.endEditBlock()

    def add_word(self, word: str) -> None:
        if self.speller is None:
            return
        try:
            self.speller.add(word)
        except OSError as exc:
            self.message.emit(f"“{word}” is known for this session, but {self.speller.personal.path} could not "
                              f"be written ({exc.strerror or exc}).")
        self._redo()

    def ignore_word(self, word: str) -> None:
        if self.speller is not None:
            self.speller.ignore(word)
            self._redo()
