"""Run a small pure-Python function on a Qt thread pool and hear back on the GUI thread."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

_RELAYS: set[_Relay] = set()  # held until their answer is delivered


class _Relay(QObject):
    """Created on the GUI thread, so a signal emitted from the pool is delivered there (queued)."""

    answered = Signal(object, object)  # result, exception


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self._fn = fn
        self._relay = relay

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:  # noqa: BLE001 - handed to the GUI thread's on_error
            self._relay.answered.emit(None, exc)
        else:
            self._relay.answered.emit(result, None)


def run_in_pool(pool: QThreadPool, fn: Callable[[], Any], on_done: Callable[[Any], None],
                on_error: Callable[[BaseException], None] | None = None) -> None:
    """Call `fn()` on `pool`; then `on_done(result)` or `on_error(exc)` on the GUI thread.

    For work that releases the GIL often (a loop of small calls): one long C call holding it would stall the GUI
    thread just the same. Whoever owns `pool` waits for it (`waitForDone`) before going away.
    """
    relay = _Relay()
    _RELAYS.add(relay)

    def answered(result: Any, exc: BaseException | None) -> None:
        _RELAYS.discard(relay)
        if exc is None:
            on_done(result)
        elif on_error is not None:
            on_error(exc)
        else:
            traceback.print_exception(exc)

    relay.answered.connect(answered)
    pool.start(_Task(fn, relay))
