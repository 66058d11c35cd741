"""End to end through a real sound server: espeak-ng speech → PulseAudio virtual microphone →
PortAudio/sounddevice → `surtitle live` (a subprocess) → journal and session audio.

Needs the virtual microphone of `.ci/start-virtual-mic.sh` (CI starts it; locally:
`source .ci/start-virtual-mic.sh`). Skipped, saying so, when no PulseAudio server is reachable.
A tiny random model says random words: equality with offline transcription of the saved audio,
sample for sample and token for token, is the check.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.journal import Journal
from core import StreamingTranscriber

ROOT = Path(__file__).resolve().parents[1]
WAIT = 60
# The precision these sessions run, named: by default `live` picks it by timing this machine
# ("auto": int4 and/or the compiled step where int8 would not keep up), and only an eager int8
# session gives what the offline int8 transcription below gives, token for token.
PINNED = ("--quantize", "int8", "--no-compile")


def _pulse_problem() -> str | None:
    for tool in ("pactl", "paplay", "espeak-ng"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    try:
        sinks = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "pactl timed out"
    if sinks.returncode != 0:
        return "no PulseAudio server is reachable (source .ci/start-virtual-mic.sh to start one)"
    if "vmic" not in sinks.stdout:
        return "the PulseAudio server has no 'vmic' sink (start it with .ci/start-virtual-mic.sh)"
    return None


needs_vmic = pytest.mark.skipif(_pulse_problem() is not None, reason=str(_pulse_problem()))


def _speakers_problem() -> str | None:
    problem = _pulse_problem()
    if problem is None and "speakers" not in subprocess.run(["pactl", "get-default-sink"], capture_output=True,
                                                            text=True, timeout=10).stdout:
        problem = "the PulseAudio server's default output is not 'speakers' (start it with .ci/start-virtual-mic.sh)"
    return problem


needs_speakers = pytest.mark.skipif(_speakers_problem() is not None, reason=str(_speakers_problem()))
TOOLS = ("pulseaudio", "pactl", "paplay", "espeak-ng")
needs_pulseaudio = pytest.mark.skipif(not all(map(shutil.which, TOOLS)),
                                      reason=f"needs {', '.join(TOOLS)} (apt-get install pulseaudio pulseaudio-utils "
                                             "libasound2-plugins espeak-ng)")


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "Hello world. These are live captions from a virtual microphone."],
                   check=True)
    return path


class Live:
    """`surtitle live` in a subprocess, its stderr and stdout read by threads into queues."""

    def __init__(self, data_dir: Path, *args: str, env: dict | None = None):
        env = dict(env or os.environ, SURTITLE_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "live", *args], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err_lines, self.out_lines = queue.Queue(), queue.Queue()
        self.stderr: list[str] = []
        for stream, lines in ((self.proc.stderr, self.err_lines), (self.proc.stdout, self.out_lines)):
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _pump(stream, lines: queue.Queue) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def wait_for_stderr(self, text: str) -> str:
        deadline = time.monotonic() + WAIT
        while True:
            line = self.err_lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"surtitle live exited before saying {text!r}: {''.join(self.stderr)}"
            self.stderr.append(line)
            if text in line:
                return line

    def rest_of_stderr(self) -> str:
        while (line := self.err_lines.get(timeout=WAIT)) is not None:
            self.stderr.append(line)
        return "".join(self.stderr)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def play(path: Path, env: dict | None = None, device: str = "vmic") -> subprocess.Popen:
    return subprocess.Popen(["paplay", f"--device={device}", str(path)], env=env)


def offline(ckpt: Path, audio: np.ndarray):
    engine = StreamingTranscriber.from_pretrained(ckpt, quantize="int8")  # eager int8: what PINNED runs live
    return engine.push(audio) + engine.flush(), engine.tokens[0]


def wait_until_saved(path: Path, words: int) -> None:
    """Wait until the journal at `path` (written by another process) holds `words` words."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=WAIT)) as conn:
                (saved,), = conn.execute("SELECT count(*) FROM words").fetchall()
            if saved >= words:
                return
        except sqlite3.OperationalError:  # not created yet
            pass
        threading.Event().wait(0.02)  # polling a file another process writes
    raise AssertionError(f"{words} words were not in {path} after {WAIT} s")


def best_correlation(recorded: np.ndarray, reference: np.ndarray) -> float:
    """Normalised cross-correlation at the best lag: is the speech in the recording?"""
    n = 1 << int(np.ceil(np.log2(len(recorded) + len(reference))))
    spectrum = np.fft.rfft(recorded, n) * np.conj(np.fft.rfft(reference, n))
    peak = np.abs(np.fft.irfft(spectrum, n)).max()
    return float(peak / (np.linalg.norm(reference) * np.linalg.norm(recorded) + 1e-12))


@needs_vmic
def test_speech_into_the_virtual_microphone_is_journaled_as_offline_transcription_gives(tiny_ckpt, speech,
                                                                                         tmp_path):
    live = Live(tmp_path / "data", "--model", str(tiny_ckpt), "--seconds", "6", *PINNED)
    try:
        live.wait_for_stderr("listening on")
        player = play(speech)
        assert player.wait(WAIT) == 0
        assert live.proc.wait(WAIT) == 0, live.rest_of_stderr()
    finally:
        live.kill()
    stderr = live.rest_of_stderr()
    assert "saved in" in stderr

    journal = Journal(tmp_path / "data" / "journal.sqlite3")
    (info,) = journal.sessions()
    assert info.ended_at is not None and journal.unfinished() == []
    audio, rate = sf.read(info.audio_path, dtype="float32")
    assert rate == 24_000 and len(audio) > 5 * 24_000
    # what the microphone recorded really is the speech that was played
    spoken, spoken_rate = sf.read(speech, dtype="float32")
    import soxr

    assert best_correlation(audio, soxr.resample(spoken, spoken_rate, 24_000)) > 0.9
    words, _ = offline(tiny_ckpt, audio)
    assert len(words) > 10
    assert journal.words(info.id) == words  # same samples, same tokens, same words
    captions = "".join(iter(live.out_lines.get, None))
    assert captions.split() == [w.text for w in words]


@pytest.fixture(scope="module")
def other_speech(tmp_path_factory):
    """What the other side of a call says: not what the microphone hears."""
    path = tmp_path_factory.mktemp("speech") / "other.wav"
    subprocess.run(["espeak-ng", "-v", "en+f3", "-w", str(path),
                    "Good morning everyone. The quarterly numbers look better than we expected."], check=True)
    return path


def _resampled(path: Path) -> np.ndarray:
    import soxr

    audio, rate = sf.read(path, dtype="float32")
    return soxr.resample(audio, rate, 24_000)


def _wait_for_a_recording_on(source: str) -> None:
    """Wait until some program records from `source` (as `pactl list source-outputs` shows)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        sources = subprocess.run(["pactl", "list", "short", "sources"], capture_output=True, text=True).stdout
        index = next((line.split()[0] for line in sources.splitlines() if line.split()[1:2] == [source]), None)
        outputs = subprocess.run(["pactl", "list", "short", "source-outputs"], capture_output=True, text=True).stdout
        if index is not None and any(line.split()[1:2] == [index] for line in outputs.splitlines()):
            return
        threading.Event().wait(0.05)  # polling the sound server, as another program would
    raise AssertionError(f"nothing records from {source} after {WAIT} s")


def _with_two_voices(tmp_path: Path, speech: Path, other_speech: Path, *args: str):
    """A 7 s `surtitle live` session while the others speak through the speakers and, at once, you
    into the microphone; returns its journal, the session's info and the finished Live."""
    live = Live(tmp_path / "data", *args, "--seconds", "7")
    try:
        live.wait_for_stderr("listening on")
        players = [play(other_speech, device="speakers"), play(speech, device="vmic")]
        assert all(p.wait(WAIT) == 0 for p in players)
        assert live.proc.wait(WAIT) == 0, live.rest_of_stderr()
    finally:
        live.kill()
    journal = Journal(tmp_path / "data" / "journal.sqlite3")
    (info,) = journal.sessions()
    return journal, info, live


@needs_speakers
def test_what_the_computer_plays_is_captioned_and_the_microphone_is_not(tiny_ckpt, speech, other_speech, tmp_path):
    journal, info, live = _with_two_voices(tmp_path, speech, other_speech, "--source", "system",
                                           "--model", str(tiny_ckpt), *PINNED)
    assert "'System audio (Speakers)'" in live.stderr[-1] and info.device == "System audio (Speakers)"
    audio, _ = sf.read(info.audio_path, dtype="float32")
    assert best_correlation(audio, _resampled(other_speech)) > 0.9  # the speakers' sound...
    assert best_correlation(audio, _resampled(speech)) < 0.3  # ...and not the microphone's
    words, _ = offline(tiny_ckpt, audio)
    assert len(words) > 10 and journal.words(info.id) == words


@needs_speakers
def test_both_sides_of_a_call_are_captioned_labelled_and_saved_side_by_side(tiny_ckpt, speech, other_speech,
                                                                            tmp_path):
    journal, info, live = _with_two_voices(tmp_path, speech, other_speech, "--source", "both", "--model",
                                           str(tiny_ckpt), "--quantize", "none", "--no-compile")  # float32: exact
    audio, _ = sf.read(info.audio_path, dtype="float32")
    mic, system = audio[:, 0].copy(), audio[:, 1].copy()  # left the microphone, right the computer
    assert best_correlation(mic, _resampled(speech)) > 0.9 and best_correlation(system, _resampled(other_speech)) > 0.9
    assert best_correlation(mic, _resampled(other_speech)) < 0.3 and best_correlation(system, _resampled(speech)) < 0.3
    engine = StreamingTranscriber.from_pretrained(tiny_ckpt, quantize="none")
    words = journal.words(info.id)
    for label, side in (("You", mic), ("Others", system)):
        engine.reset()
        expected = [(w.text, w.start, w.end) for w in engine.push(side) + engine.flush()]
        got = [(w.text, w.start, w.end) for w in words if w.speaker == label]
        # The shorter channel is padded with silence at the end of the file, so offline it runs on a
        # little longer than it did live: the words of its last second may differ (one more word in
        # the padding, a word ending later). Everything before that is exactly the same.
        settled = [e for e in expected if e[2] < len(side) / 24_000 - 1.0]
        assert got[:len(settled)] == settled and len(settled) > 5
    captions = "".join(iter(live.out_lines.get, None)).splitlines()
    assert any(line.startswith("You: ") for line in captions) and any(line.startswith("Others: ") for line in captions)


@needs_speakers
def test_system_audio_follows_a_new_default_output_without_a_gap(tiny_ckpt, other_speech, tmp_path):
    loaded = subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=headphones",
                             "sink_properties=device.description=Headphones"], capture_output=True, text=True,
                            check=True).stdout.strip()
    live = Live(tmp_path / "data", "--source", "system", "--model", str(tiny_ckpt), "--seconds", "8", *PINNED)
    try:
        live.wait_for_stderr("listening on")
        subprocess.run(["pactl", "set-default-sink", "headphones"], check=True)  # headphones plugged in
        _wait_for_a_recording_on("headphones.monitor")  # the capture asks the server once a second
        assert play(other_speech, device="headphones").wait(WAIT) == 0
        assert live.proc.wait(WAIT) == 0, live.rest_of_stderr()
    finally:
        live.kill()
        subprocess.run(["pactl", "set-default-sink", "speakers"], check=True)
        subprocess.run(["pactl", "unload-module", loaded], check=True)
    journal = Journal(tmp_path / "data" / "journal.sqlite3")
    (info,) = journal.sessions()
    audio, _ = sf.read(info.audio_path, dtype="float32")
    assert best_correlation(audio, _resampled(other_speech)) > 0.9  # heard through the new output
    assert journal.gaps(info.id) == [] and info.duration_s > 7.0  # one session, its time whole


@needs_vmic
def test_a_killed_session_survives_and_is_recovered_at_the_next_start(tiny_ckpt, speech, tmp_path):
    data = tmp_path / "data"
    live = Live(data, "--model", str(tiny_ckpt), *PINNED)
    player = None
    try:
        live.wait_for_stderr("listening on")
        player = play(speech)
        first_line = live.out_lines.get(timeout=WAIT)  # final words, printed (and queued in the journal)
        assert first_line
        # Killed once they are on disk (how soon they get there is benchmarks/live_durability.py's)
        wait_until_saved(data / "journal.sqlite3", len(first_line.split()))
        live.proc.send_signal(signal.SIGKILL)
    finally:
        live.kill()
        if player is not None:
            player.kill()
            player.wait()
    assert live.proc.returncode == -signal.SIGKILL

    path = data / "journal.sqlite3"
    with sqlite3.connect(path) as conn:  # as it was left: nobody recovered it yet
        (sid, ended_at, audio_path), = conn.execute("SELECT id, ended_at, audio_path FROM sessions").fetchall()
        saved = [t for (t,) in conn.execute("SELECT text FROM words WHERE session_id = ? ORDER BY seq", (sid,))]
    assert ended_at is None
    assert saved[:len(first_line.split())] == first_line.split()
    audio, _ = sf.read(audio_path, dtype="float32")  # readable as the kill left it
    assert len(audio) > 24_000

    again = Live(data, "--model", str(tiny_ckpt), "--seconds", "0.5", "--no-audio", *PINNED)
    try:
        line = again.wait_for_stderr("recovered session")
        assert again.proc.wait(WAIT) == 0, again.rest_of_stderr()
    finally:
        again.kill()
    assert f"recovered session {sid} " in line
    journal = Journal(path)
    assert journal.session(sid).ended_at is not None and journal.unfinished() == []
    assert sf.info(audio_path).frames == len(audio)  # the header now says what the file holds


@needs_pulseaudio
def test_a_sound_server_that_dies_mid_session_ends_it_with_the_words_kept(tiny_ckpt, speech, tmp_path):
    # A PulseAudio of its own (not the shared one): this test kills it.
    runtime = tmp_path / "pulse-runtime"
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), VMIC_SETTLE_S="1")
    env.pop("PULSE_SERVER", None)
    subprocess.run(["bash", "-c", "source .ci/start-virtual-mic.sh"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=WAIT)
    env["PULSE_SERVER"] = f"unix:{runtime}/pulse/native"
    live = Live(tmp_path / "data", "--model", str(tiny_ckpt), *PINNED, env=env)
    player = None
    try:
        live.wait_for_stderr("listening on")
        player = play(speech, env)
        assert live.out_lines.get(timeout=WAIT)  # some words are final
        os.kill(int((runtime / "pulseaudio.pid").read_text()), signal.SIGKILL)  # PortAudio raises nothing
        assert live.proc.wait(WAIT) == 1
    finally:
        live.kill()
        if player is not None:
            player.kill()
            player.wait()
        subprocess.run([str(ROOT / ".ci/stop-virtual-mic.sh")], env=env, timeout=WAIT)
    stderr = live.rest_of_stderr()
    assert re.search(r"surtitle: error: input device '.+' disappeared; the session so far is saved", stderr)
    journal = Journal(tmp_path / "data" / "journal.sqlite3")
    (info,) = journal.sessions()
    assert info.ended_at is not None and [g.reason for g in journal.gaps(info.id)] == ["device lost"]
    audio, _ = sf.read(info.audio_path, dtype="float32")
    words, _ = offline(tiny_ckpt, audio)
    assert words and journal.words(info.id) == words
