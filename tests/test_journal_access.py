"""The journal can be read whenever it can be read: on a read-only or full disk, while another
program holds its write lock; reading writes nothing; bad times are refused at the door and a
damaged row does not take the listing down; a commit is on the disk when it returns.

The read-only and full disks are real (tests/disks.py).
"""

import json
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from app import journal as journal_module
from app.cli import main
from app.journal import Access, Journal, JournalError
from core.words import Word
from tests.disks import fill, make_read_only, small_disk

ROOT = Path(__file__).resolve().parents[1]


def _recorded(path: Path, title: str = "Budget review") -> int:
    journal = Journal(path)
    sid = journal.start_session("kyutai/stt-1b-en_fr-trfs", "Desk mic", title)
    journal.add_words(sid, [Word("hello", 0.5, 0.9), Word("there.", 1.0, 1.4)])
    journal.end_session(sid)
    journal.close()
    return sid


def _sessions_and_export(data: Path, sid: int, capsys, monkeypatch) -> tuple[str, str]:
    monkeypatch.setenv("SURTITLE_DATA_DIR", str(data))
    assert main(["sessions"]) == 0
    listing = capsys.readouterr().out
    assert main(["export", str(sid)]) == 0
    return listing, capsys.readouterr().out


def test_a_journal_on_a_read_only_disk_is_listed_and_exported(tmp_path, capsys, monkeypatch):
    with small_disk(tmp_path / "disk") as disk:
        sid = _recorded(disk / "journal.sqlite3")
        make_read_only(disk)

        listing, text = _sessions_and_export(disk, sid, capsys, monkeypatch)

        assert "Budget review" in listing and text == "hello there.\n"
        with pytest.raises(JournalError, match="the disk it is on is read-only"):  # writing says why
            Journal(disk / "journal.sqlite3")


def test_a_journal_on_a_full_disk_is_listed_and_exported(tmp_path, capsys, monkeypatch):
    with small_disk(tmp_path / "disk", size="256k") as disk:
        sid = _recorded(disk / "journal.sqlite3")
        fill(disk)

        listing, text = _sessions_and_export(disk, sid, capsys, monkeypatch)

        assert "Budget review" in listing and text == "hello there.\n"


def test_a_write_lock_held_by_another_program_does_not_block_reading(tmp_path, capsys, monkeypatch):
    sid = _recorded(tmp_path / "journal.sqlite3")
    other = sqlite3.connect(tmp_path / "journal.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program in the middle of a write
    other.execute("UPDATE sessions SET title = 'half-written'")
    monkeypatch.setattr(journal_module, "LOCK_WAIT_S", 0.2)
    try:
        listing, text = _sessions_and_export(tmp_path, sid, capsys, monkeypatch)
        assert "Budget review" in listing and "half-written" not in listing and text == "hello there.\n"
        writer = Journal(tmp_path / "journal.sqlite3")  # a writer waits, then says what to do
        with pytest.raises(JournalError, match="another program keeps it locked"):
            writer.start_session("m", "mic")
        writer.close()
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_reading_writes_nothing(tmp_path, capsys, monkeypatch):
    missing = tmp_path / "none" / "journal.sqlite3"
    assert Journal(missing, access=Access.READ).sessions() == []
    assert not missing.parent.exists()  # no folder, no file: `surtitle sessions` on a new machine

    path = tmp_path / "journal.sqlite3"
    _recorded(path)
    before = path.read_bytes()
    reader = Journal(path, access=Access.READ)
    assert [s.title for s in reader.sessions()] == ["Budget review"]
    with pytest.raises(JournalError, match="reading only"):
        reader.rename(1, "New title")
    reader.close()
    assert path.read_bytes() == before


def test_non_finite_times_are_refused_at_the_door(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3", commit_interval_s=0.0)
    sid = journal.start_session("m", "mic")
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValueError, match="not a finite number"):
            journal.add_words(sid, [Word("fine", 0.1, 0.2), Word("bad", 0.3, bad)])
        with pytest.raises(ValueError, match="not a finite number"):
            journal.add_gap(sid, bad, 1.0, "skipped: lag")
    journal.add_words(sid, [Word("kept", 0.1, 0.2)])
    journal.end_session(sid)
    assert journal.words(sid) == [Word("kept", 0.1, 0.2)]
    assert journal.session(sid).duration_s == pytest.approx(0.2)


def test_a_damaged_row_does_not_take_listing_and_export_down(tmp_path, capsys, monkeypatch):
    path = tmp_path / "journal.sqlite3"
    sid = _recorded(path)
    _recorded(path, title="Another meeting")
    damage = sqlite3.connect(path)  # what an old version, a tool or a bad disk may have left
    damage.execute("UPDATE sessions SET duration_s = 1e999, started_at = 1e999 WHERE id = ?", (sid,))
    damage.execute('UPDATE words SET "end" = 1e999 WHERE session_id = ? AND seq = 1', (sid,))
    damage.commit()
    damage.close()
    monkeypatch.setenv("SURTITLE_DATA_DIR", str(tmp_path))

    assert main(["sessions"]) == 0
    listing = capsys.readouterr().out
    assert "Budget review" in listing and "Another meeting" in listing
    for fmt in ("srt", "vtt", "json"):
        assert main(["export", str(sid), "-f", fmt]) == 0, capsys.readouterr().err
        text = capsys.readouterr().out
        assert "there." in text and "Infinity" not in text
    assert main(["export", str(sid), "-f", "json"]) == 0
    json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))


def test_titles_cannot_break_the_listing_or_command_the_terminal(tmp_path, capsys, monkeypatch):
    _recorded(tmp_path / "journal.sqlite3", title="Line one\nLine two\x1b]0;pwned\x07\x1b[2J")
    monkeypatch.setenv("SURTITLE_DATA_DIR", str(tmp_path))
    assert main(["sessions"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 2 and "\x1b" not in rows[1] and "\x07" not in rows[1]
    assert "Line one Line two" in rows[1] and "\\x1b" in rows[1]  # shown, not obeyed


def test_each_commit_and_each_second_of_audio_reach_the_disk(tmp_path):
    """Counted with strace: what a power cut can take is only what was never synced."""
    script = textwrap.dedent(f"""
        import numpy as np
        from app.journal import Journal
        from app.session_audio import SessionAudio
        from core.words import Word
        now = [0.0]
        clock = lambda: now[0]
        journal = Journal({str(tmp_path / "journal.sqlite3")!r}, clock=clock)
        sid = journal.start_session("m", "mic")
        audio = SessionAudio({str(tmp_path / "session.wav")!r}, clock=clock)
        for step in range(20):  # 5 s of a session, 0.25 s at a time
            now[0] += 0.25
            audio.write(np.zeros(6000, np.int16))
            journal.add_words(sid, [Word(f"w{{step}}", now[0] - 0.2, now[0] - 0.1)])
        audio.close()
    """)
    log = tmp_path / "syncs.log"
    try:
        done = subprocess.run(["strace", "-f", "-y", "-e", "trace=fsync,fdatasync", "-o", str(log),
                               sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    except FileNotFoundError:
        pytest.skip("strace is not installed (CI installs it)")
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    wal_syncs = sum("journal.sqlite3-wal>" in line for line in calls)
    audio_syncs = sum("session.wav>" in line for line in calls)
    assert wal_syncs >= 10  # a commit every 0.5 s of the 5 s, each synced
    assert 4 <= audio_syncs <= 6  # about once a second, not per write


def test_a_journal_open_for_reading_recovers_nothing_and_leaves_the_audio_alone(tmp_path):
    from app.recovery import recover_unfinished
    from app.session_audio import SessionAudio

    audio = SessionAudio(tmp_path / "crashed.wav")
    audio.write(np.zeros(24_000, np.int16))
    audio._file.flush()  # a recorder killed here leaves the header saying 0 data bytes
    crashed = Journal(tmp_path / "journal.sqlite3")
    sid = crashed.start_session("m", "mic", audio_path=audio.path)
    crashed.close()  # never ended
    with sqlite3.connect(tmp_path / "journal.sqlite3") as conn:  # and its recorder is gone
        conn.execute("UPDATE sessions SET pid = NULL WHERE id = ?", (sid,))
    before = audio.path.read_bytes()

    reader = Journal(tmp_path / "journal.sqlite3", access=Access.READ)
    assert [s.id for s in reader.unfinished()] == [sid]
    assert recover_unfinished(reader) == []
    assert audio.path.read_bytes() == before  # repairing the header would have written it
    reader.close()
    writer = Journal(tmp_path / "journal.sqlite3")  # the next live session's, which may write
    assert [s.id for s in recover_unfinished(writer)] == [sid] and audio.path.read_bytes() != before
    writer.close()
    audio._file.close()


V1_SCHEMA = """
CREATE TABLE sessions (id INTEGER PRIMARY KEY, title TEXT NOT NULL, model TEXT NOT NULL, device TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, audio_path TEXT, notes TEXT NOT NULL DEFAULT '', pid INTEGER,
    word_count INTEGER NOT NULL DEFAULT 0, duration_s REAL NOT NULL DEFAULT 0);
CREATE TABLE words (session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE, seq INTEGER NOT NULL,
    text TEXT NOT NULL, start REAL NOT NULL, "end" REAL NOT NULL, PRIMARY KEY (session_id, seq)) WITHOUT ROWID;
CREATE TABLE gaps (session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE, start REAL NOT NULL,
    "end" REAL NOT NULL, reason TEXT NOT NULL);
CREATE INDEX gaps_by_session ON gaps (session_id, start);
CREATE VIRTUAL TABLE passages USING fts5(text, session_id UNINDEXED, start UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2');
INSERT INTO sessions (id, title, model, device, started_at, ended_at, word_count, duration_s)
    VALUES (1, 'Last year', 'm', 'mic', 1700000000, 1700000010, 2, 1.4);
INSERT INTO words VALUES (1, 0, 'hello', 0.5, 0.9), (1, 1, 'there.', 1.0, 1.4);
INSERT INTO passages (text, session_id, start) VALUES ('hello there.', 1, 0.5);
PRAGMA user_version = 1;
"""


def _journal_of_version_1(path):
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.close()


def test_a_journal_of_the_first_schema_reads_as_it_is_and_upgrades_when_written(tmp_path):
    path = tmp_path / "journal.sqlite3"
    _journal_of_version_1(path)
    before = path.read_bytes()
    reader = Journal(path, access=Access.READ)
    assert reader.words(1) == [Word("hello", 0.5, 0.9), Word("there.", 1.0, 1.4)]
    reader.close()
    assert path.read_bytes() == before  # reading did not upgrade it

    writer = Journal(path)
    assert writer.words(1) == [Word("hello", 0.5, 0.9), Word("there.", 1.0, 1.4)]  # nothing lost
    assert [h.session_id for h in writer.search("hello")] == [1]
    sid = writer.start_session("m", "mic")
    writer.add_words(sid, [Word("mine", 0.1, 0.3, speaker="You"), Word("theirs", 0.2, 0.4, speaker="Others")])
    writer.end_session(sid)
    writer.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert [w.speaker for w in Journal(path, access=Access.READ).words(sid)] == ["You", "Others"]
