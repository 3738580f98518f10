"""The open document's session: its settings, Memory and note restored on opening, its generations recorded.

A session (engine.session) lives in the data folder, never beside the document. Opening a document restores its
style, λ, mode, budget, sampling, Memory and Author's note, and the tints of the accepted spans saved with it;
a session whose document was moved or changed outside the app is offered to keep or drop. Every suggestion is
recorded when it ends (accepted, partly or wholly, or not); where its accepted tokens are is written when the
document is saved, since only then does the file hold them. An untitled document's session lives in memory until
its first save.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QMessageBox, QStatusBar, QWidget

from app.gui.controls import SteeringControls
from app.gui.editor import Editor
from app.gui.session_panel import SessionPanel
from app.gui.style_panel import StylePanel
from engine import session as sessions
from engine.context import DEFAULT_NOTE_DEPTH
from engine.session import DocumentSession, Generation, SessionWriteError, TokenTint
from engine.types import SamplingConfig, TokenStep

SAVE_DELAY_MS = 800  # settings typed or dragged are written once they settle


class Host(Protocol):
    """What the keeper needs from its window."""

    editor: Editor
    controls: SteeringControls
    styles: StylePanel
    session_panel: SessionPanel
    interactive: bool
    errors: list[str]
    worker: Any

    def statusBar(self) -> QStatusBar: ...  # Qt's name
    def show_error(self, message: str, details: str = "", title: str = "StyleSteer") -> None: ...


@dataclass
class _Pending:
    """A suggestion on screen: what it was generated from, and what of it was accepted so far."""

    seed: int | None
    context_tokens: int
    context_start_char: int
    epoch: int  # the editor's text generation it belongs to
    settings: dict[str, Any]
    steps: list[TokenStep] = field(default_factory=list)
    accepted: list[TokenStep] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)  # the editor's accepted runs it made


class SessionKeeper(QObject):
    """Binds the window's document to its session; `ask(question)` decides keep (True) or drop (False)."""

    def __init__(self, host: Host, parent: QWidget) -> None:
        super().__init__(parent)
        self.host = host
        self.widget = parent
        self.editor = host.editor
        self.session = DocumentSession(document="")
        self.path: Path | None = None  # the document the session is bound to (None: untitled, kept in memory)
        self.questions: list[str] = []  # what was asked (tests read it)
        self.ask: Callable[[str], bool] = self._ask
        self._epoch = 0
        self._run_gen: dict[int, Generation] = {}  # editor run index -> the generation it came from
        # id(step) -> (step, its stored tint): rounding 30,000 tokens' diagnostics again at every save takes long
        self._tints: dict[int, tuple[TokenStep, TokenTint]] = {}
        self._pending: _Pending | None = None
        self._closing: _Pending | None = None
        # id(first step) -> its recorded generation, so that a suggestion brought back (Alt+[ / Alt+]) and then
        # accepted is marked on the generation it came from
        self._gen_of_steps: dict[int, Generation] = {}
        self._shown: Generation | None = None
        self._applying = False
        self._dirty = False
        self._write_problem: str | None = None
        self.save_timer = QTimer(self)
        self.save_timer.setSingleShot(True)
        self.save_timer.setInterval(SAVE_DELAY_MS)
        self.save_timer.timeout.connect(self.flush)
        host.controls.changed.connect(self._settings_changed)
        host.styles.activeStyleChanged.connect(self._settings_changed)
        host.session_panel.changed.connect(self._settings_changed)
        self.editor.ghostChanged.connect(self._ghost_changed)
        self.editor.ghostAccepted.connect(self._accepted)

    # --- what generation needs -------------------------------------------------------------
    def context_options(self) -> tuple[str, str, int]:
        """(memory, authors_note, note_depth) for assembling the context, as shown in the panel."""
        return self.host.session_panel.values()

    def generation_started(self, context: Any, sampling: SamplingConfig) -> None:
        """A suggestion is being streamed from `context` (engine.context.AssembledContext) with `sampling`."""
        if self._pending is not None:  # a reroll inside a suggestion: the earlier stream ends here
            self._record(self._pending)
        self._shown = None
        v = self.host.controls.values()
        settings = sessions.generation_settings(self.host.styles.active(), v.lam, v.mode, v.budget_bits, sampling)
        self._pending = _Pending(sampling.seed, context.token_count, context.context_start_char, self._epoch,
                                 settings)

    def tokens(self, steps: list[TokenStep | None]) -> None:
        if self._pending is not None:
            self._pending.steps.extend(s for s in steps if s is not None)

    def suggestion_shown(self, steps: tuple[TokenStep | None, ...]) -> None:
        """An earlier suggestion is on screen again (generation history): accepting it marks its generation."""
        first = next((s for s in steps if s is not None), None)
        self._shown = None if first is None else self._gen_of_steps.get(id(first))

    def _accepted(self, text: str) -> None:
        target = self._pending or self._closing
        runs = self.editor.accepted_runs()
        if target is None and self._shown is not None and text and runs:
            self._run_gen[len(runs) - 1] = self._shown
            self._shown.accepted = True
            self._changed()
            return
        if text and target is not None and runs and target.epoch == self._epoch:
            target.runs.append(len(runs) - 1)
            target.accepted.extend(s for s in runs[-1][1] if s is not None)

    def _ghost_changed(self, showing: bool) -> None:
        if showing or self._pending is None:
            return
        # Accepting all of a suggestion says "gone" before "accepted": the record waits for the event loop.
        self._closing, self._pending = self._pending, None
        QTimer.singleShot(0, self._finish_closing)

    def _finish_closing(self) -> None:
        closing, self._closing = self._closing, None
        if closing is not None:
            self._record(closing)

    def _record(self, p: _Pending) -> None:
        gen = self.session.add_generation(p.steps, seed=p.seed, context_tokens=p.context_tokens,
                                          context_start_char=p.context_start_char, accepted_steps=p.accepted,
                                          settings=p.settings)
        if p.epoch == self._epoch:
            for run in p.runs:
                self._run_gen[run] = gen
            if p.steps:
                self._gen_of_steps[id(p.steps[0])] = gen
        self._changed()

    # --- settings -----------------------------------------------------------------------------
    def _settings_changed(self, *_args: object) -> None:
        if not self._applying:
            self._changed()

    def _changed(self) -> None:
        self._dirty = True
        if self.path is not None:
            self.save_timer.start()

    def _capture(self) -> None:
        """The window's current settings into the session."""
        s, v = self.session, self.host.controls.values()
        s.style = self.host.styles.active()
        s.lam, s.mode, s.budget = v.lam, v.mode, v.budget_bits
        s.set_sampling(self.host.controls.sampling())
        s.memory, s.authors_note, s.note_depth = self.host.session_panel.values()
        s.set_phrase_rules(self.host.controls.document_rules)

    def _apply(self, s: DocumentSession) -> None:
        """Show a session's settings in the window."""
        self._applying = True
        try:
            v = self.host.controls.values()
            if s.sampling:
                c: SamplingConfig = s.sampling_config()
                # Only what a session holds: the window's own settings (the context limit) stay as they are.
                v = replace(v, greedy=c.greedy, temperature=c.temperature, top_p=c.top_p, top_k=c.top_k,
                            repetition_penalty=c.repetition_penalty, seed=-1 if c.seed is None else c.seed,
                            max_new_tokens=c.max_new_tokens)
            v.lam, v.mode, v.budget_bits = s.lam, s.mode, s.budget
            self.host.controls.set_values(v)
            self.host.session_panel.set_values(s.memory, s.authors_note, s.note_depth)
            self.host.controls.document_rules = s.phrase_rules()
        finally:
            self._applying = False
        self._apply_style(s.style)

    def _forget_document_settings(self) -> None:
        self._applying = True
        try:
            self.host.session_panel.set_values("", "", DEFAULT_NOTE_DEPTH)
            self.host.controls.document_rules = None
        finally:
            self._applying = False

    def document_rules_changed(self) -> None:
        """The document's own banned phrases and biases were edited: kept in its session."""
        self._changed()

    def _apply_style(self, name: str | None) -> None:
        styles = self.host.styles
        if name is None:
            self._applying = True
            try:
                styles.set_active(None)
            finally:
                self._applying = False
            return

        def when_listed(_names: object = None) -> None:
            if self.session.style != name:  # the document changed meanwhile
                return
            if styles.is_usable(name):
                self._applying = True
                try:
                    styles.set_active(name)
                finally:
                    self._applying = False
            else:
                self.host.statusBar().showMessage(
                    f"This document was written with the style “{name}”, which is not in the library.", 10000)

        self.host.worker.list_styles(on_done=when_listed)

    # --- the document's life -----------------------------------------------------------------------
    def document_replaced(self, path: Path | None, on_disk: str | None = None) -> None:
        """The editor now holds a new, opened or recovered document: bind to its session.

        `on_disk` is the file's text, which the session is checked against (a recovered draft is not the file)."""
        self._finish_closing()
        if self._pending is not None:
            self._record(self._pending)
            self._pending = None
        self.flush()
        self._epoch += 1
        self._run_gen = {}
        self._tints = {}
        self._gen_of_steps, self._shown = {}, None
        self._dirty = False
        self.path = path
        if path is None:
            self.session = DocumentSession(document="")
            self._forget_document_settings()
            return
        shown = self.editor.text()
        text = shown if on_disk is None else on_disk
        opened = sessions.open_document(path, text)
        if opened.notice:
            self.host.show_error(opened.notice[:1].upper() + opened.notice[1:] + ".", title="Document session")
        session, fresh, rebase = opened.session, opened.status == "new", False
        if opened.status == "moved":
            question = (f"{path.name} has the text of {opened.moved_from}, which is gone: was it moved here? "
                        f"Keep its session (Memory, Author's note, settings, tints)?")
            if self._keep(question):
                session = self._write(lambda: sessions.keep_moved(opened, path)) or opened.session
                session.document = str(path)
            else:
                self._write(lambda: sessions.clear(opened.moved_from or ""))
                session, fresh = DocumentSession(document=str(path), fingerprint=sessions.fingerprint(text)), True
        elif opened.status == "changed-outside":
            question = (f"{path.name} was changed outside StyleSteer since its session was saved. Keep the session "
                        f"(Memory, Author's note, settings, the tints whose text is unchanged)?")
            if self._keep(question):
                rebase = True
            else:
                self._write(lambda: sessions.clear(path))
                session, fresh = DocumentSession(document=str(path), fingerprint=sessions.fingerprint(text)), True
        self.session = session
        if fresh:
            # A new session starts from the window's steering and sampling; Memory, the Author's note and the
            # phrase lists belong to a document, so they start empty.
            self._forget_document_settings()
            self._capture()
            return
        self._apply(session)
        self._restore_tints(shown)
        if rebase:  # the file as it is now becomes the session's reference, with its tints where they are now
            if shown == text:
                self._sync_spans()
            self._write(lambda: sessions.save(self.session, text))

    def _keep(self, question: str) -> bool:
        self.questions.append(question)
        return self.ask(question)

    def _ask(self, question: str) -> bool:
        if not self.host.interactive:
            return True
        box = QMessageBox(QMessageBox.Icon.Question, "Document session", question, parent=self.widget)
        keep = box.addButton("Keep", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Drop", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(keep)
        box.exec()
        return box.clickedButton() is keep

    def _restore_tints(self, text: str) -> None:
        """Tint the accepted spans saved with the session whose text is still there."""
        u16 = _Utf16(text)
        runs: list[tuple[list[list[int]], list[TokenStep | None]]] = []
        gens: list[Generation] = []
        for gen in self.session.generations:
            if not gen.tints or not gen.spans:
                continue
            spans: list[list[int]] = []
            steps: list[TokenStep | None] = []
            for i, (t, (a, b)) in enumerate(zip(gen.tints, gen.spans, strict=True)):
                if 0 <= a < b <= len(text) and text[a:b] == t[0]:
                    spans.append([u16.from_str(a), u16.from_str(b)])
                    step = sessions.step_from_tint(t, i)
                    self._tints[id(step)] = (step, t)
                    steps.append(step)
            if spans:
                runs.append((spans, steps))
                gens.append(gen)
        for run, gen in zip(self.editor.restore_runs(runs), gens, strict=True):
            self._run_gen[run] = gen

    def document_saved(self, path: Path) -> None:
        """The document was written to `path`: the session follows it, with where its accepted tokens are now."""
        self._finish_closing()
        self.path = path
        self.session.document = str(path)
        self._sync_spans()
        self._capture()
        self._write(lambda: sessions.save(self.session, self.editor.text()))
        self._dirty = False

    def _sync_spans(self) -> None:
        """Each accepted generation's tints and spans from the editor's runs as they are now."""
        full = self.editor.full_text()
        u16 = _Utf16(full)
        ghost = self.editor.ghost_span()
        runs = self.editor.accepted_runs()
        by_gen: dict[int, tuple[Generation, list[TokenTint], list[list[int]]]] = {}
        for run, gen in self._run_gen.items():
            if run >= len(runs):
                continue
            _, tints, spans = by_gen.setdefault(id(gen), (gen, [], []))
            for (a, b), step in zip(*runs[run], strict=True):
                if step is not None:
                    tints.append(self._tint(step))
                    spans.append([_without_ghost(u16.to_str(a), ghost, u16), _without_ghost(u16.to_str(b), ghost, u16)])
        for gen, tints, spans in by_gen.values():
            order = sorted(range(len(spans)), key=lambda i: spans[i][0])
            gen.tints = [tints[i] for i in order] or None
            gen.spans = [spans[i] for i in order] or None

    def flush(self) -> None:
        """Write the session now if anything changed (a bound document only)."""
        self.save_timer.stop()
        if not self._dirty or self.path is None:
            return
        self._capture()
        if self._write(lambda: sessions.save(self.session)) is not None:
            self._dirty = False

    def close(self) -> None:
        """The window closes: a suggestion still showing is recorded, and the session written."""
        self._finish_closing()
        if self._pending is not None:
            self._record(self._pending)
            self._pending = None
        self.flush()

    def _write(self, action: Callable[[], Any]) -> Any:
        """Run a session write; a failure is said once (the document itself is never at stake)."""
        try:
            result = action()
        except SessionWriteError as exc:
            message = f"The document's session was not saved: {exc}."
            if message != self._write_problem:
                self._write_problem = message
                self.host.statusBar().showMessage(message, 10000)
                self.host.errors.append(message)
            return None
        self._write_problem = None
        return True if result is None else result


    def _tint(self, step: TokenStep) -> TokenTint:
        cached = self._tints.get(id(step))
        if cached is not None and cached[0] is step:
            return cached[1]
        t = _stored_tint(step)
        self._tints[id(step)] = (step, t)
        return t


def _stored_tint(step: TokenStep) -> TokenTint:
    """A token's tint as stored: compact when its probabilities were not kept (an old, compacted run)."""
    if math.isnan(step.p_base) or not (step.top_base or step.top_steered):
        return sessions.compact(sessions.tint(step))
    return sessions.tint(step)


def _without_ghost(pos: int, ghost: tuple[int, int] | None, u16: _Utf16) -> int:
    """A str offset in the text with the suggestion taken out (positions after it move back)."""
    if ghost is None:
        return pos
    start, end = u16.to_str(ghost[0]), u16.to_str(ghost[1])
    return pos - (end - start) if pos >= end else pos


class _Utf16:
    """Offsets between Python str indices and Qt's UTF-16 positions of one text."""

    def __init__(self, text: str) -> None:
        plain = text.isascii() or len(text.encode("utf-16-le")) == 2 * len(text)
        astral = [] if plain else [i for i, ch in enumerate(text) if ord(ch) > 0xFFFF]
        self._str_pos = astral  # str index of each character outside the BMP
        self._u16_pos = [i + k for k, i in enumerate(astral)]  # ... and its UTF-16 position

    def from_str(self, i: int) -> int:
        return i + bisect.bisect_left(self._str_pos, i)

    def to_str(self, u: int) -> int:
        return u - bisect.bisect_left(self._u16_pos, u)
