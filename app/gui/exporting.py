"""Export a session (live or past) to a file the user picks, through `app.export`.

The words come from the journal, so a failed export loses nothing: the message says why the file
could not be written and the user can pick another place at once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.export import FORMATS, to_txt
from app.gui.messages import describe_os_error
from app.output_file import write_output
from core.words import Word

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportChoice:
    label: str  # a file-dialog filter
    extension: str
    render: Callable[[Sequence[Word], Mapping[str, object]], str]


CHOICES: tuple[ExportChoice, ...] = (
    ExportChoice("Plain text (*.txt)", ".txt", FORMATS["txt"].render),
    ExportChoice("Plain text with time stamps (*.txt)", ".txt", lambda words, meta: to_txt(words, timestamps=True)),
    ExportChoice("SubRip subtitles (*.srt)", ".srt", FORMATS["srt"].render),
    ExportChoice("WebVTT subtitles (*.vtt)", ".vtt", FORMATS["vtt"].render),
    ExportChoice("JSON with word timings (*.json)", ".json", FORMATS["json"].render),
)

# (parent, caption, suggested path, filters, selected filter) -> (path, chosen filter); "" = cancelled
SaveChooser = Callable[[QWidget, str, str, str, str], tuple[str, str]]
# (parent, message) -> True to pick another place
RetryAsker = Callable[[QWidget, str], bool]


def choose_save_path(parent: QWidget, caption: str, path: str, filters: str, selected: str) -> tuple[str, str]:
    return QFileDialog.getSaveFileName(parent, caption, path, filters, selected)


def ask_retry(parent: QWidget, message: str) -> bool:
    answer = QMessageBox.warning(
        parent, "Export failed", f"{message}\n\nThe session is safe in History.",
        QMessageBox.StandardButton.Retry | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Retry)
    return answer == QMessageBox.StandardButton.Retry


def file_stem(title: str) -> str:
    """A file name from a session title: no path separators or characters Windows refuses."""
    stem = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", title).strip(" .")
    return " ".join(stem.split())[:120] or "transcript"


def write_export(path: str, choice: ExportChoice, words: Sequence[Word], meta: Mapping[str, object]) -> str:
    """Render and write (app.output_file: nothing at the path is clobbered); returns the path written
    (extension added when missing)."""
    target = Path(path)
    if not target.suffix:
        target = target.with_suffix(choice.extension)
    write_output(target, choice.render(words, meta))
    return str(target)


class Exporter:
    """Asks where, writes, and on failure says why and offers to pick another place."""

    def __init__(self, chooser: SaveChooser = choose_save_path, ask: RetryAsker = ask_retry):
        self._chooser = chooser
        self._ask = ask
        self.folder = str(Path.home())
        self.last_filter = CHOICES[0].label

    def export(self, parent: QWidget, title: str, words: Sequence[Word], meta: Mapping[str, object]) -> str | None:
        """The path written, or None when the user cancelled."""
        filters = ";;".join(choice.label for choice in CHOICES)
        suggestion = str(Path(self.folder) / file_stem(title))
        while True:
            path, label = self._chooser(parent, "Export transcript", suggestion, filters, self.last_filter)
            if not path:
                return None
            choice = next((c for c in CHOICES if c.label == label), _choice_for_suffix(path))
            try:
                written = write_export(path, choice, words, meta)
            except OSError as exc:
                log.warning("export to %s failed: %s", path, exc)
                if not self._ask(parent, describe_os_error(exc, path=path)):
                    return None
                suggestion = path
                continue
            self.folder, self.last_filter = str(Path(written).parent), choice.label
            return written


def session_export(journal, session_id: int) -> tuple[str, list[Word], dict[str, object]] | None:
    """(title, words, meta) of a journal session, live or past; None if there is no such session."""
    session = next((s for s in journal.sessions() if s.id == session_id), None)
    if session is None:
        return None
    meta = {"title": session.title, "model": session.model, "started_at": session.started_at,
            "ended_at": session.ended_at}
    return session.title or "transcript", journal.words(session_id), meta


def _choice_for_suffix(path: str) -> ExportChoice:
    suffix = Path(path).suffix.lower()
    return next((c for c in CHOICES if c.extension == suffix), CHOICES[0])
