"""Several live streams through one loaded model, stepped together: a lane per stream.

Hearing both sides of a call means two streams (the microphone, what the computer plays). A decoder
step reads every weight once whatever the batch, so the two are stepped as one batch of a
core.StreamPool over the model already loaded (no second copy of the weights). Each lane has the
interface a SessionRecorder drives (push, flush, reset, pending_text), so everything about a stream's
timeline, gaps and pauses stays the recorder's, one recorder per stream.

When to step: a lane's push steps the pool only once every other open lane has a frame waiting too,
so both streams go through the same steps; a lane whose other side stalls (a frame short for more
than HOLD_S) steps alone rather than wait. Words of a step go to their lane, which returns them at its
next push or flush (the pipeline pushes every lane on every pass, a tenth of a second at most apart).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.words import Word

HOLD_S = 0.5  # a lane waits at most this much audio for the others before stepping alone


class EngineLanes:
    def __init__(self, transcriber: Any, count: int):
        """`transcriber`: a loaded core.StreamingTranscriber, whose model, tokenizer and feature
        extractor the lanes share."""
        from core import StreamPool

        self.pool = StreamPool.sharing(transcriber, count)
        self.lanes = [Lane(self, transcriber.delay_s) for _ in range(count)]
        self._frame_s = self.pool.frame_samples / self.pool.sample_rate

    def advance(self, asking: "Lane") -> None:
        """Step while the open lanes all have a frame waiting, or while `asking` cannot wait longer."""
        while True:
            ready = [self._waiting_s(lane) >= self._frame_s for lane in self.lanes if lane.slot is not None]
            draining = any(lane.draining for lane in self.lanes)
            if not (all(ready) or draining or self._waiting_s(asking) >= HOLD_S) or not self.pool.has_work():
                return
            for update in self.pool.step():
                lane = next(lane for lane in self.lanes if lane.slot == update.slot)
                lane.words.extend(update.words)
                if update.finished:
                    lane.slot, lane.draining = None, False

    def _waiting_s(self, lane: "Lane") -> float:
        return 0.0 if lane.slot is None else self.pool.buffered_seconds(lane.slot)


class Lane:
    """One stream of EngineLanes, as a SessionRecorder's transcriber."""

    def __init__(self, lanes: EngineLanes, delay_s: float):
        self._lanes = lanes
        self.sample_rate = lanes.pool.sample_rate
        self.delay_s = delay_s
        self.slot: int | None = None  # the pool's slot of this lane's current stream
        self.draining = False  # flushed: its last steps are still to come
        self.words: list[Word] = []  # final, not handed out yet

    @property
    def pending_text(self) -> str:
        return "" if self.slot is None else self._lanes.pool.pending_text(self.slot)

    def reset(self) -> None:
        """Start a new stream: the old one's slot is given up, a fresh one opened."""
        pool = self._lanes.pool
        if self.slot is not None:
            pool.close(self.slot)
        self.slot, self.draining, self.words = pool.open(), False, []

    def push(self, pcm: np.ndarray) -> list[Word]:
        if self.slot is None:
            self.reset()
        self._lanes.pool.push(self.slot, pcm)
        self._lanes.advance(self)
        return self._take()

    def flush(self) -> list[Word]:
        """End the stream: its last frames and the model's delay are stepped now, and its last words come."""
        if self.slot is not None:
            self._lanes.pool.flush(self.slot)
            self.draining = True
            while self.slot is not None and self._lanes.pool.has_work():
                self._lanes.advance(self)
        return self._take()

    def _take(self) -> list[Word]:
        words, self.words = self.words, []
        return words
