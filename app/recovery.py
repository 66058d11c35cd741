"""Crash recovery: close the sessions a crashed or killed recorder left open, and fix their audio.

The words are safe already (the journal commits at least every half second); what a crash leaves
undone is the session's end time and the audio file's header. Both drivers (the window and
`surtitle live`) call `recover_unfinished` when they start.
"""

from __future__ import annotations

import logging

from app.journal import Journal, SessionInfo
from app.session_audio import SessionAudioError, repair

log = logging.getLogger(__name__)


def recover_unfinished(journal: Journal) -> list[SessionInfo]:
    """Recover every session whose recording process is gone; returns them as they are now. A
    journal open for reading only recovers nothing (its sessions' audio is not touched either)."""
    if not journal.writable:
        return []
    recovered = []
    for info in journal.unfinished():
        if info.audio_path is not None and info.audio_path.exists():
            try:
                repair(info.audio_path)
            except SessionAudioError as exc:  # the words matter more than the audio: go on
                log.warning("session %d: %s", info.id, exc)
        recovered.append(journal.recover(info.id))
    return recovered
