"""Session audio: exactly the samples the model heard, written to a WAV file as they come.

Format: WAV, 24 kHz mono 16-bit PCM (48 kB/s, about 170 MB an hour; the 4 GB WAV limit is 24 h).
- 24 kHz after resampling, not the device rate: the file then holds the very samples the engine
  was given, so re-transcribing it gives the same tokens, and its timeline is the session timeline
  (word times index straight into it). The pipeline rounds every sample to 16 bits *before* the
  engine sees it (`to_pcm16`), so "what the model heard" and "what was saved" are identical; a
  microphone delivers 16 or 24 bits anyway, so the rounding loses nothing that matters.
- WAV, not FLAC: libsndfile writes WAV samples straight to the file descriptor, so everything
  written before a crash or a kill -9 is in the file, and libsndfile reads such a file back whole
  (its header still says 0 data bytes; the reader then takes the data length from the file size).
  A killed FLAC writer leaves a stream libsndfile cannot read (measured: soundfile 0.14 /
  libsndfile 1.2.2 fail with "psf_fseek() failed"). `repair()` fixes the header of a crashed
  recording in place so that every other tool reads it too.
- `flush()` runs every second: it asks the OS to put the data on disk (fsync), for the case where
  the whole machine goes down rather than just the app.
"""

from __future__ import annotations

import os
import struct
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from core.errors import SurtitleError

SAMPLE_RATE = 24_000
FLUSH_INTERVAL_S = 1.0
_SILENCE = np.zeros(SAMPLE_RATE, dtype=np.int16)


class SessionAudioError(SurtitleError):
    """The session audio file cannot be created or written."""


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] -> int16, rounded; libsndfile reads these back as exactly int / 32768."""
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.int16)


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) * np.float32(1 / 32768)


def new_audio_path(folder: str | os.PathLike) -> Path:
    """A fresh file name in `folder`: the start time to read, a random tail so two never collide."""
    return Path(folder) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.wav"


class SessionAudio:
    def __init__(self, path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, *, channels: int = 1,
                 clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.frames = 0
        self._clock = clock
        self._last_flush = clock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = sf.SoundFile(self.path, "w", samplerate=sample_rate, channels=channels, format="WAV",
                                      subtype="PCM_16")
        except (OSError, sf.SoundFileError, RuntimeError) as exc:
            raise SessionAudioError(f"cannot create the session audio file {str(self.path)!r}: "
                                    f"{_reason(exc, self.path)}") from exc

    def write(self, pcm: np.ndarray) -> None:
        """Append int16 frames, [n] or [n, channels] (see to_pcm16); flushes to disk about once a second."""
        try:
            self._file.write(pcm)
            self.frames += len(pcm)
            if self._clock() - self._last_flush >= FLUSH_INTERVAL_S:
                self._file.flush()  # libsndfile's sf_write_sync: an fsync of the file
                self._last_flush = self._clock()
        except (OSError, sf.SoundFileError, RuntimeError, AssertionError) as exc:
            # soundfile asserts that every frame was written; a full disk writes fewer
            raise SessionAudioError(f"cannot write the session audio file {str(self.path)!r}: "
                                    f"{_reason(exc, self.path)}") from exc

    def write_silence(self, n: int) -> None:
        """Keep the file's timeline whole over audio that never arrived (dropped by an overflow)."""
        while n > 0:
            part = min(n, len(_SILENCE))
            self.write(_SILENCE[:part])
            n -= part

    def close(self) -> None:
        """Finish the file (libsndfile writes the final header)."""
        try:
            self._file.close()
        except (OSError, sf.SoundFileError, RuntimeError) as exc:
            raise SessionAudioError(f"cannot finish the session audio file {str(self.path)!r}: {_reason(exc)}") from exc


class SharedRecording:
    """One session audio file whose channels are written by different recorders, each at its own
    pace (both sides of a call: left the microphone, right what the computer plays). A frame goes to
    the file once every channel has it, so the channels stay aligned sample for sample; when the last
    channel closes, the shorter ones are padded with silence and the file is finished."""

    def __init__(self, path: str | os.PathLike, sample_rate: int, channels: int):
        self._file = SessionAudio(path, sample_rate, channels=channels)
        self.path = self._file.path
        self._waiting = [np.zeros(0, np.int16) for _ in range(channels)]
        self._open = set(range(channels))

    def channel(self, index: int) -> "RecordingChannel":
        return RecordingChannel(self, index)

    def _write(self, index: int, pcm: np.ndarray) -> None:
        self._waiting[index] = np.concatenate([self._waiting[index], pcm])
        ready = min(len(w) for w in self._waiting)
        if ready:
            frames = np.stack([w[:ready] for w in self._waiting], axis=1)  # [ready, channels]
            self._waiting = [w[ready:] for w in self._waiting]
            self._file.write(frames)

    def _close(self, index: int) -> None:
        self._open.discard(index)
        if self._open:
            return
        longest = max(len(w) for w in self._waiting)
        if longest:
            self._file.write(np.stack([np.pad(w, (0, longest - len(w))) for w in self._waiting], axis=1))
        self._file.close()


class RecordingChannel:
    """One channel of a SharedRecording, written like a SessionAudio of its own."""

    def __init__(self, recording: SharedRecording, index: int):
        self._recording, self._index = recording, index
        self.path = recording.path

    def write(self, pcm: np.ndarray) -> None:
        self._recording._write(self._index, pcm)

    def close(self) -> None:
        self._recording._close(self._index)


def repair(path: str | os.PathLike) -> int:
    """Fix the header of a WAV whose writer died (sizes still 0) from the file's length; returns its frames.

    Only the two size fields are rewritten, in place, and only when the data size is 0 or larger
    than the file: a finished file is left alone.
    """
    path = Path(path)
    try:
        with open(path, "r+b") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                raise SessionAudioError(f"{str(path)!r} is not a WAV file")
            block_align, at = 0, 12
            while at + 8 <= size:
                f.seek(at)
                chunk, length = struct.unpack("<4sI", f.read(8))
                if chunk == b"fmt ":
                    block_align = struct.unpack("<H", f.read(14)[12:14])[0]
                if chunk == b"data":
                    align = max(1, block_align)
                    available = size - (at + 8)
                    if 0 < length <= available:  # a finished file (chunks may follow the data)
                        return length // align
                    data = available - available % align  # a torn last frame is left out
                    f.seek(at + 4)
                    f.write(struct.pack("<I", data))
                    f.seek(4)
                    f.write(struct.pack("<I", at + data))  # RIFF size: all that follows its own 8 bytes
                    return data // align
                at += 8 + length + (length & 1)  # chunks are padded to even sizes
            raise SessionAudioError(f"{str(path)!r} has no audio data chunk")
    except OSError as exc:
        raise SessionAudioError(f"cannot repair the session audio file {str(path)!r}: {_reason(exc)}") from exc


def _reason(exc: BaseException, path: Path | None = None) -> str:
    # libsndfile says "System error" whatever the system said; a full disk is the usual one mid-session
    if path is not None and _disk_full(path):
        return "the disk is full; free some space"
    reason = getattr(exc, "strerror", None) or getattr(exc, "error_string", None) or str(exc).strip()
    if not reason and isinstance(exc, AssertionError):
        return "not every sample could be written (is the disk full?)"
    return reason.splitlines()[0] if reason else type(exc).__name__


def _disk_full(path: Path) -> bool:
    try:
        return os.statvfs(path.parent).f_bavail == 0
    except (OSError, AttributeError):  # no such folder; or Windows, which has no statvfs
        return False
