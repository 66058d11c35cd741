"""The tray icon: the way back to the window, and out of click-through, when the overlay is all
that is on screen. Only where the desktop has a tray (`isSystemTrayAvailable`)."""

from __future__ import annotations

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from app.gui.actions import AppActions


def make_tray(actions: AppActions, icon: QIcon, parent: QWidget) -> QSystemTrayIcon | None:
    if not QSystemTrayIcon.isSystemTrayAvailable():
        return None
    tray = QSystemTrayIcon(icon, parent)
    tray.setToolTip("Surtitle live captions")
    menu = QMenu(parent)
    menu.addAction(actions.show_window)
    menu.addSeparator()
    for action in (actions.start, actions.pause, actions.stop):
        menu.addAction(action)
    menu.addSeparator()
    menu.addAction(actions.show_overlay)
    menu.addAction(actions.click_through)
    menu.addSeparator()
    menu.addAction(actions.quit)
    tray.setContextMenu(menu)

    def on_tray_activated(reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            actions.show_window.trigger()

    tray.activated.connect(on_tray_activated)
    tray.show()
    return tray
