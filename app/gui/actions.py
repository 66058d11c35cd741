"""Every command the user can give, as one set of QActions shared by buttons, menus and the tray.

Shortcuts are application-wide (they work from the history window too). Ctrl+R is one key for
"start or stop": it moves to whichever of the two actions can run, so the menus always show it.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenuBar, QStyle, QWidget

from app.gui.placement import Preset

START_STOP_KEY = "Ctrl+R"


class AppActions(QObject):
    def __init__(self, window: QWidget):
        super().__init__(window)
        style = window.style()

        def make(text: str, tip: str, shortcut: str = "", icon: QStyle.StandardPixmap | None = None,
                 checkable: bool = False) -> QAction:
            action = QAction(text, window, checkable=checkable)
            if icon is not None:
                action.setIcon(style.standardIcon(icon))
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
                action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            action.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
            action.setStatusTip(tip)
            window.addAction(action)  # shortcuts work even when the action is in no visible menu
            return action

        sp = QStyle.StandardPixmap
        self.start = make("Start", "Start captioning the microphone", START_STOP_KEY, sp.SP_MediaPlay)
        self.pause = make("Pause", "Pause captioning; the session stays open", "Ctrl+P",
                          sp.SP_MediaPause, checkable=True)
        self.stop = make("Stop", "Stop and save the session", "", sp.SP_MediaStop)
        self.show_overlay = make("Show captions", "Show or hide the caption overlay", "Ctrl+O",
                                 checkable=True)
        self.click_through = make("Clicks pass through captions",
                                  "Lock the captions so the mouse reaches the window underneath",
                                  "Ctrl+L", checkable=True)
        self.export = make("Export transcript…", "Save this session as text, subtitles or JSON", "Ctrl+E")
        self.history = make("History…", "Past sessions: reopen, search, rename, export", "Ctrl+H")
        self.settings = make("Settings…", "Caption look, model device and precision", "Ctrl+,")
        self.show_window = make("Show Surtitle", "Bring the main window to the front")
        self.quit = make("Quit", "Stop any session, save it and quit", "Ctrl+Q")
        self.quit.setMenuRole(QAction.MenuRole.QuitRole)

    def fill_menu_bar(self, bar: QMenuBar, on_position_chosen: Callable[[Preset], None]) -> None:
        session = bar.addMenu("&Session")
        for action in (self.start, self.pause, self.stop, None, self.export, self.history, None,
                       self.settings, None, self.quit):
            session.addSeparator() if action is None else session.addAction(action)
        captions = bar.addMenu("&Captions")
        captions.addAction(self.show_overlay)
        captions.addAction(self.click_through)
        position = captions.addMenu("Position")
        for preset, label in ((Preset.TOP, "Top of the screen"), (Preset.BOTTOM, "Bottom of the screen")):
            position.addAction(label, lambda p=preset: on_position_chosen(p))

    def move_start_stop_key(self, active: bool) -> None:
        """Ctrl+R starts when idle and stops when a session runs."""
        source, target = (self.start, self.stop) if active else (self.stop, self.start)
        source.setShortcut(QKeySequence())
        target.setShortcut(QKeySequence(START_STOP_KEY))
        target.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        for action in (source, target):
            tip = action.statusTip()
            action.setToolTip(f"{tip} ({START_STOP_KEY})" if action is target else tip)
