"""A stand-in for the `sounddevice` module: devices are a list, streams are driven by the test.

`FakeInputStream.feed(samples)` calls the capture's REAL callback synchronously, in the test's
thread, with a `(frames, channels)` float32 block and a status object, exactly as PortAudio would
from its thread. `vanish()` does what a killed sound server does: the stream goes inactive and
`finished_callback` fires, with no exception anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np


class PortAudioError(Exception):
    pass


@dataclass
class Status:
    input_overflow: bool = False


@dataclass
class FakeDevice:
    name: str
    max_input_channels: int = 1
    default_samplerate: float = 48000.0
    hostapi: int = 0


class FakeInputStream:
    def __init__(self, sd: "FakeSoundDevice", *, device, samplerate, channels, dtype, callback,
                 finished_callback=None, **unused):
        assert dtype == "float32"
        self.sd, self.device, self.samplerate, self.channels = sd, device, samplerate, channels
        self.callback, self.finished_callback = callback, finished_callback
        self.active = False
        self.closed = False
        # what ALSA's PulseAudio plugin would record from: it reads PULSE_SOURCE as the stream opens
        self.pulse_source = os.environ.get("PULSE_SOURCE")
        sd.streams.append(self)

    def start(self) -> None:
        if self.sd.fail_start:
            raise PortAudioError("Device unavailable [PaErrorCode -9985]")
        self.active = True
        if self.sd.on_start is not None:
            self.sd.on_start(self)

    def stop(self) -> None:
        if self.active:
            self.active = False
            if self.finished_callback:
                self.finished_callback()

    def close(self) -> None:
        self.stop()
        self.closed = True

    # -- test controls ----------------------------------------------------------------------------

    def feed(self, samples: np.ndarray, block: int = 480, overflow: bool = False) -> None:
        """Deliver `samples` ((n,) or (n, channels)) through the callback in blocks of `block` frames."""
        data = np.asarray(samples, dtype=np.float32)
        if data.ndim == 1:
            data = np.repeat(data[:, None], self.channels, axis=1)
        for at in range(0, len(data), block):
            chunk = np.ascontiguousarray(data[at:at + block])
            self.callback(chunk, len(chunk), None, Status(input_overflow=overflow))

    def vanish(self) -> None:
        self.active = False
        if self.finished_callback:
            self.finished_callback()


@dataclass
class FakeSoundDevice:
    devices: list[FakeDevice] = field(default_factory=lambda: [FakeDevice("Fake Mic")])
    default_input: int = 0
    fail_open: bool = False
    fail_start: bool = False
    streams: list[FakeInputStream] = field(default_factory=list)
    rescans: int = 0
    on_start: object = None  # called with the stream when it starts (to feed it from another thread)

    PortAudioError = PortAudioError

    def query_devices(self, device=None, kind=None):
        if device is None and kind is None:
            return [self._info(i) for i in range(len(self.devices))]
        if device is None:
            if self.default_input < 0 or not self.devices:
                raise PortAudioError("Error querying device -1")
            device = self.default_input
        if isinstance(device, str):
            matches = [i for i, d in enumerate(self.devices) if device.lower() in d.name.lower()]
            if not matches:
                raise ValueError(f"No input device matching {device!r}")
            device = matches[0]
        if not 0 <= device < len(self.devices):
            raise PortAudioError(f"Error querying device {device}")
        if kind == "input" and self.devices[device].max_input_channels == 0:
            raise ValueError(f"Not an input device: {device}")
        return self._info(device)

    def query_hostapis(self):
        return [{"name": "Fake API"}]

    def InputStream(self, **kwargs) -> FakeInputStream:  # noqa: N802 (sounddevice's name)
        if self.fail_open:
            raise PortAudioError("Device unavailable [PaErrorCode -9985]")
        return FakeInputStream(self, **kwargs)

    def _terminate(self) -> None:
        self.rescans += 1

    def _initialize(self) -> None:
        pass

    def _info(self, i: int) -> dict:
        d = self.devices[i]
        return {"index": i, "name": d.name, "max_input_channels": d.max_input_channels,
                "default_samplerate": d.default_samplerate, "hostapi": d.hostapi}

    @property
    def stream(self) -> FakeInputStream:
        """The last stream opened."""
        return self.streams[-1]
