"""Screenshots under a real X server (CI artifact): runs only when DISPLAY and SURTITLE_SCREENSHOTS are set.

    Xvfb :99 -screen 0 1600x900x24 & DISPLAY=:99 xcompmgr &
    DISPLAY=:99 SURTITLE_SCREENSHOTS=shots python -m pytest tests/gui/test_screenshots.py
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

ROOT = Path(__file__).resolve().parents[2]
MARGIN = 24  # screen around the overlay in its crop (screenshot.OVERLAY_MARGIN)

pytestmark = pytest.mark.skipif(not (os.environ.get("DISPLAY") and os.environ.get("SURTITLE_SCREENSHOTS")),
                                reason="needs DISPLAY (Xvfb + xcompmgr) and SURTITLE_SCREENSHOTS")


@pytest.fixture(scope="module", params=["", "--dark"])
def shot(request, tmp_path_factory):
    """shot(name) -> QImage, after one run of screenshot.py per theme."""
    folder, theme = Path(os.environ["SURTITLE_SCREENSHOTS"]), request.param
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", SURTITLE_DATA_DIR=str(tmp_path_factory.mktemp("data")))
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "gui" / "screenshot.py"), *filter(None, [theme])],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    suffix = "-dark" if theme else ""

    def load(name: str) -> QImage:
        image = QImage(str(folder / f"{name}{suffix}.png"))
        assert not image.isNull(), f"{name}{suffix}.png was not written"
        return image
    return load


def sample(image: QImage, step: int = 4) -> list[int]:
    """Every `step`th pixel of every `step`th row: plenty to compare images, and quick in Python."""
    return [image.pixel(x, y) for y in range(0, image.height(), step) for x in range(0, image.width(), step)]


def changed_fraction(a: QImage, b: QImage) -> float:
    assert a.size() == b.size()
    pairs = list(zip(sample(a), sample(b)))
    return sum(p != q for p, q in pairs) / len(pairs)


@pytest.mark.parametrize("name", ["empty-state", "main-window", "history", "settings"])
def test_windows_are_drawn(shot, name):
    # A window that failed to paint is one flat colour; text and controls bring hundreds of shades.
    assert len(set(sample(shot(name)))) > 100


def test_the_desktop_shows_the_windows_over_the_video(shot):
    # The main window and the overlay cover part of the screen; the stand-in video shows around them.
    changed = changed_fraction(shot("backdrop"), shot("desktop"))
    assert 0.15 < changed < 0.6


def test_the_overlay_is_drawn_and_see_through(shot):
    shown, hidden = shot("overlay"), shot("overlay-hidden")  # the same piece of screen
    assert shown.size() == hidden.size()
    y = MARGIN + 4  # the box's top padding: its background, above the text
    xs = range(MARGIN + 20, shown.width() - MARGIN - 20)  # clear of the rounded corners
    assert all(shown.pixel(x, y) != hidden.pixel(x, y) for x in xs), "the overlay's box was not drawn"
    # The backdrop's darkest and brightest spots under that row (a hill, a white wall) still show
    # through the box: in the same order, with part of their contrast.
    under = [hidden.pixelColor(x, y).lightness() for x in xs]
    over = [shown.pixelColor(x, y).lightness() for x in xs]
    dark, bright = under.index(min(under)), under.index(max(under))
    contrast = under[bright] - under[dark]
    assert contrast > 100  # the stand-in video has something here to show
    assert 0.1 * contrast < over[bright] - over[dark] < contrast, \
        "the box hides what is under it: translucent pixels came out black, is a compositor (xcompmgr) running?"


def test_the_overlay_shows_the_captions(shot):
    shown, hidden = shot("overlay"), shot("overlay-hidden")
    # Over the dark hill the box is dark too, but for the white letters of the captions.
    box = [(x, y) for x in range(MARGIN, shown.width() - MARGIN, 2) for y in range(MARGIN, shown.height() - MARGIN, 2)]
    letters = [p for p in box if hidden.pixelColor(*p).lightness() < 100 and shown.pixelColor(*p).lightness() > 200]
    assert len(letters) > 500
