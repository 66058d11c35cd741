"""A stand-in engine for `surtitle transcribe` tests, and helpers to run the command with it.

Only the engine is fake: reading files, exporting, writing and error handling are the real code.
"""

import numpy as np
import soundfile as sf

from app.cli import main
from app.engine_options import EngineOptions
from core.words import Word

RATE = 24_000


class FakeTranscriber:
    """Says "w<k>" for the k-th second of audio pushed, and "end." when flushed."""

    sample_rate = RATE
    frame_samples = 1920

    def __init__(self, fail_with: Exception | None = None):
        self.fail_with = fail_with
        self.resets = 0
        self.reset()

    def reset(self) -> None:
        self.resets += 1
        self.samples = 0

    def push(self, pcm: np.ndarray) -> list[Word]:
        assert pcm.dtype == np.float32 and pcm.ndim == 1
        if self.fail_with is not None:
            raise self.fail_with
        before, self.samples = self.samples, self.samples + len(pcm)
        return [Word(f"w{k}", k + 0.1, k + 0.6) for k in range(before // RATE, self.samples // RATE)]

    def flush(self) -> list[Word]:
        t = self.samples / RATE
        return [Word("end.", t, t + 0.2)]


class FakeFactory:
    def __init__(self, transcriber=None, error: Exception | None = None):
        self.transcriber = transcriber or FakeTranscriber()
        self.error = error
        self.calls: list[EngineOptions] = []

    def __call__(self, options: EngineOptions, report=None) -> FakeTranscriber:
        self.calls.append(options)
        if self.error is not None:
            raise self.error
        return self.transcriber


def wav(path, seconds=2.5, rate=16000, channels=1):
    x = 0.1 * np.sin(2 * np.pi * 220 * np.arange(round(seconds * rate)) / rate)
    sf.write(path, np.stack([x] * channels, axis=1), rate)
    return path


def run(argv, factory=None):
    factory = factory or FakeFactory()
    # one file at a time: several files of about one length are otherwise batched in a StreamPool
    # over the real model, which the fake does not have (tests/test_cli_engine.py runs that path)
    return main(["transcribe", "--batch", "1", *map(str, argv)], transcriber_factory=factory), factory


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("surtitle: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]
