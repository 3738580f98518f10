"""Document sessions: per-document settings, Memory, Author's note and generations, kept in the data folder.

A session lives in `user_dir()/sessions/<key>.json`, never beside the user's file; the key is a hash of the
document's absolute path. It records a fingerprint of the document's text as last saved with it, so that opening
a document tells whether its session is `ok`, the document was `changed-outside` the app, or it was `moved` (a
session of another path holds this very text). The GUI then offers to keep or drop it.

Size bound: per-token diagnostics (tints) are kept in full for the last MAX_TINTED_RUNS accepted generations, each
token stored as a short list with rounded numbers and at most MAX_ALTERNATIVES alternatives a side; older accepted
generations keep a compact tint per token (its text and JS, so the document keeps its colours, without the
probabilities and alternatives). If the file would still exceed MAX_FILE_BYTES, the oldest full tints are compacted
first, then the oldest tints go, then the oldest rejected generations, then the oldest generations; settings,
Memory and the Author's note are always kept.

An accepted generation also records where its tokens are (`spans`, str offsets into the document's text as last
saved with the session), so reopening the document puts its tints back; a token whose text no longer matches is
left untinted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from engine.context import DEFAULT_NOTE_DEPTH
from engine.phrase_rules import PhraseRuleError, PhraseRules
from engine.types import DEFAULT_BUDGET_BITS, DEFAULT_LAM, DEFAULT_MODE, SamplingConfig, TokenStep
from styles.paths import user_dir

FORMAT = 1
MAX_TINTED_RUNS = 50
MAX_ALTERNATIVES = 3
MAX_FILE_BYTES = 4 * 2**20
Status = Literal["new", "ok", "moved", "changed-outside"]

# One token of an accepted run: [text, js_bits, p_base, p_steered, top_base, top_steered], each top a list of
# [text, probability]; compacted, [text, js_bits]. Lists, not objects, keep a 96-token run near 10 KB (compact: 2 KB).
TokenTint = list[Any]


class SessionWriteError(Exception):
    """A session could not be saved (read-only or full data folder); the message is meant for the user."""


@dataclass
class Generation:
    """One continuation the model wrote for the document, accepted into it or not."""

    time: str  # ISO 8601, UTC
    seed: int | None
    context_tokens: int
    context_start_char: int
    new_tokens: int
    text: str
    accepted: bool
    tints: list[TokenTint] | None = None  # per-token diagnostics of the accepted span
    spans: list[list[int]] | None = None  # [start, end) of each tint in the document as last saved, when known
    settings: dict[str, Any] | None = None  # what it was generated with: style, lam, mode, budget, sampling

    def public(self) -> dict[str, Any]:
        return {"time": self.time, "seed": self.seed, "context_tokens": self.context_tokens,
                "context_start_char": self.context_start_char, "new_tokens": self.new_tokens,
                "text": self.text, "accepted": self.accepted}


@dataclass
class DocumentSession:
    """What the app remembers about one document between openings."""

    document: str  # absolute path
    fingerprint: str = ""  # of the text as last saved with this session ("" when never given)
    style: str | None = None
    lam: float = DEFAULT_LAM
    mode: str = DEFAULT_MODE
    budget: float = DEFAULT_BUDGET_BITS
    sampling: dict[str, Any] = field(default_factory=dict)
    memory: str = ""
    authors_note: str = ""
    note_depth: int = DEFAULT_NOTE_DEPTH
    phrases: dict[str, Any] = field(default_factory=dict)  # this document's banned phrases and biases (PhraseRules)
    generations: list[Generation] = field(default_factory=list)

    def add_generation(self, steps: Iterable[TokenStep], *, seed: int | None, context_tokens: int,
                       context_start_char: int, accepted_steps: Iterable[TokenStep] = (),
                       when: datetime | None = None, settings: dict[str, Any] | None = None) -> Generation:
        """Record one continuation: `steps` all it wrote, `accepted_steps` the part taken into the document,
        `settings` what it was generated with (see `generation_settings`)."""
        steps, kept = list(steps), list(accepted_steps)
        gen = Generation(time=(when or datetime.now(timezone.utc)).isoformat(timespec="seconds"), seed=seed,
                         context_tokens=context_tokens, context_start_char=context_start_char,
                         new_tokens=len(steps), text="".join(s.text for s in steps), accepted=bool(kept),
                         tints=[tint(s) for s in kept] or None, settings=settings)
        self.generations.append(gen)
        return gen

    def sampling_config(self) -> SamplingConfig:
        """The stored sampling settings over the defaults (unknown keys from other versions are ignored)."""
        known = {f.name for f in fields(SamplingConfig)}
        return SamplingConfig(**{k: v for k, v in self.sampling.items() if k in known})

    def set_sampling(self, config: SamplingConfig) -> None:
        self.sampling = asdict(config)

    def phrase_rules(self) -> PhraseRules | None:
        """This document's own banned phrases and biases; None when it has none (or they cannot be read)."""
        if not self.phrases:
            return None
        try:
            rules = PhraseRules.from_json(self.phrases)
        except PhraseRuleError:
            return None
        return None if rules.empty else rules

    def set_phrase_rules(self, rules: PhraseRules | None) -> None:
        self.phrases = {} if rules is None or rules.empty else rules.to_json()

    def to_public_json(self) -> dict[str, Any]:
        """The shape `stylesteer session show FILE --json` prints."""
        return {"document": self.document, "style": self.style, "lam": self.lam, "mode": self.mode,
                "budget": self.budget, "memory": self.memory, "authors_note": self.authors_note,
                "generations": [g.public() for g in self.generations]}

    def to_json(self) -> dict[str, Any]:
        """The stored form. Shallow: it shares the tints' lists, which `asdict` would deep-copy (seconds for a
        session near the size bound)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["generations"] = [{f.name: getattr(g, f.name) for f in fields(g)} for g in self.generations]
        d["sampling"] = dict(self.sampling)
        d["format"] = FORMAT
        return d

    @classmethod
    def from_json(cls, d: Any) -> DocumentSession:
        """Raises ValueError (or TypeError) for anything that is not a session this version wrote."""
        if not isinstance(d, dict) or d.get("format") != FORMAT or not isinstance(d.get("document"), str):
            raise ValueError("not a document session of this version")
        gens = [Generation(**g) for g in d.get("generations", [])]
        stored = {k: d[k] for k in ("fingerprint", "style", "lam", "mode", "budget", "sampling", "memory",
                                    "authors_note", "note_depth", "phrases") if k in d}
        session = cls(document=d["document"], generations=gens, **stored)
        _check_types(session)
        return session


@dataclass
class Opened:
    """A document's session as found on opening it, with what the GUI should ask about."""

    session: DocumentSession  # a fresh one for status "new"; for "moved", the session found at `moved_from`
    status: Status
    notice: str | None = None  # a damaged session file was set aside
    moved_from: str | None = None


def tint(step: TokenStep) -> TokenTint:
    """The compact stored form of one token's diagnostics."""
    def top(alts: list[tuple[int, str, float]]) -> list[list[Any]]:
        return [[text, round(p, 4)] for _, text, p in alts[:MAX_ALTERNATIVES]]
    return [step.text, round(step.js_bits, 4), round(step.p_base, 4), round(step.p_steered, 4),
            top(step.top_base), top(step.top_steered)]


def generation_settings(style: str | None, lam: float, mode: str, budget: float,
                        sampling: SamplingConfig) -> dict[str, Any]:
    """The settings one generation records."""
    return {"style": style, "lam": lam, "mode": mode, "budget": budget, "sampling": asdict(sampling)}


def compact(t: TokenTint) -> TokenTint:
    """A tint reduced to what colours the text: [text, js_bits]."""
    return t[:2]


def step_from_tint(t: TokenTint, index: int = 0) -> TokenStep:
    """A TokenStep for the inspector and the tints from a stored tint (full or compact); token ids are not kept."""
    text, js = str(t[0]), float(t[1])
    full = len(t) >= 6
    p_base, p_steered = (float(t[2]), float(t[3])) if full else (float("nan"), float("nan"))

    def alts(top: Any) -> list[tuple[int, str, float]]:
        return [(-1, str(a), float(p)) for a, p in top] if full else []

    return TokenStep(side="steered", step=index, token_id=-1, text=text, p_base=p_base, p_steered=p_steered,
                     js_bits=js, lam=float("nan"), top_base=alts(t[4] if full else None),
                     top_steered=alts(t[5] if full else None))


def fingerprint(text: str) -> str:
    """Of the document's text, line endings normalised so that saving with CRLF is not a change."""
    normal = text.replace("\r\n", "\n").encode("utf-8", "surrogatepass")
    return hashlib.sha256(normal).hexdigest()


def sessions_dir() -> Path:
    return user_dir() / "sessions"


def document_key(document: str | os.PathLike[str]) -> str:
    absolute = os.path.normcase(os.path.abspath(os.path.expanduser(os.fspath(document))))
    return hashlib.sha256(absolute.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def session_path(document: str | os.PathLike[str]) -> Path:
    return sessions_dir() / f"{document_key(document)}.json"


def _absolute(document: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(document)))


def load(document: str | os.PathLike[str]) -> tuple[DocumentSession | None, str | None]:
    """(the document's session or None, a notice when a damaged session file was set aside)."""
    try:
        path = session_path(document)
        # A file far over the bound was not written by save(): set it aside unread.
        raw = path.read_bytes() if path.stat().st_size <= 4 * MAX_FILE_BYTES else b""
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"the saved session of {_absolute(document)} cannot be read ({exc.strerror or exc}); " \
                     f"starting afresh"
    try:
        return DocumentSession.from_json(json.loads(raw)), None
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        return None, _set_aside(path, _absolute(document))


def _set_aside(path: Path, document: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.stem}.damaged-{stamp}.json")
    try:
        os.replace(path, aside)
    except OSError:
        return f"the saved session of {document} is damaged and was ignored; starting afresh"
    return f"the saved session of {document} was damaged; it was set aside as {aside.name}, starting afresh"


def open_document(document: str | os.PathLike[str], text: str) -> Opened:
    """The session for `document` as just opened with `text`, and whether it still matches."""
    absolute = _absolute(document)
    found, notice = load(absolute)
    fp = fingerprint(text)
    if found is not None:
        status: Status = "ok" if found.fingerprint in ("", fp) else "changed-outside"
        found.document = absolute
        return Opened(found, status, notice)
    moved = _find_by_fingerprint(fp, absolute)
    if moved is not None:
        return Opened(moved, "moved", notice, moved_from=moved.document)
    return Opened(DocumentSession(document=absolute, fingerprint=fp), "new", notice)


def _find_by_fingerprint(fp: str, exclude: str) -> DocumentSession | None:
    """A session of another path whose document is gone and whose last saved text is `fp` (newest first)."""
    try:
        folder = sessions_dir()
    except OSError:  # no data folder, and none can be made: there are no sessions to find
        return None
    if not folder.is_dir():
        return None
    files = sorted(folder.glob("*.json"), key=_mtime, reverse=True)
    for path in files:
        if ".damaged-" in path.name:
            continue
        try:
            if path.stat().st_size > 4 * MAX_FILE_BYTES:
                continue
            session = DocumentSession.from_json(json.loads(path.read_bytes()))
        except (OSError, ValueError, TypeError, UnicodeDecodeError, RecursionError):
            continue
        if session.fingerprint == fp and session.document != exclude and not os.path.exists(session.document):
            return session
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def keep_moved(opened: Opened, document: str | os.PathLike[str]) -> DocumentSession:
    """Take a moved document's session over to its new path (the old path's file is removed)."""
    if opened.moved_from is None:
        raise ValueError("keep_moved is for an Opened whose status is 'moved'")
    opened.session.document = _absolute(document)
    save(opened.session)
    clear(opened.moved_from)
    opened.moved_from, opened.status = None, "ok"
    return opened.session


def save(session: DocumentSession, text: str | None = None) -> Path:
    """Write the session atomically (temp file, fsync, rename); `text`, when given, updates the fingerprint.

    Raises SessionWriteError when the data folder cannot be written.
    """
    if text is not None:
        session.fingerprint = fingerprint(text)
    session.document = _absolute(session.document)
    data = encode(session)
    try:
        path = session_path(session.document)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, data)
    except OSError as exc:
        raise SessionWriteError(f"cannot save the session of {session.document} in {_where()}: "
                                f"{exc.strerror or exc}") from exc
    return path


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; the rename is durable enough there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def encode(session: DocumentSession, limit: int = MAX_FILE_BYTES) -> bytes:
    """The session as stored, trimmed to the size bound (see the module's docstring); trims `session` itself."""
    _keep_recent_tints(session.generations, MAX_TINTED_RUNS)
    data = _dump(session)
    while len(data) > limit and _trim_once(session.generations):
        data = _dump(session)
    return data


def _dump(session: DocumentSession) -> bytes:
    return json.dumps(session.to_json(), ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def _keep_recent_tints(gens: list[Generation], runs: int) -> None:
    """Compact the tints of all but the last `runs` tinted generations."""
    tinted = [g for g in gens if g.tints]
    for g in tinted[:max(0, len(tinted) - runs)]:
        g.tints = [compact(t) for t in g.tints or ()]


def _drop_old_tints(gens: list[Generation], keep: int) -> None:
    tinted = [g for g in gens if g.tints]
    for g in tinted[:max(0, len(tinted) - keep)]:
        g.tints = g.spans = None


def _trim_once(gens: list[Generation]) -> bool:
    """Drop a share of the least useful stored data; False when nothing is left to drop."""
    full = [g for g in gens if g.tints and any(len(t) > 2 for t in g.tints)]
    if full:
        _keep_recent_tints(gens, len(full) // 2)
        return True
    tinted = [g for g in gens if g.tints]
    if tinted:
        _drop_old_tints(gens, len(tinted) // 2)
        return True
    rejected = [i for i, g in enumerate(gens) if not g.accepted]
    if rejected:
        for i in reversed(rejected[:max(1, len(rejected) // 2)]):
            del gens[i]
        return True
    if gens:
        del gens[:max(1, len(gens) // 2)]
        return True
    return False


def clear(document: str | os.PathLike[str]) -> bool:
    """Remove the document's session; True when there was one. Raises SessionWriteError when it cannot."""
    try:
        session_path(document).unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise SessionWriteError(f"cannot remove the session of {_absolute(document)}: {exc.strerror or exc}") from exc
    return True


def _where() -> str:
    """The sessions folder for a message, even when the data folder cannot be made."""
    try:
        return str(sessions_dir())
    except OSError as exc:
        return str(exc.filename or "the data folder")


def _check_types(session: DocumentSession) -> None:
    checks = ((session.fingerprint, str), (session.lam, (int, float)), (session.mode, str),
              (session.budget, (int, float)), (session.sampling, dict), (session.memory, str),
              (session.authors_note, str), (session.note_depth, int), (session.phrases, dict))
    if any(not isinstance(value, kind) for value, kind in checks) or not isinstance(session.style, (str, type(None))):
        raise ValueError("a session field has the wrong type")
    for g in session.generations:
        if not isinstance(g.text, str) or not isinstance(g.accepted, bool) or not isinstance(g.new_tokens, int):
            raise ValueError("a generation field has the wrong type")
        if g.tints is not None and not (isinstance(g.tints, list) and all(
                isinstance(t, list) and len(t) >= 2 and isinstance(t[0], str) and isinstance(t[1], (int, float))
                for t in g.tints)):
            raise ValueError("a generation's tints have the wrong shape")
        if g.settings is not None and not isinstance(g.settings, dict):
            raise ValueError("a generation's settings have the wrong type")
        if g.spans is not None and not (isinstance(g.spans, list) and g.tints is not None
                                        and len(g.spans) == len(g.tints) and all(
                isinstance(sp, list) and len(sp) == 2 and all(isinstance(x, int) for x in sp) for sp in g.spans)):
            raise ValueError("a generation's spans have the wrong shape")

