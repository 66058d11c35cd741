"""How captions look: a rounded translucent box, outlined text, the tentative word dimmer.

Drawing only; what to draw comes from `CaptionBuffer` and the overlay's settings (`CaptionStyle`).
Letters are filled paths stroked with a dark edge first, so white text stays readable over a
white video frame and the box can stay light enough to see through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRect, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen

from app.gui.captions import CaptionLine

EMPTY_OPACITY_FRACTION = 0.35  # with no captions the box fades, but stays visible enough to grab
PARTIAL_ALPHA = 150  # the tentative word: readable, clearly not final yet
MAX_RADIUS_PX = 14.0
HINT = "Captions appear here · drag to move · right-click for options"


@dataclass(frozen=True)
class CaptionStyle:
    font: QFont
    text: QColor
    background: QColor  # its alpha is the configured opacity
    outline: bool
    rows: int  # lines the box has room for; text sits on the last rows

    @property
    def padding(self) -> tuple[float, float]:
        """(horizontal, vertical) space between the box's edge and the text."""
        size = QFontMetricsF(self.font).height()
        return size * 0.6, size * 0.3

    @property
    def line_height(self) -> float:
        return QFontMetricsF(self.font).lineSpacing()

    def height_for(self, rows: int) -> int:
        return round(2 * self.padding[1] + rows * self.line_height)


def paint_captions(painter: QPainter, rect: QRect, style: CaptionStyle, lines: Sequence[CaptionLine],
                   hint: bool) -> None:
    """The box, then the lines (bottom-aligned), or the hint when there is nothing to show."""
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    background = QColor(style.background)
    if not lines and not hint:
        background.setAlpha(round(background.alpha() * EMPTY_OPACITY_FRACTION))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(background)
    radius = min(MAX_RADIUS_PX, rect.height() / 4)
    painter.drawRoundedRect(rect.adjusted(1, 1, -1, -1), radius, radius)
    if lines:
        _paint_lines(painter, style, lines)
    elif hint:
        _paint_hint(painter, rect, style.font)


def _paint_lines(painter: QPainter, style: CaptionStyle, lines: Sequence[CaptionLine]) -> None:
    pad_x, pad_y = style.padding
    metrics = QFontMetricsF(style.font)
    partial_color = QColor(style.text)
    partial_color.setAlpha(PARTIAL_ALPHA)
    first_row = style.rows - len(lines)  # the newest line sits on the last row
    for row, line in enumerate(lines, start=first_row):
        baseline = QPointF(pad_x, pad_y + row * style.line_height + metrics.ascent())
        _paint_text(painter, style, baseline, line.final, style.text)
        if line.partial:
            gap = metrics.horizontalAdvance(line.final + " ") if line.final else 0.0
            _paint_text(painter, style, baseline + QPointF(gap, 0), line.partial, partial_color)


def _paint_text(painter: QPainter, style: CaptionStyle, baseline: QPointF, text: str, color: QColor) -> None:
    if not text:
        return
    path = QPainterPath()
    path.addText(baseline, style.font, text)
    if style.outline:
        edge = QColor(0, 0, 0, round(0.85 * color.alpha()))
        width = max(2.0, style.font.pointSizeF() / 8)
        painter.strokePath(path, QPen(edge, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                                      Qt.PenJoinStyle.RoundJoin))
    painter.fillPath(path, color)


def _paint_hint(painter: QPainter, rect: QRect, font: QFont) -> None:
    hint_font = QFont(font)
    hint_font.setPointSizeF(max(10.0, font.pointSizeF() * 0.5))
    hint_font.setWeight(QFont.Weight.Normal)
    painter.setFont(hint_font)
    painter.setPen(QColor(255, 255, 255, 200))
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, HINT)
