"""A fixed-size float32 ring between the PortAudio callback (writer) and the pipeline (reader).

Positions are absolute sample counts since the ring was made, so the reader can tell exactly which
samples it got ("samples 480000 to 482399") and notice samples that were overwritten before it came
for them. The writer never waits for the reader: when the ring is full the oldest unread samples
are overwritten and counted as dropped. A reader that is too slow loses audio, but the callback
never blocks, which would make PortAudio drop audio anyway and silently.

Writer rules (it runs on PortAudio's real-time thread): copy into memory allocated up front, hold
the lock only for the copy, never raise, never log.
"""

from __future__ import annotations

import threading

import numpy as np


class AudioRing:
    def __init__(self, capacity_samples: int):
        if capacity_samples < 1:
            raise ValueError(f"capacity_samples must be positive, got {capacity_samples}")
        self._buf = np.zeros(capacity_samples, dtype=np.float32)
        self._capacity = capacity_samples
        self._cond = threading.Condition(threading.Lock())
        self._written = 0  # absolute index one past the newest sample
        self._read = 0  # absolute index of the next sample the reader gets
        self._dropped = 0  # samples overwritten before the reader got them
        self._wakeups = 0  # bumped by wake(): waiting readers return early
        self._closed = False
        self.write_errors = 0  # writes that failed (a bug, or a block of the wrong shape)

    # -- writer side (PortAudio thread) -----------------------------------------------------------

    def write(self, block: np.ndarray) -> None:
        """Append a 1-D float block (a view is fine: it is copied). Never raises, never blocks long."""
        try:
            n = block.shape[0]
            keep = min(n, self._capacity)  # a block longer than the ring keeps its newest samples
            with self._cond:
                at = (self._written + n - keep) % self._capacity
                first = min(keep, self._capacity - at)
                self._buf[at:at + first] = block[n - keep:n - keep + first]
                if keep > first:  # wrapped around the end of the buffer
                    self._buf[:keep - first] = block[n - keep + first:]
                self._written += n
                oldest = self._written - self._capacity
                if self._read < oldest:
                    self._dropped += oldest - self._read
                    self._read = oldest
                self._cond.notify_all()
        except Exception:  # the callback must survive anything; the counter makes it visible
            self.write_errors += 1

    def wake(self) -> None:
        """Make a waiting reader return now (the device stopped: no more samples will come)."""
        with self._cond:
            self._wakeups += 1
            self._cond.notify_all()

    def close(self) -> None:
        """No more writes will come: readers drain what is left, then get empty reads at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- reader side (pipeline thread) ------------------------------------------------------------

    def read(self, max_samples: int, timeout: float | None = None, min_samples: int = 1) -> tuple[int, np.ndarray]:
        """Wait for `min_samples` unread samples (or a timeout, wake() or close()), return up to `max_samples`.

        Returns (absolute index of the first sample, a new float32 array). The array is empty when
        the wait ended with nothing to read. A start index past the end of the previous read means
        the samples in between were dropped.
        """
        with self._cond:
            wakeups = self._wakeups
            self._cond.wait_for(
                lambda: self._written - self._read >= min_samples or self._closed or self._wakeups != wakeups,
                timeout,
            )
            start = self._read
            n = min(self._written - start, max_samples)
            out = np.empty(n, dtype=np.float32)
            at = start % self._capacity
            first = min(n, self._capacity - at)
            out[:first] = self._buf[at:at + first]
            out[first:] = self._buf[:n - first]
            self._read = start + n
            return start, out

    def skip(self) -> tuple[int, int]:
        """Jump the reader to the newest sample; returns (first skipped index, samples skipped)."""
        with self._cond:
            start, n = self._read, self._written - self._read
            self._read = self._written
            return start, n

    # -- counters (plain int reads: safe from any thread) -----------------------------------------

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def written(self) -> int:
        """Samples written since the ring was made (absolute index one past the newest)."""
        return self._written

    @property
    def read_index(self) -> int:
        """Absolute index of the next sample the reader will get."""
        return self._read

    @property
    def available(self) -> int:
        """Unread samples in the ring."""
        return self._written - self._read

    @property
    def dropped(self) -> int:
        """Samples overwritten before the reader got them."""
        return self._dropped

    @property
    def closed(self) -> bool:
        return self._closed
