"""A stand-in for `app.pipeline.LivePipeline`: the real listener interface, scripted by the test.

`load()` reports download and weight-loading progress; `run()` opens the session (on_ready), then
runs the commands the test pushes (each a function of the pipeline) until stop is set, flushes its
last words and ends the session, as the real pipeline does. With a journal it writes words there too, so history
and export read what a real session would leave behind.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

from app.pipeline_types import PipelineInfo, PipelineStatus
from core.words import Word


def status(lag_s=0.5, rtf=0.3, dropped_s=0.0, level_dbfs=-20.0, paused=False) -> PipelineStatus:
    return PipelineStatus(session_id=7, session_s=1.0, lag_s=lag_s, rtf=rtf, dropped_s=dropped_s,
                          level_dbfs=level_dbfs, peak_dbfs=level_dbfs + 3, device_name="Test mic",
                          model_name="kyutai/stt-1b-en_fr-trfs", paused=paused)


def words(*texts, start=0.0, step=0.5):
    return [Word(t, start + i * step, start + i * step + 0.4) for i, t in enumerate(texts)]


@dataclass
class FakePipeline:
    options: object
    listener: object
    journal: object = None
    flush_words: list = field(default_factory=list)  # "said" at stop, like the engine's flush
    load_error: BaseException | None = None
    commands: queue.Queue = field(default_factory=queue.Queue)
    load_gate: threading.Event | None = None  # when set by the test, load() waits for it
    paused_seen: list = field(default_factory=list)
    session_id: int = 7
    released: bool = False  # release() was called: done without a session

    def push(self, command) -> None:
        self.commands.put(command)

    def open_input(self) -> None:
        pass  # the test's microphone is always there

    def load(self) -> None:
        self.listener.on_loading("download", 1_350_000_000, 2_700_000_000)
        if self.load_gate is not None:
            self.load_gate.wait(10)
        if self.load_error is not None:
            raise self.load_error
        self.listener.on_loading("weights", 2, 2)

    def release(self) -> None:
        self.released = True

    def run(self, stop: threading.Event, pause: threading.Event | None = None) -> None:
        # As the real pipeline: the session opens (and on_ready comes) inside run, not load.
        if self.journal is not None:
            self.session_id = self.journal.start_session(getattr(self.options, "model", "fake"), "Test mic")
        self.listener.on_ready(PipelineInfo(self.session_id, "kyutai/stt-1b-en_fr-trfs", "Test mic", 48_000,
                                            Path("journal.sqlite3"), None, 0.5))
        while not (stop.is_set() and self.commands.empty()):
            try:
                command = self.commands.get(timeout=0.01)  # a worker-thread wait, not a test sleep
            except queue.Empty:
                continue
            self.paused_seen.append(bool(pause and pause.is_set()))
            command(self)
        if self.flush_words:
            self.say(self.flush_words)
        if self.journal is not None:
            self.journal.end_session(self.session_id)
        self.listener.on_finished(self.session_id)

    # Helpers the pushed commands use, from the worker thread.
    def say(self, new_words) -> None:
        if self.journal is not None:
            self.journal.add_words(self.session_id, new_words)
            self.journal.commit()
        self.listener.on_words(list(new_words))


class FakePipelineFactory:
    """Builds FakePipelines and keeps the latest, so the test can drive it."""

    def __init__(self, journal=None, **kwargs):
        self.journal = journal
        self.kwargs = kwargs
        self.created: list[FakePipeline] = []
        self.made = threading.Event()

    def __call__(self, options, listener) -> FakePipeline:
        pipeline = FakePipeline(options, listener, self.journal, **self.kwargs)
        self.created.append(pipeline)
        self.made.set()
        return pipeline

    @property
    def latest(self) -> FakePipeline:
        assert self.made.wait(5), "no pipeline was created"
        return self.created[-1]
