"""Light or dark for every window: the user's choice, else the system's (offscreen Qt)."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtGui import QPalette

from desktop import appearance
from desktop.appearance import Appearance


@pytest.mark.parametrize(("value", "choice"), [("dark", Appearance.DARK), (" Light ", Appearance.LIGHT),
                                               ("", Appearance.SYSTEM), ("purple", Appearance.SYSTEM)])
def test_the_choice_is_read_from_the_environment(value, choice):
    assert appearance.wanted({appearance.ENV: value}) is choice
    assert appearance.wanted({}) is Appearance.SYSTEM


def test_dark_gives_every_window_a_dark_palette_and_light_gives_it_back(restored_palette):
    appearance.apply(restored_palette, Appearance.DARK)
    assert appearance.is_dark() and appearance.colours() is appearance.DARK
    window, text = (restored_palette.palette().color(role) for role in
                    (QPalette.ColorRole.Window, QPalette.ColorRole.WindowText))
    assert text.lightness() - window.lightness() > 100  # readable: light text on a dark window
    appearance.apply(restored_palette, Appearance.LIGHT)
    assert not appearance.is_dark() and appearance.colours() is appearance.LIGHT


def test_system_keeps_the_platform_palette_when_it_already_matches(restored_palette):
    before = restored_palette.palette().color(QPalette.ColorRole.Window).name()
    appearance.apply(restored_palette, Appearance.SYSTEM)  # offscreen reports no dark scheme
    assert restored_palette.palette().color(QPalette.ColorRole.Window).name() == before
    assert not appearance.is_dark()
