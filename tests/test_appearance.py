"""Light or dark for every window: the user's choice, else the system's (offscreen Qt)."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtGui import QPalette

from desktop import appearance
from desktop.appearance import Appearance


@pytest.fixture
def restored(qapp):
    style, palette = qapp.style().name(), QPalette(qapp.palette())
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)


@pytest.mark.parametrize(("value", "choice"), [("dark", Appearance.DARK), (" Light ", Appearance.LIGHT),
                                               ("", Appearance.SYSTEM), ("purple", Appearance.SYSTEM)])
def test_the_choice_is_read_from_the_environment(value, choice):
    assert appearance.wanted({appearance.ENV: value}) is choice
    assert appearance.wanted({}) is Appearance.SYSTEM


def test_dark_gives_every_window_a_dark_palette_and_light_gives_it_back(restored):
    appearance.apply(restored, Appearance.DARK)
    assert appearance.is_dark() and appearance.colours() is appearance.DARK
    window, text = (restored.palette().color(role) for role in
                    (QPalette.ColorRole.Window, QPalette.ColorRole.WindowText))
    assert text.lightness() - window.lightness() > 100  # readable: light text on a dark window
    appearance.apply(restored, Appearance.LIGHT)
    assert not appearance.is_dark() and appearance.colours() is appearance.LIGHT


def test_system_keeps_the_platform_palette_when_it_already_matches(restored):
    before = restored.palette().color(QPalette.ColorRole.Window).name()
    appearance.apply(restored, Appearance.SYSTEM)  # offscreen reports no dark scheme
    assert restored.palette().color(QPalette.ColorRole.Window).name() == before
    assert not appearance.is_dark()
