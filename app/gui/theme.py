"""Light/dark theme: follow the system colour scheme unless the user overrides it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from app.gui import resources

THEMES = ("system", "light", "dark")


def _system_is_dark_from(palette: QPalette) -> bool:
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else Qt.ColorScheme.Unknown
    if scheme != Qt.ColorScheme.Unknown:
        return scheme == Qt.ColorScheme.Dark
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


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


def dark_palette() -> QPalette:
    """A low-glare palette; the Fusion style draws every widget (arrows, check marks) from it."""
    p = QPalette()
    window, base, text = QColor("#202124"), QColor("#17181a"), QColor("#e6e6e3")
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
        p.setColor(group, QPalette.ColorRole.Window, window)
        p.setColor(group, QPalette.ColorRole.WindowText, text)
        p.setColor(group, QPalette.ColorRole.Base, base)
        p.setColor(group, QPalette.ColorRole.AlternateBase, QColor("#1f2023"))
        p.setColor(group, QPalette.ColorRole.Text, text)
        p.setColor(group, QPalette.ColorRole.Button, QColor("#2f3035"))
        p.setColor(group, QPalette.ColorRole.ButtonText, text)
        p.setColor(group, QPalette.ColorRole.ToolTipBase, QColor("#2a2b2f"))
        p.setColor(group, QPalette.ColorRole.ToolTipText, text)
        p.setColor(group, QPalette.ColorRole.Highlight, QColor("#35507a"))
        p.setColor(group, QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
        p.setColor(group, QPalette.ColorRole.Link, QColor("#8ab4f8"))
        p.setColor(group, QPalette.ColorRole.PlaceholderText, QColor("#8a8a85"))
        p.setColor(group, QPalette.ColorRole.Light, QColor("#45464b"))
        p.setColor(group, QPalette.ColorRole.Mid, QColor("#35363a"))
        p.setColor(group, QPalette.ColorRole.Dark, QColor("#111214"))
    disabled = QColor("#77776f")
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Base, QColor("#1c1d20"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Button, QColor("#26272b"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Window, window)
    return p


_system_palette: list[QPalette] = []


def apply(app: QApplication, choice: str) -> str:
    """Apply palette and style sheet for a theme choice; return the resolved theme."""
    if not _system_palette:
        _system_palette.append(QPalette(app.palette()))  # what the platform gave us, before any change
    theme = resolve(choice) if choice != "system" else ("dark" if _system_is_dark_from(_system_palette[0]) else "light")
    if theme == "dark":
        app.setStyle("Fusion")  # the platform style may ignore a dark palette
        app.setPalette(dark_palette())
    else:
        system = _system_palette[0]
        app.setPalette(system if not _system_is_dark_from(system) else app.style().standardPalette())
    app.setStyleSheet(resources.style_sheet(theme))
    app.setProperty("stylesteerTheme", theme)
    return theme


def current(app: QApplication | None = None) -> str:
    app = app or QApplication.instance()
    value = app.property("stylesteerTheme") if app is not None else None
    return value if value in ("light", "dark") else "light"
