"""The `stylesteer` entry point: no arguments (or `gui`) opens the app, anything else is the CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] == "gui":
        parser = argparse.ArgumentParser(prog="stylesteer gui", description="Open the app.")
        parser.add_argument("--model", default=None, help="model to load at start (default: the demo model)")
        args = parser.parse_args(argv[1:])
        from app.xlibs import missing_message

        problem = missing_message()
        if problem:  # Qt's own abort names the wrong package; name the right ones instead
            print(f"stylesteer: error: {problem}", file=sys.stderr)
            return 2
        from app.gui.startup import run_gui

        return run_gui(model=args.model)
    from app.cli import run

    return run(argv)


def gui_main() -> int:
    return main([])


if __name__ == "__main__":
    sys.exit(main())
