"""The `stylesteer` subcommands (generate, styles, sweep, bench, session, check); never imports Qt."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app import __version__
from app.cli.common import UserError

# The subcommands' names (the parser's own list, kept here so the entry point can tell a document's path from a
# command without importing every command's module).
COMMANDS = ("generate", "styles", "sweep", "session", "bench", "check", "gui")


def build_parser() -> argparse.ArgumentParser:
    from app.cli import bench, check, generate, library, session, sweep

    parser = argparse.ArgumentParser(
        prog="stylesteer",
        description="Steer a local language model toward your own writing style. "
        "With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    generate.register(sub)
    library.register(sub)
    sweep.register(sub)
    session.register(sub)
    bench.register(sub)
    check.register(sub)
    # Listed for --help; `stylesteer gui` is dispatched by app.main before this parser runs.
    gui = sub.add_parser("gui", help="open the app (the default with no command)")
    gui.add_argument("--model", default=None, help="model to load at start (default: the demo model)")
    return parser


def run(argv: Sequence[str]) -> int:
    """Run one subcommand; a UserError is one line on stderr and exit code 2."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"stylesteer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stylesteer: interrupted", file=sys.stderr)
        return 130
