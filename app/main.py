"""The `stylesteer` entry point: no arguments (or `gui`, or a document's path) opens the app, anything else is the
CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] != "gui" and _is_document(argv[0]):
        argv = ["gui", *argv]  # `stylesteer story.md`, as a file manager's "Open with" runs it
    if not argv or argv[0] == "gui":
        parser = argparse.ArgumentParser(prog="stylesteer gui", description="Open the app.")
        parser.add_argument("--model", default=None, help="model to load at start (default: the demo model)")
        parser.add_argument("document", nargs="?", default=None, help="a text or Markdown file to open")
        args = parser.parse_args(argv[1:])
        if args.document is not None and not Path(args.document).is_file():
            print(f"stylesteer: error: no such file: {args.document}", file=sys.stderr)
            return 2
        from app.xlibs import missing_message

        problem = missing_message()
        if problem:  # Qt's own abort names the wrong package; name the right ones instead
            print(f"stylesteer: error: {problem}", file=sys.stderr)
            return 2
        from app.gui.startup import run_gui

        return run_gui(model=args.model, document=None if args.document is None else Path(args.document))
    from app.cli import run

    return run(argv)


def _is_document(arg: str) -> bool:
    """A path to open rather than a subcommand (no command is named like an existing file in practice)."""
    from app.cli import COMMANDS

    return arg not in COMMANDS and not arg.startswith("-") and Path(arg).is_file()


def gui_main() -> int:
    """`stylesteer-gui [FILE]`: the app, opening FILE (the desktop entry passes the file it was asked to open)."""
    return main(["gui", *sys.argv[1:2]])


if __name__ == "__main__":
    sys.exit(main())
