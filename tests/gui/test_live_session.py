"""The window on the real pipeline: tiny engine, fake microphone, real journal; nothing faked in between.

Samples go through the capture's real callback from the test thread; the worker thread runs
`LivePipeline`; words reach the window through the worker's signals. What the window showed must
be exactly what the journal saved.
"""

import numpy as np
import pytest

from app.audio.capture import AudioCapture
from app.gui.session import SessionController, SessionState
from app.pipeline import LivePipeline
from core import StreamingTranscriber
from tests.fake_audio import FakeDevice, FakeSoundDevice

RATE = 48_000


@pytest.fixture
def live(make_window, journal, tiny_ckpt, settings):
    """(window, fake sounddevice): a window whose sessions run the real pipeline on the tiny model."""
    from app.gui.settings import Key

    sd = FakeSoundDevice([FakeDevice("Fake Mic", 1, float(RATE))])
    settings.set_value(Key.MODEL, str(tiny_ckpt))
    settings.set_value(Key.SAVE_AUDIO, False)

    def factory(options, listener):
        return LivePipeline(options, listener, journal=journal,
                            capture_factory=lambda opts, source: AudioCapture(sd=sd, ring_s=30.0),
                            transcriber_factory=lambda opts, report: StreamingTranscriber.from_pretrained(tiny_ckpt))

    window = make_window(controller=SessionController(factory), device_lister=lambda: ["Fake Mic"])
    return window, sd


def test_spoken_words_appear_live_and_match_the_journal(qtbot, live, journal):
    window, sd = live
    with qtbot.waitSignal(window.controller.ready, timeout=60_000):
        window.commands.start.trigger()
    sd.streams[-1].feed((np.random.default_rng(1).standard_normal(RATE * 3) * 0.1).astype(np.float32), block=441)
    qtbot.waitUntil(lambda: not window.transcript.is_empty, timeout=60_000)  # words while still recording
    assert window.controller.state is SessionState.RUNNING
    assert window.overlay.caption_lines()
    qtbot.waitUntil(lambda: window.status.lag.text().startswith("Lag"), timeout=60_000)
    with qtbot.waitSignal(window.controller.finished, timeout=60_000) as done:
        window.commands.stop.trigger()
    saved = journal.words(done.args[0])
    shown = window.transcript.plain_text().split("  ", 1)[1].split()
    assert len(saved) > 5 and shown == [w.text for w in saved]
    assert journal.session(done.args[0]).ended_at is not None


def test_unplugged_microphone_is_one_sentence_and_the_session_is_kept(qtbot, live, journal):
    window, sd = live
    with qtbot.waitSignal(window.controller.ready, timeout=60_000):
        window.commands.start.trigger()
    sd.streams[-1].feed((np.random.default_rng(2).standard_normal(RATE) * 0.1).astype(np.float32), block=441)
    with qtbot.waitSignal(window.controller.finished, timeout=60_000) as done:
        sd.streams[-1].vanish()
    message = window.errors.last_message
    assert message == "Input device 'Fake Mic' disappeared; the session so far is saved."
    assert journal.session(done.args[0]).ended_at is not None
    assert window.commands.start.isEnabled()
