"""Device samples → session audio and final words, with the session timeline kept whole.

Session time is the timeline of the session audio file: 24 kHz samples kept so far / 24000. All
words and gaps are in session time. The engine's own clock restarts whenever it is reset (after a
skip, a dropped stretch or a pause), so each such *segment* adds its start offset to the engine's
word times.

Every sample is rounded to 16 bits before anything else, then saved, then (unless it is being
skipped) given to the engine: the file holds exactly what the model heard.

- Falling behind (`catch_up`): the engine is flushed (words it already heard are kept), the backlog
  is saved without being transcribed, a "skipped: lag" gap is recorded, the engine restarts at live.
- Samples the ring overwrote before we read them: silence in the file, a "dropped: overflow" gap.
- Pause: what was captured before the pause is finished; what comes during it is not kept at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import numpy as np
import soxr

from app.audio.ring import AudioRing
from app.model_loading import Transcriber
from app.session_audio import SessionAudio, SessionAudioError, pcm16_to_float, to_pcm16
from core.words import Word

CHUNK_S = 0.5  # most device audio handled per step: bounded work between the caller's checks


class RecorderSink(Protocol):
    """Where the recorder's results go (the pipeline: journal and listener)."""

    def words_final(self, words: list[Word]) -> None: ...
    def partial_changed(self, text: str) -> None: ...
    def gap(self, start: float, end: float, reason: str) -> None: ...
    def audio_failed(self, error: SessionAudioError) -> None: ...


class SessionRecorder:
    def __init__(self, transcriber: Transcriber, device_rate: int, audio: SessionAudio | None, sink: RecorderSink):
        self.transcriber = transcriber
        self.device_rate = device_rate
        self.engine_rate = transcriber.sample_rate
        self.audio = audio
        self._sink = sink
        self._chunk = round(CHUNK_S * device_rate)
        self._silence = np.zeros(self._chunk, dtype=np.float32)
        self.next_index = 0  # absolute ring index of the next device sample to handle
        self.samples = 0  # session samples (engine rate) kept so far = frames in the audio file
        self.skipped_s = 0.0  # session time in gaps: kept in the audio file, not transcribed
        self.compute_s = 0.0  # engine time spent, and the audio it covered (for the real-time factor)
        self.computed_audio_s = 0.0
        self._segment_offset_s = 0.0
        self._segment_samples = 0
        self._partial = ""
        self._new_resampler()
        transcriber.reset()  # a pipeline records many sessions with one engine: start each clean

    @property
    def session_s(self) -> float:
        return self.samples / self.engine_rate

    # -- the steady path --------------------------------------------------------------------------

    def handle(self, start: int, block: np.ndarray) -> None:
        """Device samples read from the ring at absolute index `start`."""
        if start > self.next_index:  # the ring overwrote samples before we came for them
            lost = start - self.next_index
            self._skip("dropped: overflow", lambda: self._silent(lost))
        self.next_index = start + len(block)
        self._consume(self._resample(block), transcribe=True)

    def backlog_s(self, ring: AudioRing) -> float:
        return (ring.written - self.next_index) / self.device_rate

    def catch_up(self, ring: AudioRing, max_lag_s: float) -> None:
        """Skip to live when the backlog is longer than `max_lag_s`."""
        if self.backlog_s(ring) <= max_lag_s:
            return
        target = ring.written

        def keep_backlog_untranscribed() -> None:
            while self.next_index < target:
                start, block = ring.read(min(self._chunk, target - self.next_index), timeout=0)
                if start > self.next_index:
                    self._silent(start - self.next_index)
                if not len(block):
                    return
                self.next_index = start + len(block)
                self._consume(self._resample(block), transcribe=False)

        self._skip("skipped: lag", keep_backlog_untranscribed)

    def drain(self, ring: AudioRing, max_lag_s: float) -> None:
        """Handle every sample the ring holds now (skipping, as always, if that is too far behind)."""
        until = ring.written
        while self.next_index < until:
            self.catch_up(ring, max_lag_s)
            start, block = ring.read(min(self._chunk, until - self.next_index), timeout=0)
            if not len(block):
                return
            self.handle(start, block)

    def discard(self, start: int, block: np.ndarray) -> None:
        """Samples read while paused: heard by nobody, not part of the session."""
        self.next_index = start + len(block)

    # -- pauses and the end -----------------------------------------------------------------------

    def pause(self, ring: AudioRing, max_lag_s: float) -> None:
        """Finish what was captured before the pause: its words become final now."""
        self.drain(ring, max_lag_s)
        self._flush_resampler()
        self._end_segment()

    def resume(self, ring: AudioRing) -> None:
        """Start again at live; what the ring got during the pause is dropped unheard."""
        ring.skip()
        self.next_index = ring.read_index
        self._new_resampler()
        self._begin_segment()

    def finish(self, ring: AudioRing | None, max_lag_s: float, paused: bool) -> None:
        """The end of the session: the ring's last samples, the resampler's tail, the engine's flush."""
        if ring is not None and not paused:
            self.drain(ring, max_lag_s)
            self._flush_resampler()
        self._end_segment()

    # -- internals --------------------------------------------------------------------------------

    def _consume(self, samples: np.ndarray, transcribe: bool) -> None:
        if not len(samples):
            return
        pcm = to_pcm16(samples)
        self._save(pcm)
        self.samples += len(pcm)
        if not transcribe:
            return
        began = time.perf_counter()
        words = self.transcriber.push(pcm16_to_float(pcm))  # exactly what the file holds
        self.compute_s += time.perf_counter() - began
        self.computed_audio_s += len(pcm) / self.engine_rate
        self._segment_samples += len(pcm)
        self._emit(words)

    def _emit(self, words: list[Word]) -> None:
        if words:
            offset = self._segment_offset_s
            self._sink.words_final([Word(w.text, w.start + offset, w.end + offset) for w in words])
        partial = self.transcriber.pending_text
        if partial != self._partial:
            self._partial = partial
            self._sink.partial_changed(partial)

    def _skip(self, reason: str, keep_untranscribed: Callable[[], None]) -> None:
        """End the engine's stream, add audio to the session without transcribing it, restart at live."""
        self._end_segment()
        gap_start = self.session_s
        keep_untranscribed()
        self.skipped_s += self.session_s - gap_start
        self._begin_segment()
        self._sink.gap(gap_start, self.session_s, reason)

    def _silent(self, n: int) -> None:
        """Silence for `n` device samples that were lost, so the timeline stays whole."""
        self.next_index += n
        while n > 0:
            part = min(n, self._chunk)
            self._consume(self._resample(self._silence[:part]), transcribe=False)
            n -= part

    def _end_segment(self) -> None:
        if self._segment_samples:
            self._emit(self.transcriber.flush())
        self.transcriber.reset()
        self._segment_samples = 0

    def _begin_segment(self) -> None:
        self._segment_offset_s = self.session_s

    def _resample(self, block: np.ndarray) -> np.ndarray:
        return block if self._resampler is None else self._resampler.resample_chunk(block)

    def _flush_resampler(self) -> None:
        """The samples still inside the resampler's filter, at the end of a stretch of audio."""
        if self._resampler is not None:
            self._consume(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True), transcribe=True)

    def _new_resampler(self) -> None:
        # soxr keeps its filter state between chunks, so blocks join without seams
        self._resampler = None if self.device_rate == self.engine_rate else soxr.ResampleStream(
            self.device_rate, self.engine_rate, 1, dtype="float32", quality="HQ")

    def _save(self, pcm: np.ndarray) -> None:
        if self.audio is None:
            return
        try:
            self.audio.write(pcm)
        except SessionAudioError as exc:  # captions go on without audio; the timeline still counts
            audio, self.audio = self.audio, None
            try:
                audio.close()
            except SessionAudioError:
                pass
            self._sink.audio_failed(exc)
