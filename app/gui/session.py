"""One live session's lifecycle: the worker, its QThread, and the state the buttons follow.

The worker and its thread are created per session and deleted by Qt when the thread ends
(`deleteLater`); this object is the one long-lived place the windows connect to, and it re-emits
the worker's signals so views never hold on to a worker that may already be gone.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal

from app.gui.qt_signals import emit
from app.gui.worker import NO_SESSION, PipelineFactory, TranscriptionWorker, default_pipeline_factory

log = logging.getLogger(__name__)


class SessionState(Enum):
    IDLE = "idle"
    LOADING = "loading"  # the model is being downloaded or read
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"  # asked to stop; the last words are being flushed and saved


class SessionController(QObject):
    state_changed = Signal(object)  # SessionState
    loading_progressed = Signal(str, "qint64", "qint64")
    ready = Signal(object)
    words_received = Signal(list)
    partial_changed = Signal(str)
    status_changed = Signal(object)
    gap_recorded = Signal(float, float, str)
    error_occurred = Signal(str)
    remedy_offered = Signal(str)
    finished = Signal(int)  # the session is over and its thread is gone: session id or NO_SESSION

    def __init__(self, pipeline_factory: PipelineFactory = default_pipeline_factory,
                 parent: QObject | None = None):
        super().__init__(parent)
        self._factory = pipeline_factory
        self._state = SessionState.IDLE
        self._thread: QThread | None = None
        self._worker: TranscriptionWorker | None = None
        self._session_id = NO_SESSION
        self.options: Any = None  # of the session running now (or last run)

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def is_active(self) -> bool:
        return self._state is not SessionState.IDLE

    @property
    def session_id(self) -> int:
        """The journal id of the live session once the pipeline has told us; else NO_SESSION."""
        return self._session_id

    def start(self, options: Any) -> None:
        if self.is_active:
            raise RuntimeError("a session is already running")
        self.options = options
        self._session_id = NO_SESSION
        worker = TranscriptionWorker(options, self._factory)
        thread = QThread(self)
        thread.setObjectName("transcription")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Direct: QThread.quit is thread-safe, and queued to the GUI thread it could never run while
        # shutdown() blocks that thread in wait().
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        worker.finished.connect(worker.deleteLater)
        # thread.deleteLater is called by on_thread_finished, after wait(): connected here, the
        # deferred delete could run before that slot and leave it a deleted thread.
        # Forwarded signal to signal: Qt queues them to this (GUI) thread.
        for name in ("loading_progressed", "words_received", "partial_changed", "status_changed",
                     "gap_recorded", "error_occurred", "remedy_offered"):
            getattr(worker, name).connect(getattr(self, name))
        worker.ready.connect(self.on_worker_ready)
        worker.finished.connect(self.on_worker_finished)
        thread.finished.connect(self.on_thread_finished)
        self._worker, self._thread = worker, thread
        self._set_state(SessionState.LOADING)
        thread.start()

    def stop(self) -> None:
        """Ask the session to end; `finished` follows once its last words are saved."""
        if self._worker is None or self._state is SessionState.STOPPING:
            return
        self._worker.request_stop()
        self._set_state(SessionState.STOPPING)

    def set_paused(self, paused: bool) -> None:
        if self._worker is None or self._state not in (SessionState.RUNNING, SessionState.PAUSED):
            return
        self._worker.set_paused(paused)
        self._set_state(SessionState.PAUSED if paused else SessionState.RUNNING)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """At application exit only: stop and block until the thread ends (or give up)."""
        if self._thread is None:
            return
        self.stop()
        if not self._thread.wait(timeout_ms):
            log.error("the transcription thread did not stop within %d ms", timeout_ms)

    def on_worker_ready(self, info: Any) -> None:
        self._session_id = int(getattr(info, "session_id", NO_SESSION) or NO_SESSION)
        if self._state is SessionState.LOADING:
            self._set_state(SessionState.RUNNING)
        emit(self.ready, info)

    def on_worker_finished(self, session_id: int) -> None:
        if session_id != NO_SESSION:
            self._session_id = session_id

    def on_thread_finished(self) -> None:
        # QThread.finished is emitted from the thread just before it exits: wait for the exit
        # before the thread object may be deleted.
        if self._thread is not None:
            self._thread.wait()
            self._thread.deleteLater()
        self._worker = self._thread = None
        self._set_state(SessionState.IDLE)
        emit(self.finished, self._session_id)

    def _set_state(self, state: SessionState) -> None:
        if state is not self._state:
            self._state = state
            emit(self.state_changed, state)
