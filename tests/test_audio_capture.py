"""AudioCapture with a fake sounddevice whose stream calls the real callback from the test."""

import numpy as np
import pytest

from app.audio.capture import AudioCapture, CaptureError, list_input_devices
from app.audio.level import LevelMeter, dbfs
from tests.fake_audio import FakeDevice, FakeSoundDevice


def started(sd, device=None, **kw):
    cap = AudioCapture(device, sd=sd, **kw)
    cap.start()
    return cap


def test_opens_the_default_device_at_its_native_rate_in_float32():
    sd = FakeSoundDevice([FakeDevice("Built-in", 2, 44100.0)])
    cap = started(sd)
    s = sd.stream
    assert (s.samplerate, s.channels, s.device) == (44100, 2, 0)
    assert (cap.samplerate, cap.device_name) == (44100, "Built-in")


def test_many_channel_devices_are_opened_with_two_at_most():
    sd = FakeSoundDevice([FakeDevice("default", 32, 48000.0)])
    started(sd)
    assert sd.stream.channels == 2


def test_stereo_is_mixed_to_mono_into_the_ring():
    sd = FakeSoundDevice([FakeDevice("Stereo", 2, 48000.0)])
    cap = started(sd)
    left = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    right = np.full(1000, 0.25, dtype=np.float32)
    sd.stream.feed(np.stack([left, right], axis=1), block=333)
    start, mono = cap.ring.read(2000, timeout=0)
    assert start == 0
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-7)
    assert cap.callback_errors == 0


def test_a_callback_block_longer_than_the_scratch_is_mixed_in_pieces():
    sd = FakeSoundDevice([FakeDevice("Stereo", 2, 16000.0)])
    cap = started(sd)
    x = np.random.default_rng(0).uniform(-1, 1, (20000, 2)).astype(np.float32)
    sd.stream.feed(x, block=20000)  # 1.25 s in one callback, scratch holds 0.5 s
    np.testing.assert_allclose(cap.ring.read(30000, timeout=0)[1], x.mean(axis=1), atol=1e-6)


def test_overflow_flags_are_counted():
    sd = FakeSoundDevice()
    cap = started(sd)
    sd.stream.feed(np.zeros(960), block=480, overflow=True)
    assert cap.overflows == 2


def test_the_callback_never_raises():
    sd = FakeSoundDevice()
    cap = started(sd)
    sd.stream.callback(None, 480, None, None)  # garbage in: counted, not raised
    assert cap.callback_errors == 1
    sd.stream.feed(np.ones(480) * 0.1)
    assert cap.ring.available == 480


def test_level_meter_publishes_the_latest_window():
    sd = FakeSoundDevice([FakeDevice("Mic", 1, 48000.0)])
    cap = started(sd)
    assert cap.level().peak == 0.0
    sd.stream.feed(np.full(2400, 0.5), block=480)  # exactly one 50 ms window
    assert cap.level().peak == pytest.approx(0.5) and cap.level().rms == pytest.approx(0.5)
    sd.stream.feed(np.full(2400, -0.1), block=480)
    assert cap.level().peak == pytest.approx(0.1)  # latest value wins
    assert cap.level().rms_dbfs == pytest.approx(-20.0, abs=1e-4)


def test_level_meter_window_does_not_depend_on_block_size():
    meter = LevelMeter(1000, window_s=0.1)
    meter.update(np.full(60, 0.2, np.float32))
    assert meter.read().peak == 0.0  # window not complete yet
    meter.update(np.full(60, 0.4, np.float32))
    assert meter.read().peak == pytest.approx(0.4)
    assert dbfs(0.0) == -100.0


def test_a_vanished_device_is_reported_as_lost_and_wakes_the_reader():
    sd = FakeSoundDevice()
    cap = started(sd)
    sd.stream.feed(np.zeros(480))
    assert not cap.lost
    sd.stream.vanish()
    assert cap.lost
    assert len(cap.ring.read(10_000, timeout=30)[1]) == 480  # what came before is still there
    cap.close()


def test_an_inactive_stream_without_finished_callback_is_lost_too():
    sd = FakeSoundDevice()
    cap = started(sd)
    sd.stream.active = False  # some host APIs just stop calling back
    assert cap.lost


def test_stopping_is_not_losing():
    sd = FakeSoundDevice()
    cap = started(sd)
    cap.stop()
    assert not cap.lost and cap.ring.closed
    cap.close()
    assert sd.stream.closed


def test_no_input_device_is_one_clear_error():
    sd = FakeSoundDevice(devices=[], default_input=-1)
    with pytest.raises(CaptureError, match="no audio input device found"):
        started(sd)


def test_unknown_device_names_the_available_inputs():
    sd = FakeSoundDevice([FakeDevice("USB Mic"), FakeDevice("Speakers", max_input_channels=0)])
    with pytest.raises(CaptureError) as info:
        started(sd, "headset")
    message = str(info.value)
    assert "'headset'" in message and "'USB Mic'" in message and "Speakers" not in message
    assert "\n" not in message


def test_device_by_index_string():
    sd = FakeSoundDevice([FakeDevice("A"), FakeDevice("B", 1, 16000.0)])
    cap = started(sd, "1")
    assert cap.device_name == "B" and cap.samplerate == 16000


@pytest.mark.parametrize("failure", ["fail_open", "fail_start"])
def test_busy_device_is_one_clear_error(failure):
    sd = FakeSoundDevice()
    setattr(sd, failure, True)
    with pytest.raises(CaptureError, match="'Fake Mic' cannot .* in use by another program"):
        started(sd)


def test_list_input_devices_rescans_and_flags_the_default():
    sd = FakeSoundDevice([FakeDevice("Out", max_input_channels=0), FakeDevice("Mic", 1), FakeDevice("USB", 2, 44100.0)],
                         default_input=2)
    devices = list_input_devices(sd)
    assert sd.rescans == 1
    assert [(d.index, d.name, d.is_default) for d in devices] == [(1, "Mic", False), (2, "USB", True)]
    assert devices[1].default_samplerate == 44100 and devices[1].hostapi == "Fake API"
