"""Per-screen placement with two (virtual) screens.

Qt's offscreen platform takes a screen layout from a config file, but only when the application
starts, so this runs in its own process.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, sys
    from PySide6.QtCore import QRect, QSettings
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from app.gui.overlay import CaptionOverlay
    from app.gui.placement import Preset, key_of
    from app.gui.settings import Key, Settings

    settings = Settings(QSettings(sys.argv[1], QSettings.Format.IniFormat))
    left, right = QGuiApplication.screens()
    overlay = CaptionOverlay(settings)
    settings.set_value(Key.OVERLAY_SCREEN, key_of(left))
    overlay.restore_placement(); overlay.show(); app.processEvents()
    overlay.apply_preset(Preset.TOP)
    top_on_left = overlay.geometry()

    overlay.setGeometry(QRect(1500, 500, 700, overlay.height()))  # dragged onto the right screen
    app.processEvents()
    overlay.on_grips_moved(); overlay.on_settle_timeout()
    on_right = overlay.geometry()
    overlay.close()

    result = {"right_screen": overlay.screen().name()}
    for name, screen in (("left", left), ("right", right)):
        settings.set_value(Key.OVERLAY_SCREEN, key_of(screen))
        again = CaptionOverlay(settings)
        again.restore_placement()
        g = again.geometry()
        result[name] = [again.preset.value, g.x(), g.y(), g.width(), g.height()]
    result["top_on_left"] = [top_on_left.x(), top_on_left.y(), top_on_left.width(), top_on_left.height()]
    result["on_right"] = [on_right.x(), on_right.y(), on_right.width(), on_right.height()]
    print(json.dumps(result))
""")

SCREENS = {"screens": [
    {"name": "LAPTOP", "x": 0, "y": 0, "width": 1280, "height": 720, "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1},
    {"name": "PROJECTOR", "x": 1280, "y": 0, "width": 1920, "height": 1080, "logicalDpi": 96,
     "logicalBaseDpi": 96, "dpr": 1},
]}


def test_each_screen_keeps_its_own_placement(tmp_path):
    config = tmp_path / "screens.json"
    config.write_text(json.dumps(SCREENS))
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={config}")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "settings.ini")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["right_screen"] == "PROJECTOR"
    assert result["left"] == ["top", *result["top_on_left"]]
    assert result["right"] == ["floating", *result["on_right"]]
    assert result["top_on_left"][1] == 32  # near the laptop's top edge
