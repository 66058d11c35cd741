"""Input level meter: a slim bar, green while speaking, with a slowly falling peak mark.

It draws whatever level the pipeline last reported (`PipelineStatus.level_db`); a 30 Hz timer only
animates the peak's fall, so the meter costs nothing between status updates.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

FLOOR_DB = -60.0  # shown as an empty bar
HOT_DB = -6.0  # above this the bar turns amber: the input is close to clipping
PEAK_FALL_DB_PER_TICK = 0.8
TICK_MS = 33


def level_fraction(level_db: float) -> float:
    """-60 dB → 0.0, 0 dB → 1.0, linear in dB (how loud it sounds), clamped."""
    return min(1.0, max(0.0, (level_db - FLOOR_DB) / -FLOOR_DB))


class LevelMeter(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._level_db = FLOOR_DB
        self._peak_db = FLOOR_DB
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Microphone level. If it stays empty while you speak, pick another input.")
        self.setAccessibleName("Microphone level")
        self._timer = QTimer(self, interval=TICK_MS)
        self._timer.timeout.connect(self.on_timer_timeout)

    @property
    def level_db(self) -> float:
        return self._level_db

    def sizeHint(self) -> QSize:
        return QSize(160, 10)

    def set_level(self, level_db: float) -> None:
        self._level_db = max(FLOOR_DB, min(0.0, level_db))
        self._peak_db = max(self._peak_db, self._level_db)
        if not self._timer.isActive():
            self._timer.start()
        self.update()

    def reset(self) -> None:
        self._level_db = self._peak_db = FLOOR_DB
        self._timer.stop()
        self.update()

    def on_timer_timeout(self) -> None:
        self._peak_db = max(self._level_db, self._peak_db - PEAK_FALL_DB_PER_TICK)
        if self._peak_db <= FLOOR_DB:
            self._timer.stop()
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        track = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        radius = track.height() / 2
        groove = self.palette().color(QPalette.ColorRole.Mid)
        groove.setAlpha(90)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(groove)
        painter.drawRoundedRect(track, radius, radius)
        fill = QColor("#e0a030") if self._level_db > HOT_DB else QColor("#3aa55d")
        width = track.width() * level_fraction(self._level_db)
        if width > 0:
            painter.setBrush(fill)
            painter.drawRoundedRect(QRectF(track.x(), track.y(), max(width, track.height()), track.height()),
                                    radius, radius)
        peak_x = track.x() + track.width() * level_fraction(self._peak_db)
        if self._peak_db > FLOOR_DB:
            painter.setBrush(fill.darker(130))
            painter.drawRect(QRectF(peak_x - 1.5, track.y(), 3, track.height()))
        painter.end()
