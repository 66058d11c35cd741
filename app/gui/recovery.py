"""A banner offering to recover sessions that were cut off (the app was killed mid-session).

Non-modal: it sits above the transcript until the user answers, so starting a new session is never
blocked by a question about an old one. The journal already holds every word that was shown;
`app.recovery` closes such a session properly (end time, audio file header) so it lists like any
other.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from app.gui.messages import describe
from app.gui.qt_signals import emit
from app.recovery import recover_unfinished

log = logging.getLogger(__name__)


class RecoveryBanner(QFrame):
    history_requested = Signal()
    recovered = Signal(list)  # ids of the sessions recovered

    def __init__(self, journal: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")  # styled by resources/style.qss
        self._journal = journal
        self._pending: list[int] = []
        self.message = QLabel(wordWrap=True)
        self.recover_button = QPushButton("Recover")
        self.open_button = QPushButton("Open History")
        self.dismiss_button = QPushButton("Not now")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 8, 12, 8)
        layout.addWidget(self.message, 1)
        for button in (self.recover_button, self.open_button, self.dismiss_button):
            layout.addWidget(button)
        self.recover_button.clicked.connect(self.on_recover_button_clicked)
        self.open_button.clicked.connect(self.history_requested)
        self.dismiss_button.clicked.connect(self.hide)
        self.hide()

    def check(self) -> None:
        """Show the offer if the journal holds unfinished sessions (call once, at start-up); none
        while the journal can only be read, since recovering writes it (and the sessions' audio)."""
        if not self._journal.writable:
            self.hide()
            return
        try:
            self._pending = [s.id for s in self._journal.unfinished()]
        except Exception:  # a damaged journal must not stop the app from opening
            log.exception("could not look for interrupted sessions")
            self._pending = []
        if not self._pending:
            self.hide()
            return
        count = len(self._pending)
        self.message.setText(
            f"{'A session was' if count == 1 else f'{count} sessions were'} interrupted when Surtitle "
            "closed unexpectedly. Every word shown was saved.")
        self.recover_button.show()
        self.open_button.hide()
        self.dismiss_button.setText("Not now")
        self.show()

    def on_recover_button_clicked(self) -> None:
        try:
            done = [session.id for session in recover_unfinished(self._journal)]
            failure = ""
        except Exception as exc:  # a journal error: say it, keep the app usable
            log.exception("recovering interrupted sessions failed")
            done, failure = [], f" {describe(exc).text}"
        self._pending = []
        one = len(done) == 1
        text = f"Recovered {len(done)} session{'' if one else 's'}; find {'it' if one else 'them'} in History."
        text += failure
        self.message.setText(text)
        self.recover_button.hide()
        self.open_button.show()
        self.dismiss_button.setText("Close")
        emit(self.recovered, done)
