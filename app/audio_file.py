"""Audio files → float32 mono blocks at the engine's rate, with bounded memory.

The engine takes 24 kHz mono float32 and knows nothing about files (design note 5), so channel
mixing and rate conversion live here. Files are read block by block and resampled with a
streaming resampler, so an hour-long recording never sits in memory at its original rate.
Every failure becomes an `AudioError` whose one sentence names the file and the problem.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from core.errors import AudioError

# The engine's input rate (Mimi runs at 24 kHz). Callers that hold a transcriber should pass its
# `sample_rate` instead of relying on this default.
ENGINE_SAMPLE_RATE = 24_000

DEFAULT_BLOCK_S = 5.0  # long enough to amortise per-call costs, short enough for a live progress bar
READ_S = 0.25  # decoded per call: where a file is damaged, at most this much before the damage is lost


def audio_duration_s(path: str | os.PathLike) -> float:
    """Length of the file in seconds, read from its header; raises AudioError if unusable."""
    with _open(path) as f:
        return f.frames / f.samplerate


def iter_audio_blocks(
    path: str | os.PathLike,
    block_s: float = DEFAULT_BLOCK_S,
    sample_rate: int = ENGINE_SAMPLE_RATE,
) -> Iterator[np.ndarray]:
    """Yield the file as consecutive float32 mono blocks at `sample_rate`, about `block_s` long.

    A file that cannot be decoded to its end, or that holds a NaN or infinite sample, yields all
    the audio before the fault (decoding goes `READ_S` at a time, so at most that much is lost with
    the damaged part), then raises AudioError naming the time in the file where it stops. Samples
    are checked before resampling, which would smear a NaN over its neighbours.
    """
    if block_s <= 0:
        raise ValueError(f"block_s must be positive, got {block_s}")
    name = _display(path)
    with _open(path) as f:
        in_rate = f.samplerate
        block_frames = max(1, round(block_s * in_rate))
        read_frames = min(block_frames, max(1, round(READ_S * in_rate)))
        # soxr keeps its filter history between chunks, so the blocks join without seams or gaps and
        # match one-shot resampling up to float rounding.
        resampler = None if in_rate == sample_rate else soxr.ResampleStream(
            in_rate, sample_rate, 1, dtype="float32", quality="HQ"
        )
        pending: list[np.ndarray] = []  # mono pieces of the block being gathered
        pending_frames = frames_read = 0
        failure: AudioError | None = None
        while failure is None:
            try:
                piece = f.read(read_frames, dtype="float32", always_2d=True)  # [n, channels]
            except (sf.SoundFileError, RuntimeError) as exc:
                at = _clock(frames_read / in_rate)
                failure = AudioError(f"Audio file {name} cannot be decoded past {at}: {_first_line(exc)}.")
                break
            if len(piece) == 0:
                break
            bad = _first_non_finite(piece)
            if bad is not None:
                failure = AudioError(f"Audio file {name} has a NaN or infinite sample at "
                                     f"{_clock((frames_read + bad) / in_rate)}, so it is corrupt and cannot be "
                                     "transcribed past it.")
                piece = piece[:bad]
            frames_read += len(piece)
            pending.append(piece.mean(axis=1, dtype=np.float32))  # [n]
            pending_frames += len(piece)
            if pending_frames >= block_frames:
                out = _resampled(resampler, pending, last=False)
                pending, pending_frames = [], 0
                if len(out):
                    yield out
        if frames_read == 0:  # a damaged header can promise frames that are not there
            raise failure or AudioError(f"Audio file {name} contains no audio (zero samples).")
        out = _resampled(resampler, pending, last=True)
        if len(out):
            yield out
        if failure is not None:
            raise failure


def _resampled(resampler: soxr.ResampleStream | None, pieces: list[np.ndarray], last: bool) -> np.ndarray:
    mono = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)  # [n]
    return mono if resampler is None else resampler.resample_chunk(mono, last=last)


def read_audio(path: str | os.PathLike, sample_rate: int = ENGINE_SAMPLE_RATE) -> np.ndarray:
    """The whole file as one float32 mono array at `sample_rate` (for short files and tests)."""
    return np.concatenate(list(iter_audio_blocks(path, sample_rate=sample_rate)))


def _open(path: str | os.PathLike) -> sf.SoundFile:
    """Open for reading, turning every way this can fail into an AudioError naming the file."""
    name = _display(path)
    p = Path(path)
    if not p.exists():
        raise AudioError(f"Audio file {name} does not exist.")
    if p.is_dir():
        raise AudioError(f"Audio file {name} is a folder, not a file.")
    try:  # libsndfile says "System error" for any failure to open; the OS names it
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise AudioError(f"Audio file {name} cannot be opened: {exc.strerror or exc}.") from exc
    try:
        f = sf.SoundFile(p)
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        # LibsndfileError carries the bare reason; its str() repeats the path we already name.
        reason = getattr(exc, "error_string", None) or _first_line(exc)
        raise AudioError(
            f"Audio file {name} cannot be read ({reason}); "
            "it is damaged or not a supported format such as WAV, FLAC, OGG or MP3."
        ) from exc
    if f.frames == 0:
        f.close()
        raise AudioError(f"Audio file {name} contains no audio (zero samples).")
    return f


def _first_non_finite(block: np.ndarray) -> int | None:
    """Index of the first frame of `block` [n, channels] holding a NaN or infinity, or None."""
    finite = np.isfinite(block).all(axis=1)  # [n]
    return None if finite.all() else int(np.argmin(finite))


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:06.3f}"


def _display(path: str | os.PathLike) -> str:
    return repr(os.fspath(path))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__
