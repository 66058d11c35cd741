"""Screenshots of the real windows, for review and as CI artifacts.

Needs a real X server with a compositor (without one, translucent pixels come out black):

    Xvfb :99 -screen 0 1600x900x24 -nolisten tcp &
    DISPLAY=:99 xcompmgr &
    DISPLAY=:99 SURTITLE_SCREENSHOTS=shots python tests/gui/screenshot.py [--dark]

Writes into $SURTITLE_SCREENSHOTS: backdrop (the stand-in video alone), desktop (everything over
it), main-window, overlay (cropped from the screen with a margin, so its translucency shows),
overlay-hidden (the same crop with the overlay hidden), empty-state, history and settings.
The session is scripted through the fake pipeline the tests use; everything else is the real app.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SURTITLE_DATA_DIR", tempfile.mkdtemp(prefix="surtitle-shots-"))

from PySide6.QtCore import QPointF, QRect, QSettings, Qt  # noqa: E402
from PySide6.QtGui import (QColor, QGuiApplication, QIcon, QLinearGradient, QPainter, QPalette,  # noqa: E402
                           QRadialGradient)
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QStyleFactory, QWidget  # noqa: E402

from app.gui.app import RESOURCES  # noqa: E402
from app.gui.exporting import Exporter  # noqa: E402
from app.gui.main_window import MainWindow  # noqa: E402
from app.gui.placement import Preset  # noqa: E402
from app.gui.session import SessionController  # noqa: E402
from app.gui.settings import Key, Settings  # noqa: E402
from app.gui.settings_dialog import SettingsDialog  # noqa: E402
from app.journal import Journal  # noqa: E402
from tests.gui.fakes import FakePipelineFactory, status, words  # noqa: E402

TALK = ("Good morning everyone, and thanks for joining. Today we look at how live captions can stay "
        "stable: every word appears once and is never rewritten. The model hears about half a second "
        "ahead, so the delay is small and, more importantly, it stays the same.")
LATER = "Questions are welcome at the end. The recording and its transcript are saved automatically."
OVERLAY_MARGIN = 24  # screen around the overlay in its crop: the backdrop shows through the rounded corners


class Backdrop(QWidget):
    """A stand-in for the video under the captions: bright sky, dark hills, so both test contrast."""

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        sky = QLinearGradient(0, 0, 0, self.height())
        sky.setColorAt(0, QColor("#7fb6f0"))
        sky.setColorAt(0.55, QColor("#f7e7c4"))
        sky.setColorAt(1, QColor("#3d5a3a"))
        p.fillRect(self.rect(), sky)
        sun = QRadialGradient(QPointF(self.width() * 0.8, self.height() * 0.25), 140)
        sun.setColorAt(0, QColor(255, 255, 230))
        sun.setColorAt(1, QColor(255, 255, 230, 0))
        p.fillRect(self.rect(), sun)
        p.setBrush(QColor("#2e4a2c"))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawEllipse(QRect(-200, int(self.height() * 0.62), self.width() // 1, self.height()))
        p.setBrush(QColor("#f4f4f0"))
        p.drawRect(QRect(int(self.width() * 0.55), int(self.height() * 0.7), 500, 400))  # a white wall
        p.end()


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, color in ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.WindowText, "#e8eaed"),
                        (QPalette.ColorRole.Base, "#17181a"), (QPalette.ColorRole.AlternateBase, "#24262a"),
                        (QPalette.ColorRole.Text, "#e8eaed"), (QPalette.ColorRole.Button, "#2b2d31"),
                        (QPalette.ColorRole.ButtonText, "#e8eaed"), (QPalette.ColorRole.Highlight, "#3b82f6"),
                        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.ToolTipBase, "#2b2d31"),
                        (QPalette.ColorRole.ToolTipText, "#e8eaed"), (QPalette.ColorRole.PlaceholderText, "#9aa0a6"),
                        (QPalette.ColorRole.Mid, "#5f6368"), (QPalette.ColorRole.Dark, "#2563eb")):
        palette.setColor(role, QColor(color))
    return palette


def settle(ms: int = 300) -> None:
    QTest.qWait(ms)


def wait_until(condition, timeout_s: float = 20.0) -> None:
    """Process events until `condition()` holds: the session runs in its own thread, at its own pace."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the scripted session did not reach the window in time")
        QTest.qWait(20)


def save(pixmap, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    pixmap.save(str(path))
    print(path)


def fill_history(journal: Journal) -> None:
    for title, text in (("Weekly planning", "We agreed to ship the overlay on Friday and review search next week."),
                        ("Lecture: thermodynamics", "Entropy of an isolated system never decreases over time."),
                        ("Call with Ana", "Let's meet on Thursday at ten to go through the export formats.")):
        sid = journal.start_session("kyutai/stt-1b-en_fr-trfs", "Built-in microphone", title=title)
        journal.add_words(sid, words(*text.split(), step=0.45))
        journal.end_session(sid)


def main(argv: list[str]) -> int:
    folder = Path(os.environ.get("SURTITLE_SCREENSHOTS", "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    dark = "--dark" in argv
    suffix = "-dark" if dark else ""
    app = QApplication([sys.argv[0]])
    app.setStyle(QStyleFactory.create("Fusion"))
    if dark:
        app.setPalette(dark_palette())
    app.setStyleSheet((RESOURCES / "style.qss").read_text())
    app.setWindowIcon(QIcon(str(RESOURCES / "surtitle.svg")))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, os.environ["SURTITLE_DATA_DIR"])
    app.setOrganizationName("SurtitleScreenshots")
    app.setApplicationName("Surtitle")

    screen = QGuiApplication.primaryScreen().geometry()
    backdrop = Backdrop()
    backdrop.setGeometry(screen)
    backdrop.show()
    settle()
    save(QGuiApplication.primaryScreen().grabWindow(0), folder, f"backdrop{suffix}")

    journal = Journal(Path(os.environ["SURTITLE_DATA_DIR"]) / "journal.sqlite3", commit_interval_s=0)
    fill_history(journal)
    settings = Settings()
    settings.set_value(Key.OVERLAY_LINES, 2)
    pipelines = FakePipelineFactory(journal)
    window = MainWindow(settings, journal, controller=SessionController(pipelines),
                        device_lister=lambda: ["Built-in microphone", "USB headset (Jabra Evolve2)"],
                        exporter=Exporter())
    window.setGeometry(40, 40, 860, 560)
    window.show()
    window.overlay.apply_preset(Preset.BOTTOM)
    settle(600)
    save(window.grab(), folder, f"empty-state{suffix}")

    window.commands.start.trigger()
    pipeline = pipelines.latest
    settle()
    talk = TALK.split()
    pipeline.push(lambda p: p.say(words(*talk, step=0.42)))
    later = LATER.split()
    pipeline.push(lambda p: p.say(words(*later, start=len(talk) * 0.42 + 4.0, step=0.42)))
    pipeline.push(lambda p: p.listener.on_partial("automa"))
    pipeline.push(lambda p: p.listener.on_status(status(lag_s=0.62, rtf=0.38, level_dbfs=-14)))
    wait_until(lambda: window.status.lag.text() == "Lag 0.6 s")  # the last push: all of them have arrived
    settle(800)
    window.overlay.set_partial("")  # the overlay shows the tail of the story: keep only final words
    pipeline.push(lambda p: p.listener.on_partial("automa"))
    wait_until(lambda: any(line.partial == "automa" for line in window.overlay.caption_lines()))
    settle(400)
    save(window.grab(), folder, f"main-window{suffix}")
    geometry = window.overlay.frameGeometry()
    shot = QGuiApplication.primaryScreen().grabWindow(0)
    save(shot, folder, f"desktop{suffix}")
    crop = geometry.adjusted(-OVERLAY_MARGIN, -OVERLAY_MARGIN, OVERLAY_MARGIN, OVERLAY_MARGIN)
    save(shot.copy(crop), folder, f"overlay{suffix}")
    window.overlay.hide()  # the same crop without it: what the overlay is drawn over
    settle()
    save(QGuiApplication.primaryScreen().grabWindow(0).copy(crop), folder, f"overlay-hidden{suffix}")
    window.overlay.show()

    window.commands.history.trigger()
    window.history.search.setText("export")
    settle(600)
    window.history.sessions.setCurrentRow(0)
    settle()
    save(window.history.grab(), folder, f"history{suffix}")

    dialog = SettingsDialog(settings, window)
    dialog.show()
    settle()
    save(dialog.grab(), folder, f"settings{suffix}")
    dialog.close()

    window.controller.shutdown()
    journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
