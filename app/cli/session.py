"""`stylesteer session show|clear FILE`, and `generate --document FILE`: a document's session from the command line.

`generate --document` builds the context as the editor does (engine.context.assemble_for_model with the Memory,
Author's note and note depth of the document's session) and records the generation in that session, not accepted:
the document itself is never written.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.cli.common import UserError, say


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("session", help="show or clear a document's session (Memory, note, settings, generations)",
                       description="A document's session lives in the data folder, never beside the document.")
    ss = p.add_subparsers(dest="session_command", metavar="ACTION")
    show = ss.add_parser("show", help="print a document's session")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--json", action="store_true", help="print it as one JSON object")
    show.set_defaults(func=cmd_show)
    clear = ss.add_parser("clear", help="forget a document's session (the document is not touched)")
    clear.add_argument("file", metavar="FILE")
    clear.set_defaults(func=cmd_clear)

    def usage(_args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=usage)


def cmd_show(args: argparse.Namespace) -> int:
    from engine import session as sessions

    found, notice = sessions.load(args.file)
    if notice:
        say(notice)
    if found is None:
        raise UserError(f"{args.file} has no session (the app or `generate --document` makes one)")
    if args.json:
        print(json.dumps(found.to_public_json(), ensure_ascii=False, indent=2))
        return 0
    out = sys.stdout
    out.write(f"document     {found.document}\n")
    out.write(f"style        {found.style or '(none)'}\n")
    out.write(f"steering     {found.mode}, λ = {found.lam:g}, budget {found.budget:g} bits\n")
    out.write(f"memory       {_one_line(found.memory) or '(none)'}\n")
    out.write(f"note         {_one_line(found.authors_note) or '(none)'} ({found.note_depth} paragraphs up)\n")
    out.write(f"generations  {len(found.generations)}\n")
    for g in found.generations:
        mark = "accepted" if g.accepted else "not accepted"
        out.write(f"  {g.time}  seed {g.seed}  context {g.context_tokens} tokens from char {g.context_start_char}"
                  f"  {g.new_tokens} new, {mark}: {_one_line(g.text, 60)}\n")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    from engine import session as sessions

    try:
        removed = sessions.clear(args.file)
    except sessions.SessionWriteError as exc:
        raise UserError(str(exc)) from None
    print(f"cleared the session of {args.file}" if removed else f"{args.file} had no session")
    return 0


def _one_line(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"


def add_document_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--document", metavar="FILE", default=None,
                   help="continue this document at --cursor, with the Memory and Author's note of its session, "
                        "as the app does (instead of PROMPT); the generation is recorded in its session")
    p.add_argument("--cursor", metavar="N", type=int, default=None,
                   help="with --document: the character offset to continue at (default: the end)")
    p.add_argument("--context-limit", metavar="TOKENS", type=int, default=0,
                   help="with --document: the most tokens the context may use, new tokens included, like the app's "
                        "setting (default 0: the model's window)")
    # Steering options left out take the document's session's values with --document (as the app would steer
    # it), else the usual defaults: see fill_steering.
    p.set_defaults(lam=None, mode=None, budget=None)


def fill_steering(args: argparse.Namespace, session: Any = None) -> None:
    """--style, --lam, --mode and --budget not given: the session's values, else the defaults."""
    from engine.types import DEFAULT_BUDGET_BITS, DEFAULT_LAM, DEFAULT_MODE

    taken = []
    for name, default in (("style", None), ("lam", DEFAULT_LAM), ("mode", DEFAULT_MODE),
                          ("budget", DEFAULT_BUDGET_BITS)):
        if getattr(args, name) is None:
            stored = getattr(session, name) if session is not None else None
            setattr(args, name, default if stored is None else stored)
            if stored is not None:
                taken.append(f"--{name} {stored}")
    if taken:
        say(f"from the document's session: {' '.join(taken)}")


@dataclass
class DocumentRun:
    """One `generate --document` run: the document's text and session, the context, the record."""

    path: Path
    text: str
    cursor: int
    session: Any  # engine.session.DocumentSession
    context: Any = None  # engine.context.AssembledContext
    context_limit: int = 0  # --context-limit: 0 for the model's window

    @classmethod
    def open(cls, args: argparse.Namespace) -> DocumentRun | None:
        """The document named by --document, read as the app reads it; None without --document."""
        if args.context_limit < 0:
            raise UserError(f"--context-limit must be 0 (the model's window) or more tokens, got {args.context_limit}")
        if args.document is None:
            if args.cursor is not None or args.context_limit:
                raise UserError("--cursor and --context-limit go with --document")
            fill_steering(args)
            return None
        if args.prompt is not None:
            raise UserError("give either PROMPT or --document, not both")
        if args.compare:
            raise UserError("--document makes one continuation; --compare works on a PROMPT")
        from engine import session as sessions
        from styles.readers import ReadError, decode_document

        path = Path(args.document)
        try:
            text = decode_document(path.read_bytes()).text
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
        except ReadError as exc:
            raise UserError(f"cannot read {path}: {exc}") from None
        cursor = len(text) if args.cursor is None else args.cursor
        if not 0 <= cursor <= len(text):
            raise UserError(f"--cursor must be between 0 and {len(text)} (the document's length in characters), "
                            f"got {cursor}")
        opened = sessions.open_document(path, text)
        if opened.notice:
            say(opened.notice)
        session = opened.session
        if opened.status == "moved":
            say(f"a session of this text was made for {opened.moved_from}; open the document in the app to keep it")
            session = sessions.DocumentSession(document=str(path.resolve()), fingerprint=sessions.fingerprint(text))
        elif opened.status == "changed-outside":
            say(f"{path} changed since its session was saved; using its Memory and Author's note")
        fill_steering(args, session if opened.status in ("ok", "changed-outside") else None)
        return cls(path, text, cursor, session, context_limit=args.context_limit)

    def assemble(self, lm: Any, max_new_tokens: int) -> str:
        """The prompt, as the editor builds it; says when the document was cut."""
        from engine.context import ContextError, assemble_for_model

        s = self.session
        try:
            self.context = assemble_for_model(lm, self.text, self.cursor, max_new_tokens, memory=s.memory,
                                              authors_note=s.authors_note, note_depth=s.note_depth,
                                              context_limit=self.context_limit)
        except ContextError as exc:
            raise UserError(str(exc)) from None
        if self.context.notice:
            say(self.context.notice)
        if not self.context.prompt.strip():
            raise UserError(f"nothing to continue: {self.path} is empty before the cursor and its session has no "
                            f"Memory")
        return str(self.context.prompt)

    def record(self, summary: Any, args: argparse.Namespace, sampling: Any) -> dict[str, int]:
        """Keep the generation in the document's session (never accepted: the file is not written); what the
        JSON summary adds."""
        from datetime import datetime, timezone

        from engine import session as sessions

        ctx = self.context
        settings = sessions.generation_settings(args.style, args.lam, args.mode, args.budget, sampling)
        self.session.generations.append(sessions.Generation(
            time=datetime.now(timezone.utc).isoformat(timespec="seconds"), seed=sampling.seed,
            context_tokens=ctx.token_count, context_start_char=ctx.context_start_char,
            new_tokens=len(summary.token_ids), text=summary.text, accepted=False, settings=settings))
        try:
            sessions.save(self.session)
        except sessions.SessionWriteError as exc:
            say(f"{exc}; the generation was not recorded")
        return {"context_tokens": ctx.token_count, "context_start_char": ctx.context_start_char}
