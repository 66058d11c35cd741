"""History: every past session from the journal, reopened, searched, renamed, deleted, exported.

It reads the journal from the GUI thread through its own connection; sessions are small and the
journal's full-text index makes search instant, so nothing here needs a thread.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QHBoxLayout, QInputDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QMessageBox, QPushButton, QSplitter, QVBoxLayout, QWidget)

from app.gui.exporting import Exporter, session_export
from app.gui.transcript_view import TranscriptView, clock

log = logging.getLogger(__name__)

SEARCH_DELAY_MS = 250  # wait for a pause in typing before searching
_SESSION_ROLE = Qt.ItemDataRole.UserRole
_TIME_ROLE = Qt.ItemDataRole.UserRole + 1


def when(value: Any) -> str:
    """A journal timestamp (epoch seconds, datetime or ISO text) as 'Tue 3 Mar 2026, 14:05'."""
    if value is None or value == "":
        return ""
    try:
        if isinstance(value, (int, float)):
            moment = dt.datetime.fromtimestamp(value)
        elif isinstance(value, dt.datetime):
            moment = value
        else:
            moment = dt.datetime.fromisoformat(str(value))
    except (ValueError, OSError, OverflowError):
        return str(value)
    return f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M}"


def _duration(session: Any) -> str:
    start, end = getattr(session, "started_at", None), getattr(session, "ended_at", None)
    if isinstance(start, (int, float)) and isinstance(end, (int, float)) and end >= start:
        return clock(end - start)
    return ""


class HistoryWindow(QWidget):
    def __init__(self, journal: Any, exporter: Exporter, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Surtitle · History")
        self.resize(960, 620)
        self._journal = journal
        self._exporter = exporter
        self._live_id: int | None = None  # the session being recorded: not deletable
        self._current: Any = None  # SessionInfo shown on the right

        self.search = QLineEdit(placeholderText="Search all sessions…", clearButtonEnabled=True)
        self.search.setAccessibleName("Search all sessions")
        self.sessions = QListWidget()
        self.sessions.setAccessibleName("Sessions")
        self.sessions.setWordWrap(True)
        self.sessions.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.sessions.setSpacing(2)
        self.empty = QLabel("No sessions yet. Each time you press Start, the session is saved here.",
                            wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.header = QLabel(textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.header.setWordWrap(True)
        self.transcript = TranscriptView()
        self.transcript.set_empty_message("Pick a session on the left", "Its transcript shows here.")
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete…")
        self.export_button = QPushButton("Export…")
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._layout()

        self.search.textChanged.connect(self.on_search_text_changed)
        self._search_timer.timeout.connect(self.refresh)
        self.sessions.currentItemChanged.connect(self.on_sessions_current_item_changed)
        self.rename_button.clicked.connect(self.on_rename_button_clicked)
        self.delete_button.clicked.connect(self.on_delete_button_clicked)
        self.export_button.clicked.connect(self.on_export_button_clicked)
        self.refresh()

    def _layout(self) -> None:
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(12, 12, 6, 12)
        left_layout.addWidget(self.search)
        left_layout.addWidget(self.sessions, 1)
        left_layout.addWidget(self.empty, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(6, 12, 12, 12)
        right_layout.addWidget(self.header)
        right_layout.addWidget(self.transcript, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.rename_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        right_layout.addLayout(buttons)
        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([320, 640])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    # ---- listing and search -----------------------------------------------------------------

    def set_live_session(self, session_id: int | None) -> None:
        self._live_id = session_id
        self._update_buttons()

    def refresh(self) -> None:
        """Re-read the list (or the search hits), keeping the selected session when it is still there."""
        keep = self._current.id if self._current is not None else None
        query = self.search.text().strip()
        self.sessions.blockSignals(True)
        self.sessions.clear()
        if query:
            for hit in self._journal.search(query):
                item = QListWidgetItem(f"{hit.title} · {clock(hit.start)}\n{hit.snippet}")
                item.setData(_SESSION_ROLE, hit.session_id)
                item.setData(_TIME_ROLE, float(hit.start))
                self.sessions.addItem(item)
        else:
            for session in sorted(self._journal.sessions(), key=lambda s: s.id, reverse=True):
                self.sessions.addItem(self._session_item(session))
        self.sessions.blockSignals(False)
        self.empty.setText(f"Nothing matches “{query}”." if query else
                           "No sessions yet. Each time you press Start, the session is saved here.")
        self.empty.setVisible(self.sessions.count() == 0)
        self.sessions.setVisible(self.sessions.count() > 0)
        self._select(keep)

    def _session_item(self, session: Any) -> QListWidgetItem:
        details = [when(session.started_at)]
        if session.id == self._live_id:
            details.append("recording now")
        elif getattr(session, "ended_at", None) is None:
            details.append("interrupted")
        elif duration := _duration(session):
            details.append(duration)
        item = QListWidgetItem(f"{session.title or 'Untitled session'}\n{' · '.join(d for d in details if d)}")
        item.setData(_SESSION_ROLE, session.id)
        item.setToolTip(f"Model: {getattr(session, 'model', '')}")
        return item

    def _select(self, session_id: int | None) -> None:
        for row in range(self.sessions.count()):
            if self.sessions.item(row).data(_SESSION_ROLE) == session_id:
                self.sessions.setCurrentRow(row)
                return
        self.open_session(None)

    def on_search_text_changed(self, _text: str) -> None:
        self._search_timer.start()

    def on_sessions_current_item_changed(self, item: QListWidgetItem | None, _previous) -> None:
        if item is None:
            return
        self.open_session(item.data(_SESSION_ROLE))
        hit_time = item.data(_TIME_ROLE)
        if hit_time is not None:
            self.transcript.scroll_to_time(float(hit_time))

    # ---- one session ------------------------------------------------------------------------

    def open_session(self, session_id: int | None) -> None:
        """Show a session's transcript on the right (None: nothing selected)."""
        self._current = next((s for s in self._journal.sessions() if s.id == session_id), None)
        if self._current is None:
            self.header.clear()
            self.transcript.clear()
        else:
            session = self._current
            self.header.setText(f"<b>{_escape(session.title or 'Untitled session')}</b><br>"
                                f"{when(session.started_at)} · {_escape(str(getattr(session, 'model', '')))}")
            self.transcript.set_words(self._journal.words(session.id))
            self.transcript.set_empty_message("No words in this session", "Nothing was said, or it was "
                                              "stopped before the first word.")
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = self._current is not None
        writable = self._journal.writable
        self.rename_button.setEnabled(has and writable)
        self.export_button.setEnabled(has)
        self.delete_button.setEnabled(has and writable and self._current.id != self._live_id)
        if not writable:
            why = "The session journal can only be read just now (see the message in the main window)."
        elif has and self._current.id == self._live_id:
            why = "Stop the session before deleting it."
        else:
            why = ""
        self.delete_button.setToolTip(why)
        self.rename_button.setToolTip(why if not writable else "")

    def rename_current(self, title: str) -> None:
        if self._current is not None and title.strip():
            self._journal.rename(self._current.id, title.strip())
            self.refresh()

    def delete_current(self) -> None:
        if self._current is not None and self._current.id != self._live_id:
            self._journal.delete(self._current.id)
            self._current = None
            self.refresh()

    def on_rename_button_clicked(self) -> None:
        if self._current is None:
            return
        title, ok = QInputDialog.getText(self, "Rename session", "Title:", text=self._current.title or "")
        if ok:
            self.rename_current(title)

    def on_delete_button_clicked(self) -> None:
        if self._current is not None and confirm_delete(self, self._current.title):
            self.delete_current()

    def on_export_button_clicked(self) -> None:
        if self._current is None:
            return
        found = session_export(self._journal, self._current.id)
        if found is not None:
            self._exporter.export(self, *found)


def confirm_delete(parent: QWidget, title: str) -> bool:
    box = QMessageBox(QMessageBox.Icon.Question, "Delete session",
                      f"Delete “{title}”, its transcript and its audio? This cannot be undone.",
                      QMessageBox.StandardButton.Cancel, parent)
    delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is delete


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

