"""Where the caption overlay sits: Top / Bottom / Floating, remembered separately for each screen.

A screen is identified by its name and geometry together, so a laptop panel and the projector
plugged into it keep their own placement, and a monitor that changes resolution starts fresh
instead of getting a rectangle that no longer fits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QScreen

from app.gui.settings import Settings

EDGE_MARGIN_PX = 32  # gap between a Top/Bottom overlay and the screen edge (or taskbar)
DEFAULT_WIDTH_FRACTION = 0.7  # of the screen's width, for a first placement
_GROUP = "overlay_placement"


class Preset(str, Enum):
    TOP = "top"
    BOTTOM = "bottom"
    FLOATING = "floating"


@dataclass(frozen=True)
class Placement:
    preset: Preset
    rect: QRect  # the overlay's geometry on that screen (for Top/Bottom: its last size)


def screen_key(name: str, geometry: QRect) -> str:
    # QSettings reads '/' and '\' as groups; keep the key to one flat, readable token.
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "screen"
    return f"{safe}@{geometry.width()}x{geometry.height()}{geometry.x():+d}{geometry.y():+d}"


def key_of(screen: QScreen) -> str:
    return screen_key(screen.name(), screen.geometry())


def preset_rect(preset: Preset, available: QRect, size: QSize) -> QRect:
    """Top/Bottom: centred, `EDGE_MARGIN_PX` from that edge, never wider than the screen."""
    width = min(size.width(), available.width() - 2 * EDGE_MARGIN_PX)
    height = min(size.height(), available.height())
    x = available.x() + (available.width() - width) // 2
    if preset is Preset.TOP:
        y = available.y() + EDGE_MARGIN_PX
    else:
        y = available.y() + available.height() - height - EDGE_MARGIN_PX
    return QRect(x, y, width, height)


def fit_inside(rect: QRect, available: QRect) -> QRect:
    """`rect` moved (and shrunk if need be) so that it lies on the screen."""
    width, height = min(rect.width(), available.width()), min(rect.height(), available.height())
    x = min(max(rect.x(), available.x()), available.x() + available.width() - width)
    y = min(max(rect.y(), available.y()), available.y() + available.height() - height)
    return QRect(x, y, width, height)


class PlacementStore:
    """Placement per screen key, in the settings as "preset x y w h"."""

    def __init__(self, settings: Settings):
        self._settings = settings

    def get(self, key: str) -> Placement | None:
        raw = self._settings.raw(f"{_GROUP}/{key}").split()
        try:
            preset = Preset(raw[0])
            x, y, w, h = (int(v) for v in raw[1:5])
        except (IndexError, ValueError):
            return None
        return Placement(preset, QRect(x, y, w, h))

    def set(self, key: str, placement: Placement) -> None:
        r = placement.rect
        self._settings.set_raw(f"{_GROUP}/{key}", f"{placement.preset.value} {r.x()} {r.y()} {r.width()} {r.height()}")

    def resolve(self, key: str, available: QRect, size: QSize) -> Placement:
        """The remembered placement for this screen, or Bottom at `size` the first time."""
        stored = self.get(key)
        if stored is None:
            return Placement(Preset.BOTTOM, preset_rect(Preset.BOTTOM, available, size))
        if stored.preset is Preset.FLOATING:
            return Placement(Preset.FLOATING, fit_inside(stored.rect, available))
        return Placement(stored.preset, preset_rect(stored.preset, available, stored.rect.size()))
