"""Light or dark: the system's colour scheme, or the one the user chose, for every window.

``EXO_BRIDGE_APPEARANCE=light|dark|system`` (default ``system``). With ``system`` Qt's own
palette is kept, and followed when the desktop switches (Qt 6.5's ``colorSchemeChanged``); where
the platform reports a dark scheme but its style draws light widgets (Fusion on a bare X11),
the dark palette below is applied. Widgets read :func:`is_dark` and :func:`colours` and restyle
on ``QEvent.Type.PaletteChange``; nothing here is per-window.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

ENV = "EXO_BRIDGE_APPEARANCE"


class Appearance(StrEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


def wanted(environ: dict[str, str] | None = None) -> Appearance:
    """What the user asked for; anything unknown is ``system``."""
    value = (os.environ if environ is None else environ).get(ENV, "").strip().lower()
    return Appearance(value) if value in set(Appearance) else Appearance.SYSTEM


@dataclass(frozen=True, slots=True)
class Colours:
    """The few colours our own drawing needs beyond the palette's roles."""

    background: str
    text: str
    muted: str  # secondary text: footers, axis labels, empty-state notes
    grid: str
    code_background: str
    link: str


LIGHT = Colours(background="#ffffff", text="#1b1b1b", muted="#6b6b6b", grid="#d6d6d6",
                code_background="#f2f2f2", link="#1565c0")
DARK = Colours(background="#1e1f22", text="#e6e6e6", muted="#9a9a9a", grid="#3c3f44",
               code_background="#2b2d31", link="#8ab4f8")


def _dark_palette() -> QPalette:
    palette = QPalette()
    roles = QPalette.ColorRole
    for role, colour in ((roles.Window, "#2b2d31"), (roles.WindowText, DARK.text),
                         (roles.Base, DARK.background), (roles.AlternateBase, "#26282c"),
                         (roles.Text, DARK.text), (roles.Button, "#34363b"),
                         (roles.ButtonText, DARK.text), (roles.ToolTipBase, "#34363b"),
                         (roles.ToolTipText, DARK.text), (roles.Highlight, "#3d6fb6"),
                         (roles.HighlightedText, "#ffffff"), (roles.Link, DARK.link),
                         (roles.PlaceholderText, DARK.muted), (roles.BrightText, "#ff6b6b")):
        palette.setColor(role, QColor(colour))
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#77797e"))
    return palette


# Fusion outlines a check box or a radio button (in a menu or a window) in the Window colour made
# darker, which on a dark Window is all but invisible: these classes get a light Window, which
# only that edge uses (a menu is drawn on Base; a check box's label on its parent's background).
EDGED = ("QMenu", "QCheckBox", "QRadioButton")


def _dark_menu_palette() -> QPalette:
    """Check boxes' and radio buttons' edges in dark (the menu itself stays dark)."""
    palette = _dark_palette()
    palette.setColor(QPalette.ColorRole.Window, QColor("#c8c8c8"))
    return palette


def _light_menu_palette() -> QPalette:
    """The same edge in light, dark enough on white (3:1, WCAG's floor for a control)."""
    palette = _light_palette()
    palette.setColor(QPalette.ColorRole.Window, QColor("#909090"))
    return palette


def _light_palette() -> QPalette:
    palette = QPalette(QColor("#efefef"))
    palette.setColor(QPalette.ColorRole.Base, QColor(LIGHT.background))
    palette.setColor(QPalette.ColorRole.Link, QColor(LIGHT.link))
    return palette


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether windows are drawn dark now (by their window colour, whoever chose it)."""
    if palette is None:
        palette = QGuiApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def colours(palette: QPalette | None = None) -> Colours:
    return DARK if is_dark(palette) else LIGHT


def _system_is_dark(app: QGuiApplication) -> bool:
    return app.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply(app: QApplication, choice: Appearance | None = None) -> None:
    """Give every window the chosen scheme, and follow the system's if that is the choice."""
    choice = wanted() if choice is None else choice
    _apply_now(app, choice)
    if choice is Appearance.SYSTEM:
        app.styleHints().colorSchemeChanged.connect(lambda _scheme: _apply_now(app, choice))


def _apply_now(app: QApplication, choice: Appearance) -> None:
    dark = choice is Appearance.DARK or (choice is Appearance.SYSTEM and _system_is_dark(app))
    if choice is Appearance.SYSTEM and dark == is_dark(app.palette()):
        return  # the platform already draws what the system asks for
    if choice is Appearance.SYSTEM and not dark:
        app.setPalette(app.style().standardPalette())  # drops the menus' own palette too
        return
    app.setStyle("Fusion")  # the one style that honours a whole custom palette everywhere
    app.setPalette(_dark_palette() if dark else _light_palette())
    # after the application's palette, which drops every class's own (the stubs say bytes for
    # the class name; PySide refuses bytes)
    edged = _dark_menu_palette() if dark else _light_menu_palette()
    for name in EDGED:
        app.setPalette(edged, name)  # type: ignore[arg-type]
