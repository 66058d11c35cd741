"""The session journal: durability policy, search, management, crash recovery and a full disk."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.journal import COMMIT_INTERVAL_S, Journal, JournalError
from core.words import Word

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def words(*texts, start=0.0, step=0.5):
    return [Word(t, start + i * step, start + i * step + 0.4) for i, t in enumerate(texts)]


def on_disk(path, sql, args=()):
    """What another process would see: a separate connection."""
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def journal(tmp_path, clock):
    j = Journal(tmp_path / "journal.sqlite3", clock=clock)
    yield j
    j.close()


def test_wal_mode_and_default_location(tmp_path, monkeypatch):
    monkeypatch.setenv("SURTITLE_DATA_DIR", str(tmp_path / "data"))
    j = Journal()
    assert j.path == tmp_path / "data" / "journal.sqlite3" and j.wal
    assert on_disk(j.path, "PRAGMA journal_mode") == [("wal",)]
    j.close()


def test_words_are_batched_and_committed_when_due(journal, clock):
    sid = journal.start_session("tiny", "Mic")
    journal.add_words(sid, words("one"))  # first word after a quiet spell: written at once
    assert on_disk(journal.path, "SELECT text FROM words") == [("one",)]
    clock.now += 0.2
    journal.add_words(sid, words("two", "three", start=1))
    assert len(on_disk(journal.path, "SELECT * FROM words")) == 1  # batched...
    assert [w.text for w in journal.words(sid)] == ["one", "two", "three"]  # ...but readable at once
    clock.now += 0.3
    assert journal.commit_if_due()
    assert on_disk(journal.path, "SELECT seq, text FROM words ORDER BY seq") == [(0, "one"), (1, "two"), (2, "three")]


def test_session_lifecycle_and_info(journal, clock):
    sid = journal.start_session("kyutai/stt", "USB Mic", title="Standup", audio_path="/tmp/a.wav")
    journal.add_words(sid, words("hello", "world"))
    journal.add_gap(sid, 1.0, 4.0, "skipped: lag")
    assert journal.session(sid).ended_at is None
    journal.end_session(sid)
    info = journal.session(sid)
    assert (info.title, info.model, info.device, info.word_count) == ("Standup", "kyutai/stt", "USB Mic", 2)
    assert info.duration_s == 4.0 and info.ended_at >= info.started_at and info.audio_path == Path("/tmp/a.wav")
    assert [(g.start, g.end, g.reason) for g in journal.gaps(sid)] == [(1.0, 4.0, "skipped: lag")]
    assert journal.words(sid) == words("hello", "world")  # times survive exactly
    with pytest.raises(JournalError, match="not being recorded"):
        journal.add_words(sid, words("late"))


def test_default_title_and_listing_newest_first(journal):
    first = journal.start_session("m", "d")
    second = journal.start_session("m", "d", title="B")
    assert journal.session(first).title.startswith("Session ")
    assert [s.id for s in journal.sessions()] == [second, first]


def test_search_across_sessions(journal):
    a = journal.start_session("m", "d", title="Budget")
    journal.add_words(a, words(*"we need to review the budget before friday".split()))
    b = journal.start_session("m", "d", title="Café")
    journal.add_words(b, words(*"the café budget is fine".split(), start=30))
    journal.commit()
    hits = journal.search("budget")
    assert {h.session_id for h in hits} == {a, b}
    hit = next(h for h in hits if h.session_id == b)
    assert hit.title == "Café" and "[budget]" in hit.snippet and hit.start == 30
    assert [h.session_id for h in journal.search("cafe")] == [b]  # accents do not matter
    assert [h.session_id for h in journal.search("review AND friday")] == [a]  # FTS syntax works
    assert [h.session_id for h in journal.search('budget "before')] == [a]  # broken syntax: plain words
    assert journal.search("c++") == [] and journal.search("   ") == []


def test_passages_break_at_pauses(journal):
    sid = journal.start_session("m", "d")
    journal.add_words(sid, words("alpha", "beta") + words("gamma", start=10))
    journal.commit()
    journal.add_words(sid, words("delta", start=10.5))  # extends the open passage in a later commit
    journal.commit()
    assert on_disk(journal.path, "SELECT text, start FROM passages ORDER BY rowid") == [
        ("alpha beta", 0.0), ("gamma delta", 10.0)]
    assert journal.search("delta")[0].start == 10.0


def test_rename_notes_and_delete_removes_the_audio(journal, tmp_path):
    audio = tmp_path / "s.wav"
    audio.write_bytes(b"RIFF")
    sid = journal.start_session("m", "d", audio_path=audio)
    with pytest.raises(JournalError, match="being recorded"):
        journal.delete(sid)
    journal.add_words(sid, words("secret"))
    journal.end_session(sid)
    journal.rename(sid, "Renamed")
    journal.set_notes(sid, "call back")
    assert (journal.session(sid).title, journal.session(sid).notes) == ("Renamed", "call back")
    journal.delete(sid)
    assert not audio.exists() and journal.sessions() == [] and journal.search("secret") == []
    with pytest.raises(JournalError, match="no session"):
        journal.session(sid)


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_unfinished_sessions_are_those_whose_process_is_gone(journal):
    live = journal.start_session("m", "d")
    crashed = journal.start_session("m", "d")
    journal.add_words(crashed, words("a", "b", "c"))
    journal.commit()
    journal._live.pop(crashed)  # as if another process had recorded it...
    journal._conn.execute("UPDATE sessions SET pid = ? WHERE id = ?", (_dead_pid(), crashed))  # ...and died
    assert [s.id for s in journal.unfinished()] == [crashed]
    info = journal.recover(crashed)
    assert info.ended_at == pytest.approx(info.started_at + 1.4)  # ends with its last word
    assert journal.unfinished() == [] and journal.session(live).ended_at is None
    with pytest.raises(JournalError, match="needs no recovery"):
        journal.recover(live)


class FlakyConnection:
    """Wraps the sqlite connection; while `full`, every write fails like a full disk does."""

    def __init__(self, conn):
        self.conn, self.full = conn, False

    def execute(self, sql, *args):
        if self.full and not sql.startswith(("SELECT", "ROLLBACK", "BEGIN")):
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *args)

    def executemany(self, sql, *args):
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.executemany(sql, *args)

    def close(self):
        self.conn.close()


def test_disk_full_loses_nothing_and_says_so_in_one_line(journal, clock):
    sid = journal.start_session("m", "d")
    journal.add_words(sid, words("kept", "on", "disk"))
    flaky = journal._conn = FlakyConnection(journal._conn)
    flaky.full = True
    clock.now += 1
    with pytest.raises(JournalError) as info:
        journal.add_words(sid, words("still", "in", "memory", start=5))
    message = str(info.value)
    assert "disk is full" in message and "kept in memory" in message and "\n" not in message
    clock.now += 1
    with pytest.raises(JournalError):
        journal.add_gap(sid, 7.0, 9.0, "skipped: lag")  # retried and failing again: all still kept
    clock.now += 1
    with pytest.raises(JournalError):
        journal.add_words(sid, words("more", start=10))
    assert [g.reason for g in journal.gaps(sid)] == ["skipped: lag"]
    assert [w.text for w in journal.words(sid)] == ["kept", "on", "disk", "still", "in", "memory", "more"]
    with pytest.raises(JournalError):
        journal.end_session(sid)
    assert journal.session(sid).ended_at is None
    flaky.full = False  # space freed
    journal.end_session(sid)
    assert on_disk(journal.path, "SELECT seq, text FROM words ORDER BY seq") == list(
        enumerate(["kept", "on", "disk", "still", "in", "memory", "more"]))
    assert journal.session(sid).word_count == 7
    assert on_disk(journal.path, "SELECT reason FROM gaps") == [("skipped: lag",)]


def test_unusable_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "journal.sqlite3"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(JournalError, match="damaged") as info:
        Journal(bad)
    assert "\n" not in str(info.value)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(JournalError, match="cannot open"):
        Journal(folder)
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(JournalError, match="newer Surtitle"):
        Journal(newer)


CRASHING_WRITER = textwrap.dedent("""
    import sys, time
    from app.journal import Journal
    from core.words import Word
    now = 0.0
    journal = Journal(sys.argv[1], clock=lambda: now)  # session time, as the pipeline's words carry it
    sid = journal.start_session("m", "d")
    print(sid, flush=True)
    for k in range(100000):
        now = k * 0.01  # a word every 10 ms: the writer batches about fifty per commit
        journal.add_words(sid, [Word(f"w{k}", now, now + 0.005)])
        print(k, now, flush=True)  # this word is final now
        time.sleep(0.002)  # paced, so the reader catches up well before the words run out
""")


def test_a_killed_writer_loses_at_most_the_last_half_second(tmp_path):
    # Session time, not the wall clock, decides what must be on disk: when word k was printed,
    # every word final COMMIT_INTERVAL_S before it had been committed, however busy the machine.
    path = tmp_path / "journal.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    sid = int(proc.stdout.readline())
    emitted = {}
    try:
        for line in proc.stdout:
            k, t = line.split()
            emitted[int(k)] = float(t)
            if float(t) > 1.6:  # a second and a half of words, three commits at least
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    last_seen = max(emitted.values())
    journal = Journal(path)
    saved = [w.text for w in journal.words(sid)]
    must_have = [f"w{k}" for k, t in sorted(emitted.items()) if t <= last_seen - COMMIT_INTERVAL_S - 1e-9]
    assert len(must_have) > 100
    assert saved[:len(must_have)] == must_have  # every word final a second before the kill is there
    assert saved == [f"w{k}" for k in range(len(saved))]  # in order, nothing torn
    assert [s.id for s in journal.unfinished()] == [sid]
    assert journal.recover(sid).ended_at is not None
