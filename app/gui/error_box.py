"""Errors on screen: one sentence in the status bar and in a non-modal message box.

At most one box is open; a second error while it is shown replaces its text rather than stacking
dialogs. Where a remedy exists (run on the CPU, use a local folder, pick another microphone, use
4-bit weights) the box
offers it as a button.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMainWindow, QMessageBox

from app.gui.messages import Remedy, one_line

REMEDY_LABELS = {
    Remedy.USE_CPU: "Use the CPU",
    Remedy.USE_LOCAL_FOLDER: "Choose a local folder…",
    Remedy.CHOOSE_INPUT: "Choose a microphone",
    Remedy.USE_INT4: "Use 4-bit weights",
}
STATUS_TIMEOUT_MS = 30_000


class ErrorReporter(QObject):
    def __init__(self, window: QMainWindow, on_remedy: Callable[[Remedy], None]):
        super().__init__(window)
        self._window = window
        self._on_remedy = on_remedy
        self.dialog: QMessageBox | None = None
        self.last_message = ""

    def show(self, message: str, remedy: Remedy = Remedy.NONE) -> None:
        message = one_line(message)
        self.last_message = message
        self._window.statusBar().showMessage(message, STATUS_TIMEOUT_MS)
        if self.dialog is None:
            self.dialog = QMessageBox(QMessageBox.Icon.Warning, "Surtitle", message,
                                      QMessageBox.StandardButton.Close, self._window)
            self.dialog.setModal(False)
            self.dialog.finished.connect(self.on_dialog_finished)
        else:
            self.dialog.setText(message)
            for button in self.dialog.buttons():
                if self.dialog.buttonRole(button) == QMessageBox.ButtonRole.AcceptRole:
                    self.dialog.removeButton(button)
        if remedy is not Remedy.NONE:
            button = self.dialog.addButton(REMEDY_LABELS[remedy], QMessageBox.ButtonRole.AcceptRole)
            button.clicked.connect(lambda: self._on_remedy(remedy))
            self.dialog.setDefaultButton(button)
        self.dialog.open()

    def on_dialog_finished(self, _result: int) -> None:
        self.dialog.deleteLater()
        self.dialog = None
