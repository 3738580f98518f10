"""Load the app's icon, style sheets and desktop entry through importlib.resources."""

from __future__ import annotations

from importlib import resources

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

_PACKAGE = "resources"


def read_bytes(name: str) -> bytes:
    """The bytes of one file in the resources package (works in a frozen build too)."""
    return resources.files(_PACKAGE).joinpath(name).read_bytes()


def read_text(name: str) -> str:
    return resources.files(_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def style_sheet(theme: str) -> str:
    """The .qss for 'light' or 'dark'."""
    return read_text(f"{theme}.qss")


def render_svg(data: bytes, size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    renderer = QSvgRenderer(QByteArray(data))
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    return image


def app_icon() -> QIcon:
    """The StyleSteer icon: the PNG where present plus the SVG rendered at common sizes."""
    icon = QIcon()
    try:
        png = QPixmap()
        if png.loadFromData(read_bytes("stylesteer.png")):
            icon.addPixmap(png)
    except (FileNotFoundError, OSError):
        pass
    svg = read_bytes("stylesteer.svg")
    for size in (16, 24, 32, 48, 64, 128, 256):
        icon.addPixmap(QPixmap.fromImage(render_svg(svg, size)))
    return icon


def desktop_entry() -> str:
    return read_text("stylesteer.desktop")
