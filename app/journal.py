"""The session journal: every live session's words, gaps and audio file, in one SQLite database.

The journal is the transcript (design note 3): the live view, history, search and every export
read from it. Durability is the point, so:

- WAL mode with synchronous=FULL: every commit is synced to the disk before it returns, so a
  crash, a kill or a power cut loses nothing committed (with NORMAL a power cut could lose the
  last commits). At two commits a second the syncs cost nothing a session notices.
- Words are batched: `add_words` keeps them in memory and commits when the last commit is at
  least `commit_interval_s` (0.5 s) old; the pipeline calls `commit_if_due()` on every pass of its
  loop (at least every 0.1 s), so a word is on disk within about half a second of being final.
- A failed commit (disk full, file gone read-only) rolls back, raises a one-line JournalError, and
  keeps every pending word in memory; the next commit retries them. Nothing is dropped silently.

One connection, guarded by a lock, serves the pipeline thread (writes) and the GUI thread (reads);
every statement is short, so neither waits noticeably. Sessions that were never ended and whose
process is gone are crashes: `unfinished()` lists them and `recover()` closes them.

Reading needs no write access (`Access.READ`): `surtitle sessions`, `export` and a History whose
journal cannot be written (a read-only file or disk, a full disk, a lock held by another program)
open it read-only, write nothing, not even the schema, and see every committed word. Times are
checked at the door: a word or gap whose time is not a finite number is refused.
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from app.journal_schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, Passage, explain, fts_phrases, write_passages
from app.paths import journal_path
from app.process import process_alive as _process_alive  # tests stub this name to fake a dead recorder
from core.errors import SurtitleError
from core.words import Word

COMMIT_INTERVAL_S = 0.5
LOCK_WAIT_S = 5.0  # how long a statement waits for another program's lock before saying so


class Access(enum.Enum):
    WRITE = "write"  # record sessions and manage them; creates and upgrades the file as needed
    READ = "read"  # list, search and export only: nothing is written, not even the schema


class JournalError(SurtitleError):
    """The journal cannot be opened, read or written; the message says why and what to do."""


@dataclass(frozen=True)
class SessionInfo:
    id: int
    title: str
    model: str
    device: str  # the input device it was recorded from
    started_at: float  # Unix time
    ended_at: float | None  # None: still recording, or crashed (see Journal.unfinished)
    audio_path: Path | None
    notes: str
    word_count: int
    duration_s: float  # session time of the last committed word or gap end


@dataclass(frozen=True)
class Gap:
    start: float  # seconds of session time
    end: float
    reason: str  # "skipped: lag", "dropped: overflow", "device lost"...


@dataclass(frozen=True)
class SearchHit:
    session_id: int
    title: str
    snippet: str  # the passage around the match, matches between the `mark` strings
    start: float  # session time where the passage starts


@dataclass
class _Live:
    """What a session being recorded has in memory: the words and gaps not yet committed."""

    committed: int  # words on disk; the next word's seq
    words: list[Word] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    passage: Passage | None = None


class Journal:
    def __init__(self, path: str | os.PathLike | None = None, *, access: Access = Access.WRITE,
                 commit_interval_s: float = COMMIT_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path) if path is not None else journal_path()
        self.access = access
        self.commit_interval_s = commit_interval_s
        self._clock = clock
        self._lock = threading.RLock()
        self._live: dict[int, _Live] = {}
        self._last_commit = float("-inf")
        self._speaker = "speaker"  # the words' speaker column; "''" in an older journal read as it is
        try:
            self._conn = self._connect_for_writing() if access is Access.WRITE else self._connect_for_reading()
        except (sqlite3.Error, OSError) as exc:
            reason = explain(exc, self.path) if isinstance(exc, sqlite3.Error) else (exc.strerror or str(exc))
            raise JournalError(f"cannot open the session journal {str(self.path)!r}: {reason}") from exc

    @property
    def writable(self) -> bool:
        return self.access is Access.WRITE

    @property
    def files(self) -> list[Path]:
        """The database and the side files SQLite keeps beside it in WAL mode: what holds the journal."""
        return [self.path.with_name(self.path.name + tail) for tail in ("", "-wal", "-shm")]

    def _connect_for_writing(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open and close transactions ourselves, nothing implicit
        conn = sqlite3.connect(self.path, timeout=LOCK_WAIT_S, isolation_level=None, check_same_thread=False)
        try:
            version = self._checked_version(conn)
            self.wal = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            if version < SCHEMA_VERSION:  # a new file or an older schema: the only writes at open
                _upgrade(conn, version)
        except BaseException:
            conn.close()
            raise
        self._speaker = "speaker"
        return conn

    def _connect_for_reading(self) -> sqlite3.Connection:
        """A connection that writes nothing. No file yet reads as an empty journal; a file that cannot
        share its WAL index (a read-only folder or disk) is read as it is on disk, which holds every
        commit once its writer has closed."""
        if not self.path.exists():
            self.wal = False
            return self._empty_journal()
        uri = f"file:{quote(os.fsencode(self.path.resolve()))}"
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=LOCK_WAIT_S, isolation_level=None,
                               check_same_thread=False)
        try:
            version = self._checked_version(conn)
        except sqlite3.OperationalError as exc:
            conn.close()
            # The WAL index could not be made (a read-only folder or disk, a full disk): where no
            # commit waits in the WAL, the file alone is the whole journal. Not so under a lock.
            if _held_by_another(exc) or _has_content(self.files[1]):  # commits may wait in the WAL
                raise
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
            version = self._checked_version(conn)
        self.wal = conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        if version == 0:  # created, never written: nothing to read in it
            conn.close()
            return self._empty_journal()
        self._speaker = "speaker" if version >= 2 else "''"  # read as it is: an older journal is not upgraded
        return conn

    def _empty_journal(self) -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.executescript(SCHEMA)
        self._speaker = "speaker"
        return conn

    def _checked_version(self, conn: sqlite3.Connection) -> int:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalError(f"the session journal {str(self.path)!r} was written by a newer Surtitle; update it")
        return version

    def close(self) -> None:
        with self._lock:
            if self.writable:
                with contextlib.suppress(JournalError):
                    self.commit()
            self._conn.close()

    # -- recording --------------------------------------------------------------------------------

    def start_session(self, model: str, device: str, title: str | None = None,
                      audio_path: str | os.PathLike | None = None) -> int:
        started = time.time()
        title = title or time.strftime("Session %Y-%m-%d %H:%M", time.localtime(started))
        with self._lock, self._write("start a session"):
            cur = self._conn.execute(
                "INSERT INTO sessions (title, model, device, started_at, audio_path, pid) VALUES (?, ?, ?, ?, ?, ?)",
                (title, model, device, started, None if audio_path is None else str(audio_path), os.getpid()),
            )
            sid = cur.lastrowid
            self._live[sid] = _Live(committed=0)
        return sid

    def add_words(self, session_id: int, words: Iterable[Word]) -> None:
        """Queue final words; they are committed within `commit_interval_s` (raises JournalError if that fails).

        A word whose time is not a finite number raises ValueError, and none of the words is kept."""
        words = list(words)
        for word in words:
            _check_times(f"word {word.text!r}", word.start, word.end)
        with self._lock:
            self._live_session(session_id).words.extend(words)
            self.commit_if_due()

    def add_gap(self, session_id: int, start: float, end: float, reason: str) -> None:
        _check_times(f"gap {reason!r}", start, end)
        with self._lock:
            self._live_session(session_id).gaps.append(Gap(start, end, reason))
            self.commit_if_due()

    def commit_if_due(self) -> bool:
        """Commit pending words if the last commit is old enough; True if something was written."""
        with self._lock:
            if self._clock() - self._last_commit < self.commit_interval_s:
                return False
            return self.commit()

    def commit(self) -> bool:
        """Write every pending word and gap now. On failure they stay pending and JournalError is raised."""
        with self._lock:
            pending = {sid: live for sid, live in self._live.items() if live.words or live.gaps}
            self._last_commit = self._clock()  # a failure waits one interval too before retrying
            if not pending:
                return False
            opened: dict[int, Passage | None] = {}
            n_words = sum(len(live.words) for live in pending.values())
            with self._write(f"save {n_words} word{'s' if n_words != 1 else ''} (kept in memory and saved when "
                             "this works again)"):
                for sid, live in pending.items():
                    self._insert(sid, live)
                    opened[sid] = write_passages(self._conn, sid, live.passage, live.words)
            for sid, live in pending.items():  # only now: a rolled-back commit leaves memory as it was
                live.committed += len(live.words)
                live.passage = opened[sid]
                live.words.clear()
                live.gaps.clear()
            return True

    def _insert(self, sid: int, live: _Live) -> None:
        rows = [(sid, live.committed + i, w.text, w.start, w.end, w.speaker) for i, w in enumerate(live.words)]
        self._conn.executemany('INSERT INTO words (session_id, seq, text, start, "end", speaker) '
                               'VALUES (?, ?, ?, ?, ?, ?)', rows)
        self._conn.executemany('INSERT INTO gaps (session_id, start, "end", reason) VALUES (?, ?, ?, ?)',
                               [(sid, g.start, g.end, g.reason) for g in live.gaps])
        last = max([w.end for w in live.words] + [g.end for g in live.gaps])
        self._conn.execute("UPDATE sessions SET word_count = word_count + ?, duration_s = max(duration_s, ?) "
                           "WHERE id = ?", (len(live.words), last, sid))

    def end_session(self, session_id: int) -> None:
        """Commit what is pending and mark the session ended (raises JournalError, then stays live)."""
        with self._lock:
            self._live_session(session_id)
            self.commit()
            with self._write("end the session"):
                self._conn.execute("UPDATE sessions SET ended_at = ?, pid = NULL WHERE id = ?",
                                   (time.time(), session_id))
            del self._live[session_id]

    def unsaved_words(self, session_id: int) -> list[Word]:
        """Words of a live session that are not committed yet (to rescue them when the disk stays full)."""
        with self._lock:
            live = self._live.get(session_id)
            return list(live.words) if live else []

    # -- reading ----------------------------------------------------------------------------------

    def sessions(self) -> list[SessionInfo]:
        """All sessions, newest first."""
        return [self._info(row) for row in self._query(f"{_SESSION_COLUMNS} ORDER BY started_at DESC, id DESC")]

    def session(self, session_id: int) -> SessionInfo:
        rows = self._query(f"{_SESSION_COLUMNS} WHERE id = ?", (session_id,))
        if not rows:
            raise JournalError(f"there is no session {session_id} in the journal {str(self.path)!r}")
        return self._info(rows[0])

    def words(self, session_id: int) -> list[Word]:
        """Every final word of the session in order, including those not committed yet."""
        with self._lock:
            rows = self._query(f'SELECT text, start, "end", {self._speaker} FROM words WHERE session_id = ? '
                               'ORDER BY seq', (session_id,))
            return [Word(*row) for row in rows] + self.unsaved_words(session_id)

    def gaps(self, session_id: int) -> list[Gap]:
        with self._lock:
            rows = self._query('SELECT start, "end", reason FROM gaps WHERE session_id = ? ORDER BY start',
                               (session_id,))
            live = self._live.get(session_id)
            return [Gap(*row) for row in rows] + (list(live.gaps) if live else [])

    def search(self, query: str, limit: int = 50, mark: tuple[str, str] = ("[", "]")) -> list[SearchHit]:
        """Full-text search over every session, best matches first.

        `query` may use FTS5 syntax ("budget AND review", "meet*", "\"exact phrase\""); text that is
        not valid syntax is searched as plain words instead of failing.
        """
        if not query.strip():
            return []
        sql = ("SELECT passages.session_id, sessions.title, snippet(passages, 0, ?, ?, '…', 16), passages.start "
               "FROM passages JOIN sessions ON sessions.id = passages.session_id "
               "WHERE passages MATCH ? ORDER BY rank LIMIT ?")
        with self._lock:
            try:
                rows = self._conn.execute(sql, (*mark, query, limit)).fetchall()
            except sqlite3.OperationalError:
                rows = self._query(sql, (*mark, fts_phrases(query), limit))
        return [SearchHit(*row) for row in rows]

    # -- managing ---------------------------------------------------------------------------------

    def rename(self, session_id: int, title: str) -> None:
        self._update(session_id, "title", title.strip() or self.session(session_id).title)

    def set_notes(self, session_id: int, notes: str) -> None:
        self._update(session_id, "notes", notes)

    def delete(self, session_id: int) -> None:
        """Remove the session, its words, gaps, search passages and its audio file."""
        with self._lock:
            if session_id in self._live:
                raise JournalError(f"session {session_id} is being recorded; stop it before deleting it")
            info = self.session(session_id)
            with self._write(f"delete session {session_id}"):
                for table in ("passages", "words", "gaps"):
                    self._conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (session_id,))
                self._conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        if info.audio_path is not None:
            try:
                info.audio_path.unlink(missing_ok=True)
            except OSError as exc:
                raise JournalError(f"session {session_id} was deleted but its audio file "
                                   f"{str(info.audio_path)!r} could not be removed: {exc.strerror or exc}") from exc

    def unfinished(self) -> list[SessionInfo]:
        """Sessions never ended whose recording process is gone: crashes, to be recovered."""
        return [s for s, pid in self._with_pids("WHERE ended_at IS NULL") if pid is None or not _process_alive(pid)]

    def recover(self, session_id: int) -> SessionInfo:
        """Close a crashed session: it ends where its last committed word (or gap) ends."""
        with self._lock:
            if session_id in self._live:
                raise JournalError(f"session {session_id} is being recorded by this program; it needs no recovery")
            with self._write(f"recover session {session_id}"):
                self._conn.execute("UPDATE sessions SET ended_at = started_at + duration_s, pid = NULL "
                                   "WHERE id = ? AND ended_at IS NULL", (session_id,))
        return self.session(session_id)

    # -- plumbing ---------------------------------------------------------------------------------

    def _live_session(self, session_id: int) -> _Live:
        live = self._live.get(session_id)
        if live is None:
            raise JournalError(f"session {session_id} is not being recorded by this journal")
        return live

    @contextlib.contextmanager
    def _write(self, what: str):
        """One transaction; an SQLite failure rolls it back and becomes a JournalError naming `what`."""
        if not self.writable:
            raise JournalError(f"cannot {what}: the session journal {str(self.path)!r} is open for reading only")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            yield
            self._conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")  # fails harmlessly when BEGIN or COMMIT already ended it
            if isinstance(exc, sqlite3.Error):
                raise JournalError(f"cannot {what} in the session journal {str(self.path)!r}: {explain(exc)}") from exc
            raise

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise JournalError(f"cannot read the session journal {str(self.path)!r}: {explain(exc)}") from exc

    def _update(self, session_id: int, column: str, value: str) -> None:
        with self._lock:
            self.session(session_id)  # unknown ids are an error, not a silent no-op
            with self._write(f"change session {session_id}"):
                self._conn.execute(f"UPDATE sessions SET {column} = ? WHERE id = ?", (value, session_id))

    def _with_pids(self, where: str) -> list[tuple[SessionInfo, int | None]]:
        rows = self._query(f"SELECT {_SESSION_FIELDS}, pid FROM sessions {where} ORDER BY started_at")
        return [(self._info(row[:-1]), row[-1]) for row in rows]

    @staticmethod
    def _info(row: tuple) -> SessionInfo:
        sid, title, model, device, started, ended, audio, notes, count, duration = row
        # a damaged row must not take the listing of every session down with it
        started = started if _finite(started) else 0.0
        ended = ended if ended is None or _finite(ended) else started
        duration = duration if _finite(duration) else 0.0
        return SessionInfo(sid, title, model, device, started, ended, None if audio is None else Path(audio),
                           notes, count, duration)


_SESSION_FIELDS = "id, title, model, device, started_at, ended_at, audio_path, notes, word_count, duration_s"
_SESSION_COLUMNS = f"SELECT {_SESSION_FIELDS} FROM sessions"


def _upgrade(conn: sqlite3.Connection, version: int) -> None:
    """Bring a journal of schema `version` (0: a new file) to SCHEMA_VERSION in one transaction: an
    interrupted upgrade leaves the journal as it was."""
    steps = [MIGRATIONS[v] for v in range(version, SCHEMA_VERSION)] if version else []
    script = ";\n".join(["BEGIN IMMEDIATE", *steps, SCHEMA, f"PRAGMA user_version={SCHEMA_VERSION}", "COMMIT"])
    try:
        conn.executescript(script)
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _check_times(what: str, start: float, end: float) -> None:
    if not (_finite(start) and _finite(end)):
        raise ValueError(f"{what} has a time that is not a finite number ({start!r} to {end!r}); "
                         "the journal keeps only real times")


def _held_by_another(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _has_content(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0
