"""`surtitle live`, `sessions`, `export` and the GUI launch, with a fake microphone and the tiny engine."""

import io
import json
import os
import signal
import subprocess
import sys
import threading
import types

import numpy as np
import pytest
import soundfile as sf

from app import cli_live
from app.audio.capture import AudioCapture
from app.cli import main
from app.journal import Journal
from app.terminal_captions import TerminalCaptions
from core import StreamingTranscriber
from core.words import Word
from tests.fake_audio import FakeDevice, FakeSoundDevice


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SURTITLE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def microphone(monkeypatch):
    """A fake 44.1 kHz microphone; `then` runs in another thread once the stream has started."""
    sd = FakeSoundDevice([FakeDevice("Desk Mic", 2, 44100.0)])
    sd.then = None

    def started(stream):
        threading.Thread(target=sd.then, args=(stream,)).start()

    sd.on_start = started
    monkeypatch.setattr(cli_live, "make_capture", lambda options, source: AudioCapture(options.input_device, sd=sd))
    return sd


def speech(seconds=3.0, seed=0):
    return (np.random.default_rng(seed).standard_normal((round(seconds * 44100), 2)) * 0.1).astype(np.float32)


# The precision a session compared with offline transcription runs, named: by default `live` picks
# it by timing this machine ("auto": int4 and/or the compiled step where int8 would not keep up),
# and only an eager int8 session gives what offline_words gives, token for token.
PINNED = ["--quantize", "int8", "--no-compile"]


def offline_words(ckpt, path):
    audio, _ = sf.read(path, dtype="float32")
    engine = StreamingTranscriber.from_pretrained(ckpt, quantize="int8")  # eager int8: what PINNED runs live
    return engine.push(audio) + engine.flush()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_live_until_a_signal_keeps_every_word(tiny_ckpt, data_dir, microphone, capsys, signum):
    def talk_then_stop(stream):
        stream.feed(speech(), block=512)
        os.kill(os.getpid(), signum)

    microphone.then = talk_then_stop
    code = main(["live", "--model", str(tiny_ckpt), "--title", "Desk", *PINNED])

    out, err = capsys.readouterr()
    assert code == 0, err
    journal = Journal()
    (info,) = journal.sessions()
    words = journal.words(info.id)
    assert words == offline_words(tiny_ckpt, info.audio_path) and len(words) > 10
    assert out.split() == [w.text for w in words]  # the captions are the journal
    assert all(len(line) < 80 for line in out.splitlines())  # wrapped (stdout is not a TTY here)
    assert "listening on 'Desk Mic' (44100 Hz)" in err
    assert f"session {info.id} saved in" in err and "surtitle export" in err
    assert info.title == "Desk" and info.ended_at is not None
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


@pytest.mark.parametrize("flags, expected", [([], "auto"), (["--no-compile"], False), (["--compile"], True)],
                         ids=["default", "no-compile", "compile"])
def test_live_compiles_where_it_would_fall_behind_unless_told(tiny_ckpt, data_dir, microphone, flags, expected):
    asked = []

    def engine(options, report):
        asked.append(options.compile)
        return StreamingTranscriber.from_pretrained(options.model)

    microphone.then = lambda stream: stream.feed(speech(0.5), block=512)
    code = main(["live", "--model", str(tiny_ckpt), "--seconds", "0.2", "--no-audio", *flags],
                transcriber_factory=engine)
    assert code == 0 and asked == [expected]


def test_compiling_is_announced_on_its_own_line(capsys):
    listener = cli_live._TerminalListener(TerminalCaptions(io.StringIO()), threading.Event(), None)
    listener.on_loading("weights", 3, 3)
    listener.on_loading("compile", 0, 0)
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("surtitle: compiling the model for this CPU")
    listener.on_loading("kernel", 0, 0)
    assert capsys.readouterr().err.startswith("surtitle: preparing the int4 kernel")


def test_live_for_n_seconds_recovers_a_crashed_session_first(tiny_ckpt, data_dir, microphone, capsys):
    journal = Journal()
    crashed = journal.start_session("m", "Old Mic", title="Crashed")
    journal.add_words(crashed, [Word("saved", 0.0, 0.5)])
    journal.commit()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    journal._conn.execute("UPDATE sessions SET pid = ? WHERE id = ?", (dead.pid, crashed))
    journal._live.clear()
    journal.close()

    microphone.then = lambda stream: stream.feed(speech(1.0), block=512)
    code = main(["live", "--model", str(tiny_ckpt), "--seconds", "0.3", "--no-audio"])

    err = capsys.readouterr().err
    assert code == 0, err
    assert f"recovered session {crashed} ('Crashed', 1 words" in err
    sessions = {s.id: s for s in Journal().sessions()}
    assert sessions[crashed].ended_at is not None
    new = max(sessions)
    assert sessions[new].audio_path is None and sessions[new].word_count > 0


def test_no_microphone_is_one_error_line(tiny_ckpt, data_dir, monkeypatch, capsys):
    sd = FakeSoundDevice(devices=[], default_input=-1)
    monkeypatch.setattr(cli_live, "make_capture", lambda options, source: AudioCapture(sd=sd))
    assert main(["live", "--model", str(tiny_ckpt)]) == 1
    err = capsys.readouterr().err
    assert err.count("surtitle: error:") == 1 and "no audio input device found" in err


def test_sessions_and_export_read_the_journal(data_dir, tmp_path, capsys):
    journal = Journal()
    sid = journal.start_session("kyutai/stt-1b-en_fr-trfs", "Desk Mic", title="Standup")
    journal.add_words(sid, [Word("Hello", 0.5, 0.9), Word("team.", 1.0, 1.4), Word("Next", 5.0, 5.3)])
    journal.end_session(sid)
    live = journal.start_session("m", "d", title="Still going")
    journal.add_words(live, [Word("now", 0.0, 0.2)])
    journal.commit()  # another process (this export) sees what is committed: at most ~0.5 s behind

    assert main(["sessions"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["ID", "STARTED", "LENGTH", "WORDS", "TITLE"]
    assert "Standup" in listing[2] and listing[2].split()[4] == "3"
    assert "Still going  (recording)" in listing[1]

    assert main(["export", str(sid)]) == 0
    assert capsys.readouterr().out == "Hello team.\n\nNext\n"
    assert main(["export", str(sid), "-o", str(tmp_path / "standup.srt")]) == 0
    assert (tmp_path / "standup.srt").read_text().startswith("1\n00:00:00,500 --> ")
    assert main(["export", str(sid), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["meta"]["title"] == "Standup" and document["meta"]["device"] == "Desk Mic"
    assert [w["text"] for w in document["words"]] == ["Hello", "team.", "Next"]
    assert main(["export", str(live)]) == 0  # a live session exports what is final so far
    assert capsys.readouterr().out == "now\n"
    assert main(["export", "99"]) == 1
    assert "there is no session 99" in capsys.readouterr().err


def test_no_command_starts_the_desktop_app(monkeypatch):
    calls = []
    fake = types.ModuleType("app.gui.app")
    fake.main = lambda argv: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "app.gui.app", fake)
    assert main([]) == 0 and calls == [[]]


def test_desktop_app_that_cannot_start_is_one_error_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "app.gui.app", None)  # as if it were not installed
    assert main([]) == 1
    assert capsys.readouterr().err.startswith("surtitle: error: the desktop app cannot start")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    if sys.platform.startswith("linux"):
        assert main([]) == 1
        assert "no display" in capsys.readouterr().err


# --- the caption printer -----------------------------------------------------------------------


def w(text, start):
    return Word(text, start, start + 0.3)


def test_pipe_output_is_whole_wrapped_lines():
    out = io.StringIO()
    captions = TerminalCaptions(out, tty=False, width=20)
    captions.add_words([w("one", 0), w("two", 0.5), w("three", 1), w("four", 1.5)])
    captions.set_partial("fi")  # never shown in a pipe
    captions.add_words([w("five", 2), w("after-a-pause", 9)])
    captions.finish()
    assert out.getvalue() == "one two three four\nfive\nafter-a-pause\n"


def test_tty_output_redraws_the_line_with_the_partial_dimmed():
    out = io.StringIO()
    captions = TerminalCaptions(out, tty=True, width=40)
    captions.add_words([w("hello", 0)])
    captions.set_partial("wor")
    assert out.getvalue().endswith("\rhello \x1b[2mwor\x1b[0m\x1b[K")
    captions.add_words([w("world", 0.5)])
    captions.set_partial("")
    assert out.getvalue().endswith("\rhello world\x1b[K")
    captions.finish()
    assert out.getvalue().endswith("\rhello world\x1b[K\n")


def test_the_first_lag_gap_of_an_int8_cpu_engine_suggests_int4(tiny_ckpt, capsys):
    from core import StreamingTranscriber

    listener = cli_live._TerminalListener(TerminalCaptions(io.StringIO()), threading.Event(), None)
    engine = StreamingTranscriber.from_pretrained(tiny_ckpt, quantize="int8")
    listener.engine = lambda: engine
    listener.on_gap(10.0, 20.0, "skipped: lag")
    listener.on_gap(40.0, 50.0, "skipped: lag")
    lines = capsys.readouterr().err.splitlines()
    assert [line for line in lines if "--quantize int4" in line] == [lines[1]]  # once, after the first gap
    listener = cli_live._TerminalListener(TerminalCaptions(io.StringIO()), threading.Event(), None)
    full = StreamingTranscriber.from_pretrained(tiny_ckpt, quantize="none")
    listener.engine = lambda: full
    listener.on_gap(10.0, 20.0, "skipped: lag")
    assert "int4" not in capsys.readouterr().err  # float32 was chosen on purpose: no advice


def test_system_audio_with_a_microphone_named_is_a_usage_error(capsys):
    assert main(["live", "--source", "system", "--input", "USB"]) == 2
    assert "--input picks a microphone" in capsys.readouterr().err


def test_devices_lists_the_microphones_and_the_outputs(monkeypatch, capsys):
    from app import cli_devices
    from app.audio.capture import list_input_devices
    from app.audio.system_audio import list_outputs
    from tests.fake_pulse import FakePulseServer

    sd = FakeSoundDevice([FakeDevice("USB headset"), FakeDevice("Built-in mic")], default_input=1)
    monkeypatch.setattr(cli_devices, "list_input_devices", lambda: list_input_devices(sd))
    monkeypatch.setattr(cli_devices, "list_outputs", lambda: list_outputs(FakePulseServer().connect))
    assert main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("USB headset" in line and "*" not in line for line in lines)
    assert any("Built-in mic" in line and "*" in line for line in lines)
    assert "  * Speakers  (speakers)" in lines and "    Headphones  (headphones)" in lines


def test_each_line_says_who_speaks_and_a_new_speaker_starts_a_line():
    out = io.StringIO()
    captions = TerminalCaptions(out, tty=False, width=24)
    you = [Word(t, s, s + 0.3, speaker="You") for t, s in (("hello", 0), ("there", 0.5))]
    captions.add_words(you + [Word("hi", 1.0, 1.2, speaker="Others")])
    others = [Word(t, 1.5 + i / 2, 1.8 + i / 2, speaker="Others") for i, t in enumerate("how are you all".split())]
    captions.add_words(others)
    captions.finish()
    assert out.getvalue() == "You: hello there\nOthers: hi how are you\nOthers: all\n"
