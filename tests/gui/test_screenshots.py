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
NAMES = ("empty-state", "main-window", "desktop", "overlay", "history", "settings")

pytestmark = pytest.mark.skipif(not (os.environ.get("DISPLAY") and os.environ.get("SURTITLE_SCREENSHOTS")),
                                reason="needs DISPLAY (Xvfb + xcompmgr) and SURTITLE_SCREENSHOTS")


@pytest.mark.parametrize("theme", ["", "--dark"])
def test_screenshots_are_written_and_the_overlay_is_see_through(tmp_path, theme):
    folder = Path(os.environ["SURTITLE_SCREENSHOTS"])
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", SURTITLE_DATA_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "gui" / "screenshot.py"), *filter(None, [theme])],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    suffix = "-dark" if theme else ""
    for name in NAMES:
        assert (folder / f"{name}{suffix}.png").is_file(), name
    # The overlay crop has a margin of screen around it: with a compositor, the backdrop shows through
    # the rounded corner and the box is tinted, not black.
    shot = QImage(str(folder / f"overlay{suffix}.png"))
    corner, inside = shot.pixelColor(24, 24), shot.pixelColor(30, shot.height() // 2)
    assert corner != inside
    assert inside.lightness() > 10, "translucent pixels came out black: is a compositor (xcompmgr) running?"
