"""Where Surtitle keeps its files: one helper, so the journal, session audio and settings agree.

`SURTITLE_DATA_DIR` overrides everything (tests, portable installs). Otherwise the platform's own
place for per-user application data: `$XDG_DATA_HOME/surtitle` (default `~/.local/share/surtitle`)
on Linux and other Unixes, `~/Library/Application Support/Surtitle` on macOS and
`%LOCALAPPDATA%\\Surtitle` on Windows. Nothing is created here; writers create what they need.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "Surtitle"
JOURNAL_FILE = "journal.sqlite3"
AUDIO_FOLDER = "audio"


def user_data_dir() -> Path:
    override = os.environ.get("SURTITLE_DATA_DIR")
    if override:
        return Path(override).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA")
        return (Path(base) if base else home / "AppData" / "Local") / APP_NAME
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / APP_NAME
    xdg = os.environ.get("XDG_DATA_HOME")
    # the XDG spec says to ignore relative values
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base / APP_NAME.lower()


def journal_path() -> Path:
    """The session journal (SQLite) that every live session is written to."""
    return user_data_dir() / JOURNAL_FILE


def session_audio_dir() -> Path:
    """Recorded session audio, next to the journal so that the two move together."""
    return user_data_dir() / AUDIO_FOLDER
