"""The live pipeline's vocabulary: its options, what it reports, and the listener that hears it.

Plain data and a Protocol, no behaviour: the Qt worker and `surtitle live` both import these to
talk to `app.pipeline.LivePipeline` (design note 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from app.audio.source import Source
from app.engine_options import EngineOptions
from core.words import Word


@dataclass(frozen=True)
class PipelineOptions:
    # the model and how it runs; a live engine by default: compiled where it would fall behind
    engine: EngineOptions = field(default_factory=lambda: EngineOptions(compile="auto", live=True))
    source: Source = Source.MICROPHONE
    input_device: str | int | None = None  # input device name (or part of it) or index; None: default input
    save_audio: bool = True  # record the session audio (24 kHz 16-bit WAV) next to the journal
    max_lag_s: float = 10.0  # when the engine falls further behind live than this, skip to live (a gap)
    title: str | None = None  # session title; None: "Session <date> <time>"
    status_interval_s: float = 0.5  # how often on_status reports


@dataclass(frozen=True)
class PipelineInfo:
    """Sent once by on_ready: the session is recording."""

    session_id: int
    model_name: str
    input_device: str  # the device's name as the sound system gives it
    input_rate: int  # the device's native rate, Hz (resampled to 24 kHz for the engine)
    journal_path: Path
    audio_path: Path | None  # None when audio is not saved
    delay_s: float  # the model's fixed delay: a word is final about this long after it is spoken


@dataclass(frozen=True)
class PipelineStatus:
    """Sent by on_status about twice a second."""

    session_id: int
    session_s: float  # session time so far (seconds of audio kept; pauses are cut out)
    lag_s: float  # how far the captions are behind live: audio not processed yet + the model's delay
    rtf: float  # real-time factor of the engine: compute time / audio time (must stay below 1)
    dropped_s: float  # audio never transcribed: skipped to catch up, or lost to an input overflow
    level_dbfs: float  # input RMS level of the latest 50 ms, dBFS (-100 for silence)
    peak_dbfs: float
    device_name: str
    model_name: str
    paused: bool


class PipelineListener(Protocol):
    """What a driver hears. Subclass it and override what you need: every method defaults to nothing.

    All calls come from the thread that runs the pipeline (a Qt worker turns them into signals).
    A listener that raises is logged and otherwise ignored: it cannot stop the recording.
    """

    def on_loading(self, stage: str, done: int, total: int) -> None:
        """Model loading: stage "download" (bytes) or "weights" (tensors); total 0 if unknown."""

    def on_ready(self, info: PipelineInfo) -> None:
        """Capture runs and the session is open."""

    def on_words(self, words: list[Word]) -> None:
        """Words that became final, times in session seconds; they are already queued in the journal."""

    def on_partial(self, text: str) -> None:
        """The word being formed (tentative; "" when there is none)."""

    def on_status(self, status: PipelineStatus) -> None:
        """Periodic status, about every `status_interval_s`."""

    def on_gap(self, start: float, end: float, reason: str) -> None:
        """A span of session time that was not transcribed ("skipped: lag", "dropped: overflow")."""

    def on_error(self, message: str) -> None:
        """A one-line problem; recording goes on unless on_finished follows."""

    def on_finished(self, session_id: int | None) -> None:
        """The pipeline stopped; the session (if one was started) is ended and saved."""


class SilentListener(PipelineListener):
    """Hears nothing: the default listener."""
