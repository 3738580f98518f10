"""The `stylesteer` command: no arguments opens the app; a subcommand runs the CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app import __version__


class UserError(Exception):
    """A problem with the user's input or environment: one clear line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    from app import cli_bench, cli_generate, cli_styles, cli_sweep

    parser = argparse.ArgumentParser(
        prog="stylesteer",
        description="Steer a local language model toward your own writing style. "
        "With no command, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    cli_generate.register(sub)
    cli_styles.register(sub)
    cli_sweep.register(sub)
    cli_bench.register(sub)
    gui = sub.add_parser("gui", help="open the app (the default with no command)")
    gui.add_argument("--model", default=None, help="model to load at start (default: the demo model)")
    gui.set_defaults(func=_run_gui)
    return parser


def _run_gui(args: argparse.Namespace) -> int:
    from app.xlibs import missing_message

    problem = missing_message()
    if problem:  # Qt's own abort names the wrong package; name the right ones instead
        print(f"stylesteer: error: {problem}", file=sys.stderr)
        return 2
    from app.main_window import run_gui

    return run_gui(model=getattr(args, "model", None))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        return _run_gui(argparse.Namespace(model=None))
    args = parser.parse_args(argv)
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


def gui_main() -> int:
    return main([])


if __name__ == "__main__":
    sys.exit(main())
