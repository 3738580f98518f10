"""Light/dark theme: follow the system colour scheme unless the user overrides it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app import resources

THEMES = ("system", "light", "dark")


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else Qt.ColorScheme.Unknown
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    # Unknown scheme (e.g. a bare X server): judge by the window colour.
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def resolve(choice: str) -> str:
    """'system' -> 'light' or 'dark'."""
    if choice == "light" or choice == "dark":
        return choice
    return "dark" if system_is_dark() else "light"


def apply(app: QApplication, choice: str) -> str:
    """Apply the style sheet for a theme choice; return the resolved theme."""
    theme = resolve(choice)
    app.setStyleSheet(resources.style_sheet(theme))
    app.setProperty("stylesteerTheme", theme)
    return theme


def current(app: QApplication | None = None) -> str:
    app = app or QApplication.instance()
    value = app.property("stylesteerTheme") if app is not None else None
    return value if value in ("light", "dark") else "light"
