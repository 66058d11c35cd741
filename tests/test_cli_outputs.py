"""`surtitle transcribe` and `export` never destroy what is at the output path and never lose a
transcript: devices, FIFOs and links survive, permissions stay, stdout failures and damaged or
interrupted files leave what was transcribed, marked as incomplete, and say so in one line."""

import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.cli import main
from app.journal import Journal
from core.words import Word
from tests.cli_fakes import RATE, FakeFactory, FakeTranscriber, one_error_line, run, wav
from tests.disks import device_node

REPO = Path(__file__).resolve().parents[1]


def _recorded(data: Path, words: list[Word]) -> int:
    """A finished session holding `words`, in the journal of the data folder `data`; its id."""
    journal = Journal(data / "journal.sqlite3")
    sid = journal.start_session("m", "mic", "Meeting")
    journal.add_words(sid, words)
    journal.end_session(sid)
    journal.close()
    return sid


def _flac_damaged_at(path, seconds=12.0, damage_at=0.5):
    """A FLAC file whose bytes from `damage_at` of its length on are scrambled."""
    x = 0.1 * np.sin(2 * np.pi * 220 * np.arange(round(seconds * RATE)) / RATE)
    sf.write(path, x.astype(np.float32), RATE)
    data = bytearray(path.read_bytes())
    at = int(len(data) * damage_at)
    data[at:at + 4000] = bytes((b * 7 + 13) % 256 for b in data[at:at + 4000])
    path.write_bytes(bytes(data))
    return path


def _decodable_seconds(path, step=2400) -> float:
    """How much of a damaged file libsndfile decodes before it fails, read a little at a time."""
    with sf.SoundFile(path) as f:
        frames = 0
        try:
            while len(block := f.read(step)):
                frames += len(block)
        except sf.SoundFileError:
            pass
        return frames / f.samplerate


# --- what is at the path survives ---------------------------------------------------------------


def test_an_existing_transcript_keeps_its_permissions(tmp_path):
    out = tmp_path / "private.txt"
    out.write_text("old")
    out.chmod(0o600)
    code, _ = run([wav(tmp_path / "talk.wav"), "-o", out])
    assert code == 0 and out.read_text() == "w0 w1 end.\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_symlinked_output_stays_a_link_and_its_target_is_written(tmp_path):
    real, link = tmp_path / "real.txt", tmp_path / "link.txt"
    real.write_text("old")
    link.symlink_to(real)
    code, _ = run([wav(tmp_path / "talk.wav"), "-o", link])
    assert code == 0 and link.is_symlink() and real.read_text() == "w0 w1 end.\n"


def test_a_device_is_written_in_place(tmp_path, capsys):
    null = device_node(tmp_path / "null", stat.S_IFCHR, 1, 3)
    code, _ = run([wav(tmp_path / "talk.wav"), "-o", null])
    assert code == 0 and stat.S_ISCHR(os.lstat(null).st_mode)


def test_a_full_device_stays_a_device_and_the_transcript_is_rescued(tmp_path, capsys, monkeypatch):
    # the repro: `mknod /tmp/x c 1 7; surtitle transcribe a.wav -o /tmp/x` turned it into a file
    full = device_node(tmp_path / "x", stat.S_IFCHR, 1, 7)
    monkeypatch.chdir(tmp_path)

    code, _ = run([wav(tmp_path / "talk.wav"), "-o", full])

    out, err = capsys.readouterr()
    assert code == 1 and stat.S_ISCHR(os.lstat(full).st_mode)
    line = one_error_line(err)
    (saved,) = tmp_path.glob("surtitle-talk-*.txt")
    assert "No space left on device" in line and saved.name in line
    assert saved.read_text() == out == "w0 w1 end.\n"


def test_a_disk_is_refused_before_the_model_loads(tmp_path, capsys):
    disk = device_node(tmp_path / "disk", stat.S_IFBLK, 7, 0)
    code, factory = run([wav(tmp_path / "talk.wav"), "-o", disk])
    assert code == 2 and factory.calls == []
    assert "block device" in capsys.readouterr().err
    assert stat.S_ISBLK(os.lstat(disk).st_mode)


def test_stdout_named_as_a_path_is_stdout(tmp_path, capfd):
    code, _ = run([wav(tmp_path / "talk.wav"), "-o", "/proc/self/fd/1"])
    out, err = capfd.readouterr()
    assert code == 0 and out == "w0 w1 end.\n"


# --- stdout that fails ---------------------------------------------------------------------------


class _FullStdout:
    def write(self, text):
        raise OSError(28, "No space left on device")

    def flush(self):
        pass

    def fileno(self):
        raise io.UnsupportedOperation("no descriptor")  # as a redirected in-memory stream


def test_a_failing_stdout_leaves_a_rescue_copy_and_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdout", _FullStdout())

    code, _ = run([wav(tmp_path / "talk.wav")])

    line = one_error_line(capsys.readouterr().err)
    (saved,) = tmp_path.glob("surtitle-talk-*.txt")
    assert code == 1 and saved.read_text() == "w0 w1 end.\n"
    assert "stdout" in line and "No space left on device" in line and saved.name in line


def test_export_to_a_full_stdout_saves_the_session_in_a_subprocess(tmp_path):
    data = tmp_path / "data"
    sid = _recorded(data, [Word("hello", 0.5, 0.9), Word("there.", 1.0, 1.4)])
    env = {**os.environ, "SURTITLE_DATA_DIR": str(data), "PYTHONPATH": str(REPO)}  # this checkout's app

    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "app.cli", "export", str(sid)], stdout=full,
                              stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env, timeout=60)

    (saved,) = tmp_path.glob(f"surtitle-session-{sid}-*.txt")
    assert done.returncode == 1 and saved.read_text() == "hello there.\n"
    assert done.stderr.splitlines() == [one_error_line(done.stderr)]  # nothing else: no exit-time noise
    assert saved.name in done.stderr


# --- files that break part-way, and Ctrl-C --------------------------------------------------------


def test_a_file_damaged_part_way_keeps_what_came_before(tmp_path, capsys):
    flac = _flac_damaged_at(tmp_path / "talk.flac")
    good_s = _decodable_seconds(flac)
    assert 4.0 < good_s < 8.0  # the damage sits mid-file

    code, _ = run([flac, "-f", "json"])

    out, err = capsys.readouterr()
    document = json.loads(out)
    whole = int(good_s)
    assert code == 1
    assert [w["text"] for w in document["words"]] == [f"w{k}" for k in range(whole)] + ["end."]
    assert document["incomplete"]["stops_at_s"] == pytest.approx(good_s, abs=0.26)  # decoded 0.25 s at a time
    line = one_error_line(err)
    assert "cannot be decoded past" in line and "marked as incomplete" in line


class _Interrupting(FakeTranscriber):
    """Presses Ctrl-C (`presses` times) during its second push."""

    def __init__(self, presses: int):
        self.presses = presses
        self.pushes = 0
        super().__init__()

    def push(self, pcm):
        self.pushes += 1
        if self.pushes == 2:
            for _ in range(self.presses):
                os.kill(os.getpid(), signal.SIGINT)
        return super().push(pcm)


def test_ctrl_c_writes_the_transcript_so_far_and_exits_130(tmp_path, capsys):
    out = tmp_path / "talk.txt"
    code, _ = run([wav(tmp_path / "talk.wav", seconds=12.0, rate=RATE), "-o", out], FakeFactory(_Interrupting(1)))

    text = out.read_text()
    assert code == 130
    assert text.startswith("w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 end.")  # two 5 s blocks, then the engine's flush
    assert "Incomplete transcript: it stops at 00:00:10 because the transcription was interrupted" in text
    line = one_error_line(capsys.readouterr().err)
    assert "interrupted" in line and str(out) in line
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_a_second_ctrl_c_stops_at_once_and_still_keeps_the_final_words(tmp_path, capsys):
    out = tmp_path / "talk.txt"
    code, _ = run([wav(tmp_path / "talk.wav", seconds=12.0, rate=RATE), "-o", out], FakeFactory(_Interrupting(2)))

    text = out.read_text()
    assert code == 130
    assert text.startswith("w0 w1 w2 w3 w4\n")  # the first block's words; no flush after a hard stop
    assert "because the transcription was interrupted" in text
    one_error_line(capsys.readouterr().err)


def test_files_after_a_ctrl_c_are_not_started(tmp_path, capsys):
    first, second = wav(tmp_path / "a.wav", seconds=12.0), wav(tmp_path / "b.wav", seconds=3.0)
    code, _ = run([first, second, "-o", tmp_path / "out"], FakeFactory(_Interrupting(1)))
    assert code == 130
    assert (tmp_path / "out" / "a.txt").exists() and not (tmp_path / "out" / "b.txt").exists()


# --- what the input is ---------------------------------------------------------------------------


def test_a_truncated_wav_is_transcribed_as_far_as_it_goes_and_said_so(tmp_path, capsys):
    path = wav(tmp_path / "cut.wav", seconds=3.0, rate=RATE)
    data = path.read_bytes()
    header = data.index(b"data") + 8
    path.write_bytes(data[:header + (len(data) - header) // 3])  # a recording cut off at 1 s

    code, _ = run([path])

    out, err = capsys.readouterr()
    assert code == 0 and out == "w0 end.\n"
    assert "header promises 0:03.000 of audio but the file holds 0:01.000" in err
    assert "transcribing 0:01.000" in err


def test_an_unreadable_audio_file_says_so_not_that_it_is_damaged(tmp_path, capsys, monkeypatch):
    path = wav(tmp_path / "locked.wav")
    real_open = open

    def locked(file, *args, **kwargs):  # what open() does for a user without read permission
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", locked)
    code, factory = run([path])

    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and factory.calls == []
    assert "Permission denied" in line and "damaged" not in line and "supported format" not in line


# --- found in review: what the first version still let through ----------------------------------


def test_the_input_is_never_the_output_under_any_name(tmp_path, capsys):
    talk = wav(tmp_path / "talk.wav")
    other_name = tmp_path / "same-file.wav"
    os.link(talk, other_name)
    before = talk.read_bytes()
    for output in (talk, other_name):
        code, factory = run([talk, "-o", output])
        assert code == 2 and factory.calls == [] and talk.read_bytes() == before
        assert "which it is made from" in capsys.readouterr().err


def test_export_never_writes_over_the_journal(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    sid = _recorded(data, [Word("hello", 0.5, 0.9)])
    monkeypatch.setenv("SURTITLE_DATA_DIR", str(data))
    assert main(["export", str(sid), "-o", str(data / "journal.sqlite3")]) == 2
    assert "which it is made from" in capsys.readouterr().err
    assert Journal(data / "journal.sqlite3").words(sid) == [Word("hello", 0.5, 0.9)]


def test_an_incomplete_transcript_goes_beside_a_complete_one_not_over_it(tmp_path, capsys):
    talk = wav(tmp_path / "talk.wav", seconds=12.0, rate=RATE)
    out = tmp_path / "talk.txt"
    out.write_text("yesterday's complete transcript\n")

    code, _ = run([talk, "-o", out], FakeFactory(_Interrupting(1)))

    (beside,) = tmp_path.glob("talk-incomplete-*.txt")
    assert code == 130 and out.read_text() == "yesterday's complete transcript\n"
    assert "Incomplete transcript" in beside.read_text() and beside.name in one_error_line(capsys.readouterr().err)


class _InterruptedFlush(FakeTranscriber):
    """Ctrl-C once during the second push, and again while the engine's last words come out."""

    def __init__(self):
        self.pushes = 0
        super().__init__()

    def push(self, pcm):
        self.pushes += 1
        if self.pushes == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return super().push(pcm)

    def flush(self):
        os.kill(os.getpid(), signal.SIGINT)  # the handler is gone: this raises KeyboardInterrupt here
        return super().flush()


def test_a_second_ctrl_c_during_the_flush_still_keeps_the_words(tmp_path, capsys):
    out = tmp_path / "talk.txt"
    code, _ = run([wav(tmp_path / "talk.wav", seconds=12.0, rate=RATE), "-o", out], FakeFactory(_InterruptedFlush()))
    assert code == 130
    assert out.read_text().startswith("w0 w1 w2 w3 w4 w5 w6 w7 w8 w9\n")


def test_sigterm_ends_with_its_own_exit_code(tmp_path, capsys):
    class Terminated(FakeTranscriber):
        def push(self, pcm):
            os.kill(os.getpid(), signal.SIGTERM)
            return super().push(pcm)

    code, _ = run([wav(tmp_path / "talk.wav", seconds=12.0, rate=RATE), "-o", tmp_path / "t.txt"],
                  FakeFactory(Terminated()))
    assert code == 128 + signal.SIGTERM


def test_the_rescue_copy_survives_a_deleted_current_folder(tmp_path, capsys, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    spare = tmp_path / "spare"
    spare.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(spare))
    monkeypatch.setattr(sys, "stdout", _FullStdout())

    code, _ = run([wav(tmp_path / "talk.wav")])

    (saved,) = spare.glob("surtitle-talk-*.txt")
    assert code == 1 and saved.read_text() == "w0 w1 end.\n" and saved.name in one_error_line(capsys.readouterr().err)


def test_names_as_long_as_the_file_system_allows_are_written(tmp_path, capsys):
    stem = "x" * 240  # talk-name.txt: 244 bytes, within the 255 a name may have
    code, _ = run([wav(tmp_path / f"{stem}.wav"), "-o", tmp_path / f"{stem}.txt"])
    assert code == 0 and (tmp_path / f"{stem}.txt").read_text() == "w0 w1 end.\n"


def test_a_stdout_that_cannot_encode_the_words_leaves_a_rescue_copy(tmp_path, capsys, monkeypatch):
    class Latin1(FakeTranscriber):
        def flush(self):
            return [Word("sœur.", self.samples / RATE, self.samples / RATE + 0.2)]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="latin-1"))
    code, _ = run([wav(tmp_path / "talk.wav")], FakeFactory(Latin1()))
    (saved,) = tmp_path.glob("surtitle-talk-*.txt")
    assert code == 1 and saved.read_text(encoding="utf-8") == "w0 w1 sœur.\n"
    assert "latin-1" in one_error_line(capsys.readouterr().err)


def test_stderr_named_as_a_path_keeps_what_stderr_already_wrote(tmp_path):
    data = tmp_path / "data"
    sid = _recorded(data, [Word("hello", 0.5, 0.9)])
    log = tmp_path / "build.log"
    log.write_text("earlier lines\n")
    with open(log, "a") as stderr:
        done = subprocess.run([sys.executable, "-m", "app.cli", "export", str(sid), "-o", "/proc/self/fd/2"],
                              stderr=stderr, cwd=tmp_path, timeout=60,
                              env={**os.environ, "SURTITLE_DATA_DIR": str(data), "PYTHONPATH": str(REPO)})
    assert done.returncode == 0
    assert log.read_text().startswith("earlier lines\nhello\n")


def test_a_file_of_someone_else_keeps_its_owner_when_we_are_not_root(tmp_path):
    if os.getuid() != 0 or not Path("/usr/bin/python3").exists():
        pytest.skip("needs root, to make files of two other users, and a Python they may run")
    folder = Path(tempfile.mkdtemp(prefix="surtitle-owner-"))  # pytest's folders are closed to others
    try:
        folder.chmod(0o777)
        notes = folder / "notes.txt"
        notes.write_text("theirs")
        os.chown(notes, 1000, 1000)
        notes.chmod(0o666)
        script = f"from app.output_file import write_output; write_output({str(notes)!r}, 'new text')"
        done = subprocess.run(["/usr/bin/python3", "-c", script], env={"PYTHONPATH": str(REPO)},
                              user=65534, group=65534, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert notes.read_text() == "new text" and (notes.stat().st_uid, notes.stat().st_gid) == (1000, 1000)
    finally:
        shutil.rmtree(folder)
