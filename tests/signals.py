"""Test signals shared by the engine tests."""

from __future__ import annotations

import numpy as np


def noise(seconds: float, seed: int, rate: int = 24000) -> np.ndarray:
    """Seeded white noise at a tenth of full scale, float32: audio the codec cannot predict."""
    return (np.random.default_rng(seed).standard_normal(round(seconds * rate)) * 0.1).astype(np.float32)
