"""LivePipeline with the real tiny engine, a fake microphone at 48 kHz and a real journal.

The microphone is tests.fake_audio: the test thread feeds samples through the capture's real
callback while the pipeline runs in its own thread. Synchronisation is by events the listener and
the engine wrappers set; nothing sleeps. The check that matters: the journal holds exactly the
words that offline transcription of the saved session audio gives.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from app.audio.capture import AudioCapture
from app.journal import Journal, JournalError
from app.engine_options import EngineOptions
from app.pipeline import LivePipeline, PipelineOptions
from app.pipeline_types import PipelineListener
from core import StreamingTranscriber
from core.words import Word
from tests.fake_audio import FakeDevice, FakeSoundDevice
from tests.signals import noise as engine_noise

RATE = 48_000
WAIT = 60  # seconds; only reached when something is broken


def live_engine(model, **fields) -> EngineOptions:
    return EngineOptions(str(model), compile=fields.pop("compile", "auto"), live=True, **fields)


def noise(seconds: float, seed: int):
    """Noise at the microphone's rate, as the capture delivers it."""
    return engine_noise(seconds, seed, rate=RATE)


class Recorder(PipelineListener):
    def __init__(self):
        self.loading, self.words, self.partials, self.statuses, self.gaps, self.errors = [], [], [], [], [], []
        self.info = None
        self.session_id = None
        self.ready, self.finished = threading.Event(), threading.Event()
        self.paused, self.resumed, self.gapped = threading.Event(), threading.Event(), threading.Event()

    def on_loading(self, stage, done, total):
        self.loading.append((stage, done, total))

    def on_ready(self, info):
        self.info = info
        self.ready.set()

    def on_words(self, words):
        self.words.extend(words)

    def on_partial(self, text):
        self.partials.append(text)

    def on_status(self, status):
        self.statuses.append(status)
        (self.paused if status.paused else self.resumed).set()

    def on_gap(self, start, end, reason):
        self.gaps.append((start, end, reason))
        self.gapped.set()

    def on_error(self, message):
        self.errors.append(message)

    def on_finished(self, session_id):
        self.session_id = session_id
        self.finished.set()


class Gate:
    """Wraps the engine; `hold()` makes its next push wait until `release()`: an engine that fell behind."""

    def __init__(self, inner):
        self.inner = inner
        self.sample_rate, self.delay_s = inner.sample_rate, inner.delay_s
        self._hold, self.entered, self._open = False, threading.Event(), threading.Event()
        self.flushed_tokens = []

    def hold(self):
        self._hold = True

    def release(self):
        self._open.set()

    @property
    def pending_text(self):
        return self.inner.pending_text

    def push(self, pcm):
        if self._hold:
            self._hold = False
            self.entered.set()
            assert self._open.wait(WAIT)
        return self.inner.push(pcm)

    def flush(self):
        words = self.inner.flush()
        self.flushed_tokens.append(self.inner.tokens[0])
        return words

    def reset(self):
        self.inner.reset()


class Session:
    """A pipeline running in a thread, fed by a fake 48 kHz microphone."""

    def __init__(self, ckpt, tmp_path, ring_s=30.0, engines=None, **options):
        self.sd = FakeSoundDevice([FakeDevice("Fake Mic", 1, float(RATE))])
        self.journal = Journal(tmp_path / "journal.sqlite3")
        self.listener = Recorder()
        self.engine = None
        self.stop, self.pause = threading.Event(), threading.Event()

        def engine_factory(opts, report):
            # the real engine, keeping its tokens to compare (the default factory is tested on its own)
            self.engine = Gate(StreamingTranscriber.from_pretrained(ckpt))
            return self.engine

        self.pipeline = LivePipeline(
            PipelineOptions(live_engine(ckpt), status_interval_s=0.0, **options), self.listener,
            capture_factory=lambda opts, source: AudioCapture(sd=self.sd, ring_s=ring_s),
            transcriber_factory=engines or engine_factory, journal=self.journal)
        self.thread = threading.Thread(target=self.pipeline.run, args=(self.stop, self.pause))
        self.thread.start()
        assert self.listener.ready.wait(WAIT), self.listener.errors

    def feed(self, samples):
        self.sd.stream.feed(samples, block=441)  # 9.1875 ms blocks: never a whole engine frame

    def finish(self) -> int:
        self.stop.set()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()
        assert self.listener.finished.is_set()
        return self.listener.session_id

    def saved_audio(self, sid):
        audio, rate = sf.read(self.journal.session(sid).audio_path, dtype="float32")
        assert rate == 24_000
        return audio


def offline(ckpt, audio, offset=0.0):
    engine = StreamingTranscriber.from_pretrained(ckpt)
    words = engine.push(audio) + engine.flush()
    return [Word(w.text, w.start + offset, w.end + offset) for w in words], engine.tokens[0]


def test_journal_holds_exactly_the_offline_words_of_the_saved_audio(tiny_ckpt, tmp_path):
    s = Session(tiny_ckpt, tmp_path, title="Oracle")
    assert s.sd.stream.samplerate == RATE  # the device's own rate, not the engine's
    speech = noise(3.7, seed=1)
    s.feed(speech)
    sid = s.finish()

    audio = s.saved_audio(sid)
    expected, tokens = offline(tiny_ckpt, audio)
    assert len(expected) > 10  # the tiny random model says plenty
    assert s.journal.words(sid) == expected
    assert s.listener.words == expected  # what was shown is what was saved
    assert s.engine.flushed_tokens == [tokens]  # same samples, same tokens
    # the saved audio is the microphone signal at 24 kHz, to 16-bit precision
    reference = soxr.resample(speech, RATE, 24_000, "HQ")
    assert abs(len(audio) - len(reference)) <= 2
    n = min(len(audio), len(reference))
    np.testing.assert_allclose(audio[:n], reference[:n], atol=2e-4)

    info = s.journal.session(sid)
    assert info.ended_at is not None and info.title == "Oracle" and info.device == "Fake Mic"
    assert s.listener.info.session_id == sid and s.listener.info.input_rate == RATE
    assert s.listener.info.audio_path == info.audio_path and s.listener.errors == []
    assert s.journal.gaps(sid) == []
    last = s.listener.statuses[-1]
    assert last.lag_s >= s.engine.delay_s and last.rtf > 0 and last.dropped_s == 0
    assert (last.device_name, last.model_name) == ("Fake Mic", Path(tiny_ckpt).name)
    assert any(s.listener.partials)  # tentative words were shown as they formed


def test_falling_behind_skips_to_live_with_a_gap_in_session_time(tiny_ckpt, tmp_path):
    s = Session(tiny_ckpt, tmp_path, max_lag_s=1.0)
    s.engine.hold()
    s.feed(noise(0.6, seed=2))
    assert s.engine.entered.wait(WAIT)  # the engine is stuck in a push...
    s.feed(noise(2.5, seed=3))  # ...while 2.5 s more arrive: past max_lag_s
    s.engine.release()
    assert s.listener.gapped.wait(WAIT)  # caught up...
    s.feed(noise(0.8, seed=4))  # ...and transcribing live again (less than max_lag_s at once)
    sid = s.finish()

    gaps = s.journal.gaps(sid)
    assert [g.reason for g in gaps] == ["skipped: lag"]
    assert s.listener.gaps == [(g.start, g.end, g.reason) for g in gaps]
    gap = gaps[0]
    assert 2.0 < gap.end - gap.start < 3.1
    audio = s.saved_audio(sid)
    assert len(audio) == pytest.approx(3.9 * 24_000, abs=100)  # skipped audio is kept, untranscribed
    # before the gap: the first stretch of audio; after it: the rest, in session time
    g0, g1 = round(gap.start * 24_000), round(gap.end * 24_000)
    before, _ = offline(tiny_ckpt, audio[:g0])
    after, _ = offline(tiny_ckpt, audio[g1:], offset=g1 / 24_000)
    assert after and s.journal.words(sid) == before + after
    assert all(w.start >= gap.end for w in after)
    assert s.listener.statuses[-1].dropped_s == pytest.approx(gap.end - gap.start, abs=0.01)


def test_samples_lost_in_the_ring_become_silence_and_a_gap(tiny_ckpt, tmp_path):
    s = Session(tiny_ckpt, tmp_path, ring_s=1.0, max_lag_s=10.0)
    s.engine.hold()
    s.feed(noise(0.3, seed=5))
    assert s.engine.entered.wait(WAIT)
    s.feed(noise(2.0, seed=6))  # the 1 s ring overflows while the engine is stuck
    s.engine.release()
    sid = s.finish()

    gap = s.journal.gaps(sid)[0]
    assert gap.reason == "dropped: overflow" and gap.end - gap.start > 0.5
    audio = s.saved_audio(sid)
    assert len(audio) == pytest.approx(2.3 * 24_000, abs=100)  # the timeline stays whole
    # silence where audio was lost (the resampler holds up to ~40 ms back, so its edges carry audio)
    inner = audio[round((gap.start + 0.05) * 24_000):round((gap.end - 0.05) * 24_000)]
    assert len(inner) > 12_000 and np.abs(inner).max() < 1e-3


def test_pause_finishes_the_words_and_keeps_nothing_meanwhile(tiny_ckpt, tmp_path):
    s = Session(tiny_ckpt, tmp_path)
    s.feed(noise(1.5, seed=7))
    s.pause.set()
    assert s.listener.paused.wait(WAIT)
    words_at_pause = list(s.listener.words)
    s.feed(noise(2.0, seed=8))  # said during the pause: not kept
    s.listener.resumed.clear()
    s.pause.clear()
    assert s.listener.resumed.wait(WAIT)
    s.feed(noise(1.0, seed=9))
    sid = s.finish()

    audio = s.saved_audio(sid)
    assert len(audio) == pytest.approx(2.5 * 24_000, abs=100)
    first, _ = offline(tiny_ckpt, audio[:round(1.5 * 24_000)])
    assert words_at_pause == first  # final when the pause took effect


def test_a_vanished_device_ends_the_session_and_keeps_it(tiny_ckpt, tmp_path):
    s = Session(tiny_ckpt, tmp_path)
    s.feed(noise(1.2, seed=10))
    s.sd.stream.vanish()  # no stop: the pipeline notices by itself
    s.thread.join(WAIT)
    sid = s.listener.session_id
    assert s.listener.finished.is_set() and sid is not None
    assert s.listener.errors == ["input device 'Fake Mic' disappeared; the session so far is saved"]
    expected, _ = offline(tiny_ckpt, s.saved_audio(sid))
    assert s.journal.words(sid) == expected and expected
    assert s.journal.session(sid).ended_at is not None
    assert [g.reason for g in s.journal.gaps(sid)] == ["device lost"]


def test_a_journal_that_stays_full_gets_the_words_rescued(tiny_ckpt, tmp_path, monkeypatch):
    s = Session(tiny_ckpt, tmp_path)

    def full(*args):
        raise JournalError("cannot save words in the session journal: the disk is full")

    monkeypatch.setattr(s.journal, "commit", full)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    s.feed(noise(2.0, seed=11))
    s.finish()

    errors = s.listener.errors
    assert errors[0] == "cannot save words in the session journal: the disk is full"  # said once
    assert "words are not in the journal, they were saved to" in errors[-1] and len(errors) == 2
    rescued = json.loads(Path(errors[-1].split("saved to ")[1].strip("'")).read_text())
    assert [w["text"] for w in rescued["words"]] == [w.text for w in s.listener.words]


def test_listener_errors_do_not_stop_the_recording(tiny_ckpt, tmp_path):
    s = Session(tiny_ckpt, tmp_path)

    def broken(words):
        raise RuntimeError("widget gone")

    s.listener.on_words = broken
    s.feed(noise(1.5, seed=12))
    sid = s.finish()
    assert s.journal.words(sid)  # journaled all the same


def test_no_microphone_is_one_error_and_no_session(tiny_ckpt, tmp_path):
    listener = Recorder()
    sd = FakeSoundDevice(devices=[], default_input=-1)
    journal = Journal(tmp_path / "j.sqlite3")
    pipeline = LivePipeline(PipelineOptions(live_engine(tiny_ckpt)), listener, journal=journal,
                            capture_factory=lambda o, source: AudioCapture(sd=sd),
                            transcriber_factory=lambda o, r: StreamingTranscriber.from_pretrained(tiny_ckpt))
    assert pipeline.run(threading.Event()) is None
    assert listener.errors == ["no audio input device found; connect a microphone, or check that the sound "
                               "server (PulseAudio, PipeWire) is running"]
    assert listener.session_id is None and journal.sessions() == []
    assert not (tmp_path / "audio").exists() or not any((tmp_path / "audio").iterdir())


def test_a_second_session_reuses_the_engine_and_hears_only_its_own_audio(tiny_ckpt, tmp_path):
    from app.model_loading import KeptEngine

    loads = []

    def loader(options, report):
        loads.append(options.model)
        return StreamingTranscriber.from_pretrained(tiny_ckpt)

    engines = KeptEngine(loader)
    speech = noise(2.5, seed=7)
    words = []
    for run in range(2):
        s = Session(tiny_ckpt, tmp_path / f"run{run}", engines=engines)
        s.feed(speech)
        sid = s.finish()
        assert s.listener.errors == []
        words.append(s.journal.words(sid))
        assert s.pipeline.transcriber is None  # given back: the pipeline holds no engine any more
    assert loads == [str(tiny_ckpt)]  # loaded once, for both sessions
    assert words[0] and words[1] == words[0]  # reset in between: nothing of the first session leaks


def test_an_engine_loaded_for_a_session_that_never_began_is_kept(tiny_ckpt, tmp_path):
    from app.model_loading import KeptEngine

    loads = []
    engines = KeptEngine(lambda options, report: loads.append(1) or StreamingTranscriber.from_pretrained(tiny_ckpt))
    stopped = LivePipeline(PipelineOptions(live_engine(tiny_ckpt)), Recorder(), transcriber_factory=engines)
    stopped.load()
    stopped.release()  # Stop pressed while it loaded
    again = LivePipeline(PipelineOptions(live_engine(tiny_ckpt)), Recorder(), transcriber_factory=engines)
    again.load()
    assert loads == [1] and stopped.transcriber is None and again.transcriber is not None


def test_an_engine_that_failed_is_not_kept(tiny_ckpt, tmp_path):
    from app.model_loading import KeptEngine

    loads = []

    class Broken:
        sample_rate, delay_s, pending_text = 24_000, 0.5, ""

        def push(self, pcm):
            raise RuntimeError("kernel failure")

        flush = push

        def reset(self):
            pass

    engines = KeptEngine(lambda options, report: loads.append(1) or Broken())
    for run in range(2):
        s = Session(tiny_ckpt, tmp_path / f"run{run}", engines=engines)
        s.feed(noise(0.5, seed=8))
        s.finish()
        assert any("kernel failure" in e for e in s.listener.errors)
    assert len(loads) == 2


def test_model_is_loaded_with_progress(tiny_ckpt, tmp_path):
    listener = Recorder()
    # compile named: "auto" (the default) would add a "compile" stage on a CPU too slow to keep up
    pipeline = LivePipeline(PipelineOptions(live_engine(tiny_ckpt, compile=False)), listener)
    pipeline.load()
    stages = {stage for stage, _, _ in listener.loading}
    assert stages == {"weights"} and listener.loading[-1][1] == listener.loading[-1][2] > 0
    assert pipeline.transcriber.sample_rate == 24_000


def test_a_missing_model_is_one_error(tmp_path):
    listener = Recorder()
    sd = FakeSoundDevice([FakeDevice("Fake Mic", 1, float(RATE))])  # not this machine's sound server
    pipeline = LivePipeline(PipelineOptions(live_engine(tmp_path / "nowhere")), listener,
                            journal=Journal(tmp_path / "j.sqlite3"), capture_factory=lambda o, source: AudioCapture(sd=sd))
    assert pipeline.run(threading.Event()) is None
    assert len(listener.errors) == 1 and "nowhere" in listener.errors[0]


def test_hub_download_progress_reaches_the_listener():
    from app.model_loading import hub_progress_class

    seen = []
    bar_class = hub_progress_class(lambda *a: seen.append(a))
    with bar_class(total=1000, unit="B", desc="Downloading bytes") as transfer:
        transfer.update(10)  # network bytes: its total is a guess, not reported
    with bar_class(total=1000, unit="B", desc="Reconstructing") as disk:
        disk.update(400)
        disk.update(600)
    with bar_class(total=3, desc="Fetching 3 files") as files:
        files.update(1)
    assert seen == [("download", 400, 1000), ("download", 1000, 1000)]
