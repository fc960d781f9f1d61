"""The tray's health dot: a coloured disc with a contrasting outline, readable on light and
dark panels (a colour cannot be a macOS template image, so the outline does the contrast)."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap

from desktop.status_model import Light

APP_NAME = "Exo Bridge"
APP_ICON_NAME = "exo-bridge"  # in the icon theme, where an install put resources/exo-bridge.svg
_ICON_FILE = Path("exo-bridge.svg")

COLOURS = {Light.GREEN: "#2ecc40", Light.YELLOW: "#ffc107", Light.RED: "#e53935",
           Light.GREY: "#9e9e9e"}
# The same colours name the providers in the menu and, later, the cost graph.
PROVIDER_COLOURS = ("#2ecc40", "#7e57c2", "#ff9800", "#26a69a", "#ec407a")


def dot_pixmap(light: Light, size: int = 64, ratio: float = 1.0) -> QPixmap:
    """A dot ``size`` logical pixels wide, painted at ``ratio`` device pixels per logical pixel
    (2 on a HiDPI screen: crisp, never scaled up)."""
    pixels = round(size * ratio)
    pixmap = QPixmap(pixels, pixels)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    size = pixels  # paint in device pixels; the ratio below makes it ``size`` logical ones
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    outline = max(2.0, size / 12)
    painter.setPen(QPen(QColor("#1b1b1b"), outline))
    painter.setBrush(QColor(COLOURS[light]))
    inset = outline / 2 + size * 0.08
    painter.drawEllipse(QRectF(inset, inset, size - 2 * inset, size - 2 * inset))
    painter.setPen(QPen(QColor("#ffffff"), max(1.0, outline / 2)))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    inner = inset + outline
    painter.drawEllipse(QRectF(inner, inner, size - 2 * inner, size - 2 * inner))
    painter.end()
    pixmap.setDevicePixelRatio(ratio)
    return pixmap


def provider_colours(provider_ids: list[str]) -> dict[str, str]:
    """The one colour each provider has everywhere (menu, cost graph), by config order."""
    return {pid: PROVIDER_COLOURS[i % len(PROVIDER_COLOURS)] for i, pid in enumerate(provider_ids)}


_DOTS: dict[Light, QIcon] = {}
_MENU_DOTS: dict[Light, QIcon] = {}
_PIXMAPS: dict[tuple[Light, int, float], QPixmap] = {}


def cached_dot_pixmap(light: Light, size: int, ratio: float) -> QPixmap:
    """``dot_pixmap``, painted once per colour, size and pixel ratio (windows redraw often)."""
    key = (light, size, ratio)
    pixmap = _PIXMAPS.get(key)
    if pixmap is None:
        pixmap = _PIXMAPS[key] = dot_pixmap(light, size, ratio)
    return pixmap


def dot_icon(light: Light) -> QIcon:
    """The tray's dot in every size a panel asks for (HiDPI ones too); painted once per colour."""
    icon = _DOTS.get(light)
    if icon is None:
        icon = QIcon()
        for size in (16, 22, 24, 32, 44, 48, 64, 128):
            icon.addPixmap(dot_pixmap(light, size))
        _DOTS[light] = icon
    return icon


def menu_dot_icon(light: Light) -> QIcon:
    """A provider row's state dot: 16 logical pixels at 1x, 2x and 3x (crisp on HiDPI)."""
    icon = _MENU_DOTS.get(light)
    if icon is None:
        icon = QIcon()
        for ratio in (1.0, 2.0, 3.0):
            icon.addPixmap(dot_pixmap(light, 16, ratio))
        _MENU_DOTS[light] = icon
    return icon


def app_icon_path() -> Path | None:
    """Our icon's file: beside the sources (a checkout), in a frozen build, or where pip put it
    (``share/icons/hicolor/scalable/apps``); None when none is there."""
    here = Path(__file__).resolve().parent.parent
    places = [here / "resources", Path(getattr(sys, "_MEIPASS", here)) / "resources",
              Path(sys.prefix) / "share" / "icons" / "hicolor" / "scalable" / "apps"]
    return next((place / _ICON_FILE for place in places if (place / _ICON_FILE).is_file()), None)


def app_icon() -> QIcon:
    """The app's icon for its windows and notifications (the theme's, else our file's)."""
    path = app_icon_path()
    return QIcon(str(path)) if path is not None else QIcon.fromTheme(APP_ICON_NAME)
