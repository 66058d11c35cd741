"""Session audio: exact 16-bit round trip, readable after kill -9, repairable for every tool."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.session_audio import SessionAudio, SessionAudioError, pcm16_to_float, repair, to_pcm16
from tests.disks import small_disk

ROOT = Path(__file__).resolve().parents[1]


def test_what_the_model_hears_is_what_the_file_holds(tmp_path):
    x = np.random.default_rng(0).uniform(-1.2, 1.2, 30_000).astype(np.float32)  # some clip
    pcm = to_pcm16(x)
    audio = SessionAudio(tmp_path / "s.wav")
    for at in range(0, len(pcm), 7_001):
        audio.write(pcm[at:at + 7_001])
    audio.write_silence(500)
    audio.close()
    back, rate = sf.read(tmp_path / "s.wav", dtype="float32")
    assert rate == 24_000 and audio.frames == 30_500
    np.testing.assert_array_equal(back[:30_000], pcm16_to_float(pcm))  # bit for bit
    assert not back[30_000:].any()
    assert pcm.min() == -32768 and pcm.max() == 32767  # clipped, not wrapped


KILLED_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from app.session_audio import SessionAudio
    audio = SessionAudio(sys.argv[1])
    block = np.arange(1920, dtype=np.int16)
    while True:
        audio.write(block)
        print(audio.frames, flush=True)
""")


def test_a_killed_recording_is_readable_and_repairable(tmp_path):
    path = tmp_path / "crash.wav"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        for line in proc.stdout:
            written = int(line)
            if written >= 24_000 * 3:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()

    data, _ = sf.read(path, dtype="int16")  # libsndfile reads it as it is
    # everything reported written is there, in order; the kill may land mid-block (a busy machine
    # lets the writer run on), so the file may end inside a block
    assert len(data) >= written
    np.testing.assert_array_equal(data, np.resize(np.arange(1920, dtype=np.int16), len(data)))
    with pytest.raises(wave.Error):  # a reader that trusts the header (sizes still 0) finds nothing...
        wave.open(str(path))
    assert repair(path) == len(data)
    with wave.open(str(path)) as w:  # ...after repair, a reader that trusts the header gets it all
        assert w.getnframes() == len(data) and w.getframerate() == 24_000
    assert repair(path) == len(data)  # idempotent


def test_repair_leaves_a_finished_file_alone(tmp_path):
    path = tmp_path / "ok.wav"
    sf.write(path, np.zeros(1000, np.int16), 24_000, subtype="PCM_16")
    before = path.read_bytes()
    assert repair(path) == 1000 and path.read_bytes() == before
    path.write_bytes(b"not a wav")
    with pytest.raises(SessionAudioError, match="not a WAV"):
        repair(path)


def test_write_failures_are_one_line(tmp_path, monkeypatch):
    audio = SessionAudio(tmp_path / "s.wav")

    def full(data):
        raise sf.LibsndfileError(0, prefix="")  # what a failing write looks like from soundfile

    monkeypatch.setattr(audio._file, "write", full)
    with pytest.raises(SessionAudioError, match="cannot write the session audio file") as info:
        audio.write(np.zeros(10, np.int16))
    assert "\n" not in str(info.value)
    with pytest.raises(SessionAudioError, match="cannot create"):
        SessionAudio(tmp_path / "s.wav" / "below-a-file.wav")


def test_a_full_disk_is_called_a_full_disk(tmp_path):
    # libsndfile reports "System error" for every failed write; the user needs to hear why
    with small_disk(tmp_path / "disk", size="64k") as disk:
        audio = SessionAudio(disk / "session.wav")
        with pytest.raises(SessionAudioError) as raised:
            for _ in range(10):  # 10 s of audio: 480 kB, far more than the disk holds
                audio.write(np.zeros(24_000, np.int16))
        assert "the disk is full" in str(raised.value) and "System error" not in str(raised.value)
        with contextlib.suppress(SessionAudioError):
            audio.close()


def test_channels_written_at_their_own_pace_stay_aligned(tmp_path):
    from app.session_audio import SharedRecording

    recording = SharedRecording(tmp_path / "both.wav", 24_000, channels=2)
    mic, system = recording.channel(0), recording.channel(1)
    left = (np.arange(5000) % 300).astype(np.int16)
    right = -(np.arange(4000) % 200).astype(np.int16)
    written = 0
    for at in range(0, 5000, 700):  # the microphone runs ahead, in bigger blocks
        mic.write(left[at:at + 700])
        system.write(right[written:written + 300])
        written += 300
    system.write(right[written:])  # the rest of the system's 4000 samples, late
    mic.close()
    system.close()
    audio, rate = sf.read(tmp_path / "both.wav", dtype="int16")
    assert rate == 24_000 and audio.shape == (5000, 2)
    assert (audio[:, 0] == left).all()
    assert (audio[:4000, 1] == right).all() and not audio[4000:, 1].any()  # padded with silence at the end
