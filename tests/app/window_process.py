"""A real StyleSteer window in its own process (offscreen, fake engine), driven over stdin.

Commands, one per line: `type TEXT`, `recover` (prints the recovered text as JSON, or null),
`status` (prints the window's errors as JSON), `close`. Prints `ready` once the window is up.
Used by tests that need two instances on one data folder, and a kill -9.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSocketNotifier, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.gui.main_window import MainWindow
from app.gui.settings import init_application_names
from tests.fake_engine import FakeBackend, FakeOptions


def main() -> int:
    app = QApplication(sys.argv[:1])
    init_application_names()
    win = MainWindow(FakeBackend(FakeOptions(token_delay_s=0.001, load_delay_s=0.0)), interactive=False)
    win.show()

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def on_line() -> None:
        line = sys.stdin.readline()
        if not line:
            win.close()
            return
        command, _, arg = line.rstrip("\n").partition(" ")
        if command == "type":
            win.editor.setFocus()
            QTest.keyClicks(win.editor, arg)
            say("typed")
        elif command == "recover":
            say(json.dumps(win.editor.text() if win.check_recovery(accept=True) else None))
        elif command == "status":
            say(json.dumps(win.errors))
        elif command == "close":
            win.close()

    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
    notifier.activated.connect(on_line)
    QTimer.singleShot(0, lambda: say("ready"))
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
