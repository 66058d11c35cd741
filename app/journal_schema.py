"""The journal's SQLite schema, its search passages, and what its errors mean in words.

Kept apart from `app.journal` so the Journal class reads as its API and its commit policy.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path

from app.export import PARAGRAPH_GAP_S
from core.words import Word

SCHEMA_VERSION = 2

# Times: started_at / ended_at are Unix seconds; word and gap times are seconds of session audio.
# word_count and duration_s are kept up to date by each commit, so listing sessions reads one row
# per session instead of counting words. pid is the recording process while the session is live.
SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id          INTEGER PRIMARY KEY,
    title       TEXT NOT NULL,
    model       TEXT NOT NULL,
    device      TEXT NOT NULL,
    started_at  REAL NOT NULL,
    ended_at    REAL,
    audio_path  TEXT,
    notes       TEXT NOT NULL DEFAULT '',
    pid         INTEGER,
    word_count  INTEGER NOT NULL DEFAULT 0,
    duration_s  REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS words (
    session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    text        TEXT NOT NULL,
    start       REAL NOT NULL,
    "end"       REAL NOT NULL,
    speaker     TEXT NOT NULL DEFAULT '',  -- who said it ("You", "Others"), or '' where one source was heard
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gaps (
    session_id  INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    start       REAL NOT NULL,
    "end"       REAL NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gaps_by_session ON gaps (session_id, start);
-- Full-text search over passages (runs of words cut at pauses and sentence ends), so a hit shows
-- a readable snippet and a time to jump to. remove_diacritics: "cafe" finds "café".
CREATE VIRTUAL TABLE IF NOT EXISTS passages USING fts5(
    text, session_id UNINDEXED, start UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);
"""

# Each step from a version to the next, run in order inside one transaction by Journal. Nothing is
# lost: columns are only added, with a default that means what the older journal meant.
MIGRATIONS = {
    1: 'ALTER TABLE words ADD COLUMN speaker TEXT NOT NULL DEFAULT \'\'',  # v2: who said each word
}

PASSAGE_MAX_WORDS = 40
PASSAGE_MIN_SENTENCE_WORDS = 12  # a sentence end closes a passage once it holds this many words
_SENTENCE_END = (".", "!", "?", "…")


@dataclass(frozen=True)
class Passage:
    """The passage a live session is appending to. rowid is None until it is first written."""

    rowid: int | None
    text: str
    start: float
    words: int
    last_end: float
    last_text: str


def write_passages(conn: sqlite3.Connection, session_id: int, open_passage: Passage | None,
                   words: list[Word]) -> Passage | None:
    """Append words to the session's passages inside the caller's transaction; returns the open one.

    Frozen values: if the transaction rolls back, the caller still holds the passage as it was.
    """
    current, dirty = open_passage, False
    for word in words:
        if current is None or _breaks(current, word):
            if dirty:
                _store(conn, session_id, current)
            current = Passage(None, word.text, word.start, 1, word.end, word.text)
        else:
            current = replace(current, text=f"{current.text} {word.text}", words=current.words + 1,
                              last_end=word.end, last_text=word.text)
        dirty = True
    if dirty:
        current = _store(conn, session_id, current)
    return current


def _breaks(p: Passage, word: Word) -> bool:
    return (
        p.words >= PASSAGE_MAX_WORDS
        or word.start - p.last_end > PARAGRAPH_GAP_S
        or (p.words >= PASSAGE_MIN_SENTENCE_WORDS and p.last_text.endswith(_SENTENCE_END))
    )


def _store(conn: sqlite3.Connection, session_id: int, p: Passage) -> Passage:
    if p.rowid is None:
        cur = conn.execute("INSERT INTO passages (text, session_id, start) VALUES (?, ?, ?)",
                           (p.text, session_id, p.start))
        return replace(p, rowid=cur.lastrowid)
    conn.execute("UPDATE passages SET text = ? WHERE rowid = ?", (p.text, p.rowid))
    return p


def fts_phrases(query: str) -> str:
    """User text as FTS5 phrases ("c++" and "don't" are not valid FTS syntax; quoted, they are)."""
    return " ".join('"' + token.replace('"', '""') + '"' for token in query.split())


def explain(exc: sqlite3.Error, path: Path | None = None) -> str:
    """An SQLite error as the reason a person can act on; `path`, the journal, lets it tell a
    read-only disk from a missing folder."""
    text = str(exc).lower()
    cannot_write = "readonly" in text or "read-only" in text or "unable to open" in text
    if cannot_write and path is not None and _on_read_only_disk(path):
        return "the disk it is on is read-only"
    if "full" in text:
        return "the disk is full; free some space"
    if "readonly" in text or "read-only" in text:
        return "the file or its folder is read-only; check its permissions"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return "the file is damaged; move it away and Surtitle starts a new journal"
    if "locked" in text or "busy" in text:
        return "another program keeps it locked; close other Surtitle windows and try again"
    if "unable to open" in text:
        return "the file cannot be opened; check that its folder exists and is writable"
    first = str(exc).strip().splitlines()
    return first[0] if first else type(exc).__name__


def _on_read_only_disk(path: Path) -> bool:
    folder = path if path.is_dir() else path.parent
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False
