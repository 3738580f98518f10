"""Drive the real app to the states the README shows and save them as PNGs (run by screenshots.sh)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROMPT = ("It was a cold evening in early November when I called upon my friend. "
          "He sat by the fire with his pipe, and as I entered he looked up and said")


def corpora_dir() -> Path:
    return Path(os.environ.get("STYLESTEER_CORPORA", REPO.parent / "shared" / "corpora"))


def wait(app, condition, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def settle(app, seconds: float = 0.4) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--corpus", default="sherlock_holmes.txt")
    parser.add_argument("--style", default="Sherlock Holmes")
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--lam", type=float, default=0.5)
    parser.add_argument("--theme", default="light", choices=("light", "dark", "system"))
    parser.add_argument("--suffix", default="", help="added to the file names, e.g. _dark")
    parser.add_argument("--shots", default="main,compare,context",
                        help="which screenshots, comma-separated: main, compare, context (the context viewer)")
    return parser.parse_args()


def _stop_on_error(win) -> None:  # type: ignore[no-untyped-def]
    if win.errors:
        raise SystemExit(f"screenshots: {win.errors[-1]}")


def _open_window(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The real app (real engine, the demo model) with the chosen theme."""
    from PySide6.QtWidgets import QApplication

    from app.gui import resources
    from app.gui.main_window import MainWindow
    from app.gui.settings import init_application_names
    from app.gui.startup import preload_engine

    init_application_names()
    app = QApplication.instance() or QApplication(["stylesteer"])
    app.setWindowIcon(resources.app_icon())
    preload_engine(app)
    win = MainWindow(interactive=False)
    win.set_theme(args.theme)
    win.resize(1480, 900)
    win.show()
    print("screenshots: loading the model…", flush=True)
    wait(app, lambda: win.worker.model is not None or bool(win.errors), 300, "the model")
    _stop_on_error(win)
    return app, win


def _import_style(app, win, corpus: Path, style: str) -> None:  # type: ignore[no-untyped-def]
    print(f"screenshots: importing {corpus.name}…", flush=True)
    reports: list = []
    win.styles.reportReady.connect(reports.append)
    win.styles.start_import([corpus], style=style)
    wait(app, lambda: bool(reports) or bool(win.errors), 600, "the import")
    _stop_on_error(win)
    wait(app, lambda: style in win.styles.style_names(), 30, "the style list")
    win.styles.select(style)
    win.styles.set_active(style)


def _shoot_main_window(app, win, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    win.controls.set_lam(args.lam)
    win.controls.max_tokens.setValue(args.tokens)
    win.editor.load_text(PROMPT)
    cursor = win.editor.textCursor()
    cursor.movePosition(cursor.MoveOperation.End)
    win.editor.setTextCursor(cursor)
    win.editor.setFocus()
    print("screenshots: generating…", flush=True)
    done: list = []
    win.generationFinished.connect(done.append)
    win.generate()
    wait(app, lambda: bool(done) or bool(win.errors), 600, "the generation")
    _stop_on_error(win)
    # Show the inspector on the token the style moved most.
    tokens = [t for t in win.editor.tokens() if t.step is not None]
    if tokens:
        win.editor.hover_token(max(tokens, key=lambda t: t.step.js_bits))
    settle(app)
    main_png = args.out / f"main_window{args.suffix}.png"
    win.grab().save(str(main_png))
    print(f"screenshots: wrote {main_png}", flush=True)


def _shoot_compare(app, win, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    print("screenshots: comparing…", flush=True)
    win.open_compare()
    win.compare_view.prompt.setPlainText(PROMPT)
    win.compare_dialog.resize(1300, 860)
    win.compare_view.run_button.click()
    wait(app, lambda: win.compare_view.summaries is not None or bool(win.errors), 900, "the comparison")
    _stop_on_error(win)
    settle(app)
    compare_png = args.out / f"compare_view{args.suffix}.png"
    win.compare_dialog.grab().save(str(compare_png))
    print(f"screenshots: wrote {compare_png}", flush=True)


MEMORY = "Holmes and Watson share rooms at 221B Baker Street. Watson tells the story."
NOTE = "[Tone: brisk, observant. Holmes speaks in short, exact sentences.]"
STORY = ("The fog had not lifted all day, and the lamps of Baker Street burned yellow at four o'clock.\n\n"
         "Holmes had not touched his breakfast. He stood at the window, watching the street below.\n\n"
         "A cab drew up at our door, and a tall man in a grey coat stepped down from it.\n\n"
         "\"A client,\" said Holmes, without turning round, \"and a worried one.\"")


def _shoot_context(app, win, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """The context viewer after a suggestion with Memory and an Author's note."""
    win.editor.discard_ghost()
    win.session_panel.set_values(MEMORY, NOTE, 2)
    win.session_dock.raise_()
    win.controls.max_tokens.setValue(12)
    win.editor.load_text(STORY)
    cursor = win.editor.textCursor()
    cursor.movePosition(cursor.MoveOperation.End)
    win.editor.setTextCursor(cursor)
    print("screenshots: generating for the context viewer…", flush=True)
    done: list = []
    win.generationFinished.connect(done.append)
    win.generate()
    wait(app, lambda: bool(done) or bool(win.errors), 600, "the generation")
    _stop_on_error(win)
    dlg = win.show_context()
    dlg.resize(900, 300)
    settle(app)
    png = args.out / f"context_viewer{args.suffix}.png"
    dlg.grab().save(str(png))
    dlg.close()
    print(f"screenshots: wrote {png}", flush=True)


def main() -> int:
    args = _arguments()
    shots = set(args.shots.split(","))
    corpus = corpora_dir() / args.corpus
    if not corpus.is_file():
        raise SystemExit(f"screenshots: corpus not found: {corpus}")
    args.out.mkdir(parents=True, exist_ok=True)
    app, win = _open_window(args)
    if shots & {"main", "compare"}:
        _import_style(app, win, corpus, args.style)
    if "main" in shots:
        _shoot_main_window(app, win, args)
    if "compare" in shots:
        _shoot_compare(app, win, args)
    if "context" in shots:
        _shoot_context(app, win, args)
    win.editor.discard_ghost()
    win.editor.document().setModified(False)
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
