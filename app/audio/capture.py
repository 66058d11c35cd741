"""Microphone capture: a sounddevice input stream at the device's own rate, mixed to mono, into a ring.

The stream runs at the device's native rate (its `default_samplerate`): asking a device for 24 kHz
makes the host API resample with a filter we do not choose, or fail on hardware that cannot;
rate conversion happens later, off the real-time thread (design note 5). The callback follows
PortAudio's rules: it counts overflows, mixes channels into a scratch buffer allocated up front,
feeds the level meter and the ring, and never raises (an exception would silently end the
stream), never logs, never allocates an array.

A device that disappears mid-stream (unplugged, or the sound server killed) raises nothing: the
stream just goes inactive and `finished_callback` fires. `lost` turns that into a question the
pipeline can ask between reads, and the ring's reader is woken so it asks promptly.

`sd` (the sounddevice module) is injectable, so tests drive the real callback with a fake stream.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from app.audio.level import SILENT, Level, LevelMeter
from app.audio.ring import AudioRing
from core.errors import SurtitleError

MAX_CHANNELS = 2  # mono is what we need; two covers stereo mics without opening 32-channel "devices"
SCRATCH_S = 0.5  # mixing buffer; a callback block longer than this is mixed in pieces
DEFAULT_RING_S = 30.0


class CaptureError(SurtitleError):
    """No usable input device, or the one asked for cannot be opened."""


@dataclass(frozen=True)
class InputDevice:
    index: int  # PortAudio's device index (valid until the next re-scan)
    name: str
    channels: int  # max input channels
    default_samplerate: int
    hostapi: str  # "ALSA", "Core Audio", "Windows WASAPI"...
    is_default: bool


def load_sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio library into a CaptureError."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError, not ImportError, without libportaudio
        raise CaptureError(
            f"audio capture is unavailable: {_first_line(exc)}; install PortAudio "
            "(Debian/Ubuntu: apt install libportaudio2)"
        ) from exc
    return sounddevice


def list_input_devices(sd: Any = None, rescan: bool = True) -> list[InputDevice]:
    """The input devices PortAudio sees now, the default one flagged.

    PortAudio reads the device list once, at initialisation, so `rescan` re-initialises it to see
    devices plugged in (or a sound server started) since. Re-scanning invalidates open streams'
    device indexes: do it only while no capture is running.
    """
    sd = sd or load_sounddevice()
    if rescan:
        sd._terminate()
        sd._initialize()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise CaptureError(f"cannot list audio devices: {_first_line(exc)}") from exc
    default = _default_input_index(sd)
    return [
        InputDevice(
            index=d["index"], name=d["name"], channels=d["max_input_channels"],
            default_samplerate=round(d["default_samplerate"]),
            hostapi=hostapis[d["hostapi"]]["name"], is_default=d["index"] == default,
        )
        for d in devices
        if d["max_input_channels"] > 0
    ]


def _default_input_index(sd: Any) -> int:
    try:
        return sd.query_devices(kind="input")["index"]
    except (sd.PortAudioError, ValueError):
        return -1


class AudioCapture:
    """One input stream into one ring. open() → start() → stop() → close(); not restartable."""

    def __init__(self, device: str | int | None = None, *, sd: Any = None, ring_s: float = DEFAULT_RING_S):
        self._sd = sd
        self._device = int(device) if isinstance(device, str) and device.isdigit() else device
        self._ring_s = ring_s
        self._stream: Any = None
        self._started = False
        self._stopping = False
        self._ended = threading.Event()
        self.ring: AudioRing | None = None  # made by open(), sized for the device's rate
        self._meter: LevelMeter | None = None
        self.overflows = 0  # callbacks that reported input overflow (audio lost before it reached us)
        self.callback_errors = 0  # exceptions swallowed in the callback
        self.device_name = ""
        self.samplerate = 0
        self.channels = 0

    # -- lifecycle --------------------------------------------------------------------------------

    def open(self) -> None:
        """Find the device and open its stream (not started yet); raises CaptureError."""
        sd = self._sd = self._sd or load_sounddevice()
        info = self._query(sd)
        self.device_name = info["name"]
        self.samplerate = round(info["default_samplerate"])
        self.channels = max(1, min(MAX_CHANNELS, info["max_input_channels"]))
        self.ring = AudioRing(round(self._ring_s * self.samplerate))
        self._meter = LevelMeter(self.samplerate)
        self._scratch = np.zeros(round(SCRATCH_S * self.samplerate), dtype=np.float32)
        self._inv_channels = np.float32(1.0 / self.channels)
        try:
            self._stream = sd.InputStream(
                device=info["index"], samplerate=self.samplerate, channels=self.channels, dtype="float32",
                callback=self._callback, finished_callback=self._on_finished,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise CaptureError(
                f"input device {self.device_name!r} cannot be opened ({_first_line(exc)}); "
                "it may be in use by another program or unplugged"
            ) from exc

    def start(self) -> None:
        if self._stream is None:
            self.open()
        try:
            self._stream.start()
        except self._sd.PortAudioError as exc:
            raise CaptureError(
                f"input device {self.device_name!r} cannot start ({_first_line(exc)}); "
                "it may be in use by another program or unplugged"
            ) from exc
        self._started = True

    def stop(self) -> None:
        """Stop the stream; readers then drain the ring and get empty reads at once."""
        self._stopping = True
        if self._stream is not None:
            try:
                self._stream.stop()
            except Exception:  # a vanished device's stream may refuse; it is stopped either way
                pass
        if self.ring is not None:
            self.ring.close()

    def close(self) -> None:
        self.stop()
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:
                pass

    def __enter__(self) -> "AudioCapture":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state, read from any thread --------------------------------------------------------------

    @property
    def lost(self) -> bool:
        """The stream ended without stop(): the device vanished or the host API gave up."""
        if not self._started or self._stopping:
            return False
        return self._ended.is_set() or not self._stream.active

    def level(self) -> Level:
        meter = self._meter
        return meter.read() if meter is not None else SILENT

    # -- PortAudio thread -------------------------------------------------------------------------

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        try:
            if status.input_overflow:
                self.overflows += 1
            if self.channels == 1:
                self._deliver(indata[:, 0])
                return
            step = self._scratch.shape[0]
            for at in range(0, frames, step):
                part = indata[at:at + step]
                mono = self._scratch[:part.shape[0]]
                np.sum(part, axis=1, out=mono)
                mono *= self._inv_channels
                self._deliver(mono)
        except Exception:
            self.callback_errors += 1

    def _deliver(self, mono: np.ndarray) -> None:
        self._meter.update(mono)
        self.ring.write(mono)

    def _on_finished(self) -> None:
        self._ended.set()
        if self.ring is not None:
            self.ring.wake()  # a reader waiting for samples that will never come should look up

    # -- device lookup ----------------------------------------------------------------------------

    def _query(self, sd: Any) -> dict:
        if self._device is None:
            try:
                return sd.query_devices(kind="input")
            except (sd.PortAudioError, ValueError) as exc:
                raise CaptureError(
                    "no audio input device found; connect a microphone, or check that the sound "
                    "server (PulseAudio, PipeWire) is running"
                ) from exc
        try:
            return sd.query_devices(self._device, "input")
        except (sd.PortAudioError, ValueError) as exc:
            names = ", ".join(repr(d.name) for d in _safe_inputs(sd)) or "none"
            raise CaptureError(
                f"no usable input device {self._device!r} ({_first_line(exc)}); inputs available: {names}"
            ) from exc


def _safe_inputs(sd: Any) -> list[InputDevice]:
    try:
        return list_input_devices(sd, rescan=False)
    except CaptureError:
        return []


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__
