"""Both sides of a call in one session: two inputs, one batched engine, labelled words, a stereo file.

Fake devices feed different noise to the microphone and to the system input; the tiny model runs in
float32, where a batch of two gives each stream exactly its words alone. The real sound server path
is in tests/test_live_e2e.py.
"""

import threading

import numpy as np
import soundfile as sf

from app.audio.capture import AudioCapture
from app.audio.source import Source
from app.engine_options import EngineOptions
from app.journal import Journal
from app.pipeline import LivePipeline, PipelineOptions
from app.pipeline_types import PipelineListener
from core import StreamingTranscriber
from tests.fake_audio import FakeDevice, FakeSoundDevice
from tests.signals import noise

RATE = 24_000  # both fake devices at the engine's rate: the file holds what they gave, sample for sample
WAIT = 60


class Heard(PipelineListener):
    def __init__(self):
        self.ready, self.finished = threading.Event(), threading.Event()
        self.words, self.errors, self.info = [], [], None

    def on_ready(self, info):
        self.info = info
        self.ready.set()

    def on_words(self, words):
        self.words.extend(words)

    def on_error(self, message):
        self.errors.append(message)

    def on_finished(self, session_id):
        self.finished.set()


def alone(ckpt, audio):
    engine = StreamingTranscriber.from_pretrained(ckpt, quantize="none")
    return engine.push(audio) + engine.flush()


def test_both_sides_are_captioned_apart_labelled_and_saved_side_by_side(tiny_ckpt, tmp_path):
    mic = FakeSoundDevice([FakeDevice("Desk mic", 1, float(RATE))])
    system = FakeSoundDevice([FakeDevice("Speakers", 1, float(RATE))])
    devices = {Source.MICROPHONE: mic, Source.SYSTEM: system}
    listener = Heard()
    journal = Journal(tmp_path / "journal.sqlite3")
    options = PipelineOptions(EngineOptions(str(tiny_ckpt), quantize=None, live=True), source=Source.BOTH,
                              status_interval_s=0.0)
    pipeline = LivePipeline(options, listener, journal=journal,
                            capture_factory=lambda o, source: AudioCapture(sd=devices[source], ring_s=30.0),
                            transcriber_factory=lambda o, report: StreamingTranscriber.from_pretrained(
                                tiny_ckpt, quantize="none"))
    stop = threading.Event()
    thread = threading.Thread(target=pipeline.run, args=(stop,))
    thread.start()
    assert listener.ready.wait(WAIT), listener.errors
    ours, theirs = noise(3.0, seed=41), noise(3.0, seed=42)
    for at in range(0, len(ours), 2400):  # a tenth of a second from each side in turn, as they arrive
        mic.stream.feed(ours[at:at + 2400], block=480)
        system.stream.feed(theirs[at:at + 2400], block=480)
    stop.set()
    thread.join(WAIT)
    assert listener.finished.is_set() and not listener.errors

    (info,) = journal.sessions()
    assert info.device == "Desk mic + Speakers" and listener.info.input_device == "Desk mic + Speakers"
    audio, rate = sf.read(info.audio_path, dtype="float32")
    assert rate == 24_000 and audio.shape == (len(ours), 2)  # left the microphone, right the computer
    assert np.allclose(audio[:, 0], ours, atol=1 / 32768) and np.allclose(audio[:, 1], theirs, atol=1 / 32768)
    words = journal.words(info.id)
    you = [w for w in words if w.speaker == "You"]
    others = [w for w in words if w.speaker == "Others"]
    assert len(you) + len(others) == len(words) and listener.words == words
    # each side: exactly what its own channel gives alone (float32: the batch changes nothing)
    strip = lambda ws: [(w.text, w.start, w.end) for w in ws]  # noqa: E731
    assert strip(you) == strip(alone(tiny_ckpt, audio[:, 0].copy())) and you
    assert strip(others) == strip(alone(tiny_ckpt, audio[:, 1].copy())) and others
