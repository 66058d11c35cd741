"""System audio capture (app/audio/system_audio.py) against a fake sound server and fake PortAudio:
which monitor is opened, following the default output, silence from the clock, one-line errors.
The real PulseAudio path runs in tests/test_live_e2e.py."""

import os

import numpy as np
import pytest

from app.audio.capture import CaptureError
from app.audio.system_audio import FILL_AFTER_S, FOLLOW_EVERY_S, Output, SystemAudioCapture, list_outputs
from tests.fake_audio import FakeDevice, FakeSoundDevice
from tests.fake_pulse import FakePulseServer

RATE = 44_100


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make(server=None, devices=None):
    server = server or FakePulseServer()
    sd = FakeSoundDevice(devices or [FakeDevice("Fake Mic"), FakeDevice("pulse", 32, float(RATE))])
    clock = Clock()
    capture = SystemAudioCapture(sd=sd, pulse=server.connect, ring_s=30.0, clock=clock)
    return capture, sd, server, clock


def test_the_default_outputs_monitor_is_opened_and_the_environment_left_as_it_was(monkeypatch):
    monkeypatch.delenv("PULSE_SOURCE", raising=False)
    capture, sd, server, _ = make()
    capture.open()
    assert sd.stream.pulse_source == "speakers.monitor"  # what the ALSA plugin read as it opened
    assert sd.stream.device == 1  # PortAudio's "pulse" device
    assert "PULSE_SOURCE" not in os.environ
    assert capture.device_name == "System audio (Speakers)" and capture.samplerate == RATE
    assert capture.output == Output("speakers", "Speakers", True)
    assert all(c.closed for c in server.connections)
    monkeypatch.setenv("PULSE_SOURCE", "users.own")
    make()[0].open()
    assert os.environ["PULSE_SOURCE"] == "users.own"  # someone else's setting survives


def test_a_new_default_output_moves_our_stream_and_nobody_elses():
    capture, sd, server, clock = make()
    capture.open()
    ours = server.record("speakers.monitor")
    theirs = server.record("speakers.monitor", pid=1)  # another program recording the speakers
    our_mic = server.record("vmic.monitor")  # our microphone stream, if a session hears both
    capture.tend(clock.now)
    assert server.moves == []  # nothing changed
    server.default_sink = "headphones"
    clock.now += FOLLOW_EVERY_S / 2
    capture.tend(clock.now)
    assert server.moves == []  # not asked yet: the server is asked once a FOLLOW_EVERY_S
    clock.now += FOLLOW_EVERY_S
    capture.tend(clock.now)
    assert server.moves == [(ours.index, server.sources().index("headphones.monitor"))]
    assert theirs.source == server.sources().index("speakers.monitor")
    assert our_mic.source == server.sources().index("vmic.monitor")
    assert capture.output.name == "headphones"
    capture.tend(clock.now + 2 * FOLLOW_EVERY_S)
    assert len(server.moves) == 1  # moved once


def test_a_stalled_monitor_is_filled_with_silence_from_the_clock():
    capture, sd, _, clock = make()
    capture.open()  # not started: no tending thread, this test calls tend() itself
    sound = np.full(RATE // 2, 0.25, np.float32)
    sd.stream.feed(sound, block=441)  # half a second arrives at t = 100
    clock.now += FILL_AFTER_S / 2
    capture.tend(clock.now)
    start, got = capture.ring.read(10 * RATE, timeout=0)
    assert len(got) == RATE // 2  # a short wait is not a stall
    clock.now = 102.0  # then nothing for 2 s: the sink is suspended
    capture.tend(clock.now)
    start, got = capture.ring.read(10 * RATE, timeout=0)
    assert len(got) == 2 * RATE and not got.any()
    clock.now += 0.1
    capture.tend(clock.now)
    assert capture.ring.read(10 * RATE, timeout=0)[1].size == 0  # filled up to now: not twice
    clock.now += 0.5
    sd.stream.feed(sound[:4410], block=441)  # sound again
    capture.tend(clock.now + 0.1)
    assert len(capture.ring.read(10 * RATE, timeout=0)[1]) == 4410
    capture.close()


def test_no_default_output_no_server_and_no_plugin_are_one_line_each():
    no_default = FakePulseServer(default_sink="gone")
    with pytest.raises(CaptureError, match="no default output"):
        make(no_default)[0].open()
    no_plugin, *_ = make(devices=[FakeDevice("Fake Mic")])
    with pytest.raises(CaptureError, match="ALSA PulseAudio plugin"):
        no_plugin.open()


def test_outputs_are_listed_with_the_default_marked():
    assert list_outputs(FakePulseServer(default_sink="headphones").connect) == [
        Output("speakers", "Speakers", False), Output("headphones", "Headphones", True)]
