"""The overlay's right-click menu: position presets, lines, text size, click-through, hide.

Everything it changes goes through the settings, so the main window's actions, the settings dialog
and the overlay itself stay in step.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QWidget

from app.gui.placement import Preset
from app.gui.settings import Key, Settings

PRESET_LABELS = ((Preset.TOP, "Top of the screen"), (Preset.BOTTOM, "Bottom of the screen"),
                 (Preset.FLOATING, "Floating (where I drag it)"))


def show_overlay_menu(parent: QWidget, settings: Settings, current: Preset,
                      apply_preset: Callable[[Preset], None], at: QPoint) -> None:
    menu = QMenu(parent)
    group = QActionGroup(menu)
    for preset, label in PRESET_LABELS:
        action = QAction(label, menu, checkable=True, checked=preset is current)
        action.triggered.connect(lambda _=False, p=preset: apply_preset(p))
        group.addAction(action)
        menu.addAction(action)
    menu.addSeparator()
    for label, key, step in (("More lines", Key.OVERLAY_LINES, +1), ("Fewer lines", Key.OVERLAY_LINES, -1),
                             ("Larger text", Key.OVERLAY_FONT_SIZE, +2), ("Smaller text", Key.OVERLAY_FONT_SIZE, -2)):
        action = menu.addAction(label)
        action.triggered.connect(lambda _=False, k=key, s=step: settings.set_value(k, int(settings.value(k)) + s))
    menu.addSeparator()
    lock = menu.addAction("Let clicks pass through (unlock with Ctrl+L or the tray)")
    lock.triggered.connect(lambda: settings.set_value(Key.OVERLAY_CLICK_THROUGH, True))
    hide = menu.addAction("Hide captions (Ctrl+O shows them again)")
    hide.triggered.connect(lambda: settings.set_value(Key.OVERLAY_VISIBLE, False))
    menu.exec(at)
