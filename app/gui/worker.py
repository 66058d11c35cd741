"""Runs one live session off the GUI thread: `LivePipeline` driven inside a QThread.

The only module that touches both Qt and the engine. The pipeline is Qt-free and calls a
listener from this thread; `_SignalListener` turns each call into a signal, which Qt queues to the
GUI thread. `run` blocks for the whole session and never returns to the thread's event loop, so
stop and pause are `threading.Event`s the GUI thread sets directly: a queued slot would never run.

Wiring (as in buzz): thread.started -> worker.run; worker.finished -> thread.quit and
worker.deleteLater; once the thread has finished, it is deleted too. `SessionController` does it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal, Slot

from app.gui.messages import Remedy, as_sentence, describe, remedy_for_message
from app.gui.qt_signals import emit
from app.model_loading import could_run_faster

log = logging.getLogger(__name__)

NO_SESSION = -1  # finished() when no session was opened (the model never loaded)


class Pipeline(Protocol):
    """What the worker needs of `app.pipeline.LivePipeline`."""

    def open_input(self) -> None: ...
    def load(self) -> None: ...
    def run(self, stop: threading.Event, pause: threading.Event | None = None) -> None: ...
    def release(self) -> None: ...


PipelineFactory = Callable[[Any, Any], Pipeline]  # (PipelineOptions, listener) -> pipeline


def default_pipeline_factory(options: Any, listener: Any, journal: Any = None, engines: Any = None) -> Pipeline:
    """A LivePipeline; `engines` (app.model_loading.KeptEngine) keeps the engine between sessions."""
    from app.pipeline import LivePipeline  # imported here: the engine loads only when a session starts

    extra: dict[str, Any] = {}
    if journal is not None:
        extra["journal"] = journal
    if engines is not None:
        extra["transcriber_factory"] = engines
    return LivePipeline(options, listener, **extra)


def pipeline_factory_for(journal: Any, engines: Any = None) -> PipelineFactory:
    """Sessions written to `journal`, the same one History reads (it serves both threads), with
    their engine from `engines` when given, so that a second Start does not load the model again."""
    return lambda options, listener: default_pipeline_factory(options, listener, journal, engines)


class TranscriptionWorker(QObject):
    # stage, done, total; 64-bit because a model download counts bytes (2.7 GB > Qt's int)
    loading_progressed = Signal(str, "qint64", "qint64")
    ready = Signal(object)  # whatever the pipeline reports once the model is loaded
    words_received = Signal(list)  # list[core.words.Word], final
    partial_changed = Signal(str)  # the word being formed ("" when none)
    status_changed = Signal(object)  # PipelineStatus
    gap_recorded = Signal(float, float, str)  # start_s, end_s, reason: audio that was not transcribed
    error_occurred = Signal(str)  # one sentence
    remedy_offered = Signal(str)  # a `Remedy` value, just before the error_occurred it belongs to
    finished = Signal(int)  # session id, or NO_SESSION

    def __init__(self, options: Any, pipeline_factory: PipelineFactory = default_pipeline_factory):
        super().__init__()
        self._options = options
        self._factory = pipeline_factory
        self._stop = threading.Event()
        self._pause = threading.Event()
        self._session_id = NO_SESSION

    # Called from the GUI thread: they only set events, which is thread-safe.
    def request_stop(self) -> None:
        self._stop.set()

    def set_paused(self, paused: bool) -> None:
        (self._pause.set if paused else self._pause.clear)()

    @Slot()
    def run(self) -> None:
        listener = _SignalListener(self)
        try:
            pipeline = self._factory(self._options, listener)
            listener.engine = lambda: getattr(pipeline, "transcriber", None)
            pipeline.open_input()  # no microphone: said at once, before a model load of many seconds
            pipeline.load()
            if not self._stop.is_set():
                pipeline.run(self._stop, self._pause)
            else:  # Stop pressed while the model was loading: no session, but keep the engine loaded
                pipeline.release()
        except Exception as exc:  # the one place the worker catches everything: log it, say it
            log.exception("live session failed")
            message = describe(exc)
            if message.remedy is not Remedy.NONE:
                emit(self.remedy_offered, message.remedy.value)
            emit(self.error_occurred, message.text)
        finally:
            emit(self.finished, self._session_id)

    def _on_session_finished(self, session_id: int) -> None:
        self._session_id = session_id


class _SignalListener:
    """`PipelineListener` whose callbacks emit the worker's signals (from the worker thread)."""

    def __init__(self, worker: TranscriptionWorker):
        self._worker = worker
        self.engine: Callable[[], object] = lambda: None  # the session's transcriber, once loaded
        self._advised = False

    def on_loading(self, stage: str, done: int, total: int) -> None:
        emit(self._worker.loading_progressed, stage, int(done), int(total))

    def on_ready(self, info: Any) -> None:
        emit(self._worker.ready, info)

    def on_words(self, words: list) -> None:
        if words:
            emit(self._worker.words_received, list(words))

    def on_partial(self, text: str) -> None:
        emit(self._worker.partial_changed, text)

    def on_status(self, status: Any) -> None:
        emit(self._worker.status_changed, status)

    def on_gap(self, start: float, end: float, reason: str) -> None:
        emit(self._worker.gap_recorded, float(start), float(end), reason)
        if "lag" in reason and not self._advised:  # once a session: the gaps themselves are in the transcript
            self._advised = True
            if could_run_faster(self.engine()):
                emit(self._worker.remedy_offered, Remedy.USE_INT4.value)
                emit(self._worker.error_occurred, "Captions fall behind on this CPU with 8-bit weights; 4-bit "
                     "weights run faster, a little less precisely (from the next session).")

    def on_error(self, message: str) -> None:
        remedy = remedy_for_message(message)
        if remedy is not Remedy.NONE:
            emit(self._worker.remedy_offered, remedy.value)
        emit(self._worker.error_occurred, as_sentence(message))

    def on_finished(self, session_id: int | None) -> None:
        self._worker._on_session_finished(NO_SESSION if session_id is None else session_id)


def options_from_settings(settings: Any, input_device: str) -> Any:
    """The `PipelineOptions` for a session started now with the user's settings."""
    from app.engine_options import EngineOptions
    from app.gui.settings import Key
    from app.audio.source import Source
    from app.pipeline_types import PipelineOptions

    device = str(settings.value(Key.COMPUTE_DEVICE))
    engine = EngineOptions(
        model=str(settings.value(Key.MODEL)),
        device=None if device == "auto" else device,
        quantize=None if settings.value(Key.PRECISION) == "full" else str(settings.value(Key.PRECISION)),
        compile={"auto": "auto", "always": True, "never": False}[str(settings.value(Key.COMPILE))],
        live=True,
    )
    return PipelineOptions(engine, source=Source(settings.value(Key.SOURCE)), input_device=input_device or None,
                           save_audio=bool(settings.value(Key.SAVE_AUDIO)),
                           max_lag_s=float(settings.value(Key.MAX_LAG_S)))
