"""What the computer plays, captured as a source like the microphone: the default output's monitor.

Linux, PulseAudio (and PipeWire through pipewire-pulse): pulsectl names the server's default sink,
whose monitor source carries what it plays. Released PortAudio has no PulseAudio host API, so the
monitor is recorded through PortAudio's ALSA "pulse" device (alsa-plugins), with PULSE_SOURCE set
to the monitor's name while the stream opens: the plugin reads it then, and only then. (Not
`@DEFAULT_MONITOR@`: PipeWire does not know it.) Everything after the open is AudioCapture's: the
same callback, ring, meter and rules.

While the session runs, `tend` is called every TEND_INTERVAL_S from a thread of this object:
- when the default output changes (headphones plugged in), the stream is moved to the new output's
  monitor (as `pactl move-source-output` does): no new stream, no gap, the session goes on;
- a monitor delivers nothing while its sink is suspended (nothing played for a while) or renders
  in bursts: silence is written from the clock for the time nothing came, so session time stays
  wall time and words keep their true times.

Windows (WASAPI loopback) and macOS (Core Audio process taps) are not built yet; there `open`
says so in one line.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.audio.capture import DEFAULT_RING_S, AudioCapture, CaptureError

log = logging.getLogger(__name__)

PULSE_DEVICE = "pulse"  # PortAudio's name for the ALSA device of alsa-plugins' PulseAudio plugin
TEND_INTERVAL_S = 0.1
FOLLOW_EVERY_S = 1.0  # how often the default output is asked for (a round trip to the sound server)
FILL_AFTER_S = 0.3  # nothing delivered for this long: the monitor stalled, and silence is written
_ENV_LOCK = threading.Lock()  # PULSE_SOURCE is process-wide: one stream opens at a time


@dataclass(frozen=True)
class Output:
    """A sound output (a PulseAudio sink) and the monitor source that carries what it plays."""

    name: str  # the sink's name, e.g. "alsa_output.pci-0000_00_1f.3.analog-stereo"
    description: str  # what people call it, e.g. "Built-in Audio Analog Stereo"
    is_default: bool

    @property
    def monitor(self) -> str:
        return f"{self.name}.monitor"


PulseFactory = Callable[[], Any]  # () -> a connected pulsectl.Pulse (closed by the caller)


def connect_pulse() -> Any:
    """A connection to the PulseAudio (or pipewire-pulse) server; CaptureError where there is none."""
    if not sys.platform.startswith("linux"):
        raise CaptureError("capturing what the computer plays is not available on this system yet "
                           "(Linux with PulseAudio or PipeWire only); use the microphone")
    try:
        import pulsectl
    except (ImportError, OSError) as exc:  # OSError: libpulse itself is missing
        raise CaptureError(f"system audio needs PulseAudio's client library ({_first_line(exc)}); install "
                           "pulseaudio or pipewire-pulse, and the pulsectl package") from exc
    try:
        return pulsectl.Pulse("surtitle", connect=True)
    except pulsectl.PulseError as exc:
        raise CaptureError("no PulseAudio or PipeWire sound server answers, so what the computer plays "
                           "cannot be captured; check that it is running") from exc


def list_outputs(pulse_factory: PulseFactory = connect_pulse) -> list[Output]:
    """The sound outputs, the default one flagged; raises CaptureError where they cannot be listed."""
    pulse = pulse_factory()
    try:
        default = pulse.server_info().default_sink_name
        return [Output(s.name, s.description, s.name == default) for s in pulse.sink_list()]
    finally:
        pulse.close()


class SystemAudioCapture(AudioCapture):
    """AudioCapture of the default output's monitor, following the default output while it runs."""

    def __init__(self, *, sd: Any = None, ring_s: float = DEFAULT_RING_S, pulse: PulseFactory = connect_pulse,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(PULSE_DEVICE, sd=sd, ring_s=ring_s)
        self._clock = clock
        self.last_delivery_s = clock()  # when the callback last brought samples: a stall shows
        self._connect = pulse
        self._pulse: Any = None  # the tending thread's own connection (pulsectl is not thread-safe)
        self.output: Output | None = None  # what is being captured now
        self._filled_until = 0.0
        self._next_follow = 0.0
        self._zeros = np.zeros(0, dtype=np.float32)
        self._tending = threading.Event()
        self._tender: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def open(self) -> None:
        pulse = self._connect()
        try:
            output = _default_output(pulse)
            with _ENV_LOCK:
                saved = os.environ.get("PULSE_SOURCE")
                os.environ["PULSE_SOURCE"] = output.monitor
                try:
                    super().open()
                except CaptureError as exc:
                    raise CaptureError(f"what the computer plays cannot be recorded: {exc} (the ALSA "
                                       "PulseAudio plugin is needed: libasound2-plugins, or pipewire-alsa)") from exc
                finally:
                    if saved is None:
                        del os.environ["PULSE_SOURCE"]
                    else:
                        os.environ["PULSE_SOURCE"] = saved
        finally:
            pulse.close()
        self.output = output
        self.device_name = f"System audio ({output.description})"
        self._zeros = np.zeros(self.samplerate, dtype=np.float32)  # up to a second of silence per write

    def start(self) -> None:
        super().start()
        now = self._clock()
        self.last_delivery_s = self._filled_until = now
        self._next_follow = now + FOLLOW_EVERY_S
        self._tending.clear()
        self._tender = threading.Thread(target=self._tend_while_running, name="surtitle-system-audio", daemon=True)
        self._tender.start()

    def stop(self) -> None:
        self._tending.set()
        tender, self._tender = self._tender, None
        if tender is not None and tender is not threading.current_thread():
            tender.join()
        if self._pulse is not None:
            self._pulse.close()
            self._pulse = None
        super().stop()

    def _deliver(self, mono: np.ndarray) -> None:  # PortAudio's thread: one clock read more, only here
        super()._deliver(mono)
        self.last_delivery_s = self._clock()

    # -- tending (its own thread; tests call tend() with the times they choose) --------------------

    def _tend_while_running(self) -> None:
        while not self._tending.wait(TEND_INTERVAL_S):
            try:
                self.tend(self._clock())
            except Exception:  # a sound server hiccup must not end the capture; the stream reports loss
                log.exception("tending the system audio capture failed")

    def tend(self, now: float) -> None:
        """Fill a stall with silence, and now and then follow the default output."""
        self._fill_silence(now)
        if now >= self._next_follow:
            self._next_follow = now + FOLLOW_EVERY_S
            self._follow_default_output()

    def _fill_silence(self, now: float) -> None:
        since = max(self.last_delivery_s, self._filled_until)
        if now - since < FILL_AFTER_S:
            return
        missing = round((now - since) * self.samplerate)
        while missing > 0:
            part = min(missing, len(self._zeros))
            self.ring.write(self._zeros[:part])
            missing -= part
        self._filled_until = now

    def _follow_default_output(self) -> None:
        if self._pulse is None:
            self._pulse = self._connect()
        pulse = self._pulse
        output = _default_output(pulse)
        if self.output is None or output.name == self.output.name:
            return
        # Our stream, as the server numbers it now (PortAudio opens the ALSA device again as it
        # starts, so the number seen at open is gone): this process's, on the old monitor.
        old = pulse.get_source_by_name(self.output.monitor).index
        new = pulse.get_source_by_name(output.monitor).index
        for index in _our_source_outputs(pulse, old):
            pulse.source_output_move(index, new)
        log.info("system audio now follows %s", output.description)
        self.output = output


def _default_output(pulse: Any) -> Output:
    name = pulse.server_info().default_sink_name
    sink = next((s for s in pulse.sink_list() if s.name == name), None)
    if sink is None:
        raise CaptureError("the sound server has no default output, so there is nothing to capture; "
                           "pick an output in the system's sound settings")
    return Output(sink.name, sink.description, True)


def _our_source_outputs(pulse: Any, source: int) -> list[int]:
    """The recording streams this process has open on `source` (a source's index on the server)."""
    pid = str(os.getpid())
    return [o.index for o in pulse.source_output_list()
            if o.source == source and o.proplist.get("application.process.id") == pid]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__
