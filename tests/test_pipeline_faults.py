"""The live pipeline facing faults: no microphone is said before any model loads, and a journal
that cannot be written is said once, then once a minute with the count, never lost from memory."""

import os
import threading

from app.audio.capture import AudioCapture
from app.engine_options import EngineOptions
from app.journal import Journal
from app.pipeline import LivePipeline, PipelineListener, PipelineOptions
from core.words import Word
from tests.disks import fill, small_disk
from tests.fake_audio import FakeSoundDevice


class Errors(PipelineListener):
    def __init__(self):
        self.errors = []

    def on_error(self, message):
        self.errors.append(message)


def test_no_microphone_is_said_before_the_model_loads(tmp_path):
    loads = []
    listener = Errors()
    pipeline = LivePipeline(PipelineOptions(EngineOptions(live=True)), listener,
                            capture_factory=lambda o, source: AudioCapture(sd=FakeSoundDevice(devices=[], default_input=-1)),
                            transcriber_factory=lambda options, report: loads.append(options),
                            journal=Journal(tmp_path / "j.sqlite3"))

    assert pipeline.run(threading.Event()) is None
    assert loads == []  # a model load takes 10 s to minutes: not for a session that cannot hear
    assert listener.errors == ["no audio input device found; connect a microphone, or check that the sound "
                               "server (PulseAudio, PipeWire) is running"]


def test_a_full_disk_is_said_once_then_once_a_minute_and_nothing_is_lost(tmp_path):
    now = [0.0]
    clock = lambda: now[0]  # noqa: E731
    with small_disk(tmp_path / "disk", size="512k") as disk:
        journal = Journal(disk / "journal.sqlite3", clock=clock)
        listener = Errors()
        pipeline = LivePipeline(PipelineOptions(EngineOptions("m", live=True)), listener, journal=journal, clock=clock)
        pipeline.session_id = sid = journal.start_session("m", "mic")
        fill(disk)

        told_at = []  # how many words had been given when each line came
        for step in range(1900):  # over three minutes of a session, a word every 0.1 s
            now[0] += 0.1
            pipeline.words_final([Word(f"w{step}", now[0] - 0.08, now[0] - 0.02)])
            if len(listener.errors) > len(told_at):
                told_at.append(step + 1)

        # at once, then at the first failed commit a minute later (commits come every 0.5 s), three
        # times in 190 s: not at every commit, as it did
        assert told_at[0] == 1 and len(told_at) == 4
        assert all(600 <= b - a <= 610 for a, b in zip(told_at, told_at[1:])), told_at
        assert "the disk is full" in listener.errors[0]
        for words_given, line in zip(told_at[1:], listener.errors[1:]):
            assert "still failing" in line and f"{words_given} words wait in memory" in line

        os.unlink(disk / "filler")  # space again: the next commit saves everything kept meanwhile
        now[0] += 0.5
        pipeline.words_final([Word("last", now[0] - 0.08, now[0] - 0.02)])
        journal.end_session(sid)
        assert [w.text for w in journal.words(sid)] == [f"w{k}" for k in range(1900)] + ["last"]
        assert len(listener.errors) == 4
        journal.close()
