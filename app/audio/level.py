"""Input level metering: peak and RMS over short windows, read with "latest value wins".

The PortAudio callback feeds every block to `update`; each time a window (50 ms by default, whatever
the block size) is complete, its peak and RMS replace the published reading in one reference
swap, so any number of readers (a 30 Hz GUI meter, the pipeline's status) see a consistent pair
without locks and without taking values from each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SILENCE_DBFS = -100.0  # the floor shown for digital silence, instead of -inf
WINDOW_S = 0.05


def dbfs(amplitude: float) -> float:
    """Amplitude relative to full scale (1.0) in decibels, floored at SILENCE_DBFS."""
    return max(SILENCE_DBFS, 20.0 * math.log10(amplitude)) if amplitude > 0 else SILENCE_DBFS


@dataclass(frozen=True)
class Level:
    peak: float  # largest |sample| in the window, 1.0 = full scale
    rms: float

    @property
    def peak_dbfs(self) -> float:
        return dbfs(self.peak)

    @property
    def rms_dbfs(self) -> float:
        return dbfs(self.rms)


SILENT = Level(0.0, 0.0)


class LevelMeter:
    def __init__(self, sample_rate: float, window_s: float = WINDOW_S):
        self._window = max(1, round(sample_rate * window_s))
        self._peak = 0.0
        self._sum_squares = 0.0
        self._count = 0
        self._latest = SILENT

    def update(self, block: np.ndarray) -> None:
        """Callback side: fold one mono block in. Reductions only, so no array is allocated."""
        if block.shape[0] == 0:
            return
        peak = max(float(block.max()), -float(block.min()))
        self._peak = max(self._peak, peak)
        self._sum_squares += float(np.dot(block, block))
        self._count += block.shape[0]
        if self._count >= self._window:
            self._latest = Level(self._peak, math.sqrt(self._sum_squares / self._count))
            self._peak, self._sum_squares, self._count = 0.0, 0.0, 0

    def reset(self) -> None:
        self._peak, self._sum_squares, self._count = 0.0, 0.0, 0
        self._latest = SILENT

    def read(self) -> Level:
        """The newest complete window (any thread)."""
        return self._latest
