"""Guard against a PySide6 refcount bug on Python < 3.12 that aborts long sessions.

PySide6 6.12's abi3 wheels return None, True and False from Qt calls without a new
reference: measured on Python 3.11, each call of a void method (QLabel.setText,
QColor.setAlpha, QTimer.start, ...) takes one reference from None, and bool results
do the same to True/False. Python 3.12 made these objects immortal, so there it is
harmless; on 3.11 a busy GUI drains None's count within minutes and the interpreter
aborts ("deallocating None"). Where the loss is measured, these three objects are
made immortal the way 3.12 does it: a refcount so large no leak can exhaust it.
"""

from __future__ import annotations

import ctypes
import sys

_IMMORTAL = 1 << 40  # ~1e12 references: more calls than any session makes
_done = False


def _leaks() -> bool:
    from PySide6.QtGui import QColor

    color = QColor(1, 2, 3)
    before = sys.getrefcount(None)
    for _ in range(16):
        color.setAlpha(255)
    return sys.getrefcount(None) < before - 8


def apply() -> bool:
    """Make None/True/False immortal if this PySide6 drops references to them; True if it did."""
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        _done = True
        return False
    _done = True
    if not _leaks():
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _IMMORTAL
    return True


apply()
