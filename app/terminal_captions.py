"""Captions in a terminal: final words as wrapped lines, the word being formed shown after them.

On a TTY the current line is redrawn in place (carriage return, erase to end of line), with the
tentative word dimmed after the final ones; a line is ended when the next word would not fit or
after a pause. Elsewhere (a pipe, a file) only whole lines are written, each once, never redrawn,
so the output reads like a transcript.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import TextIO

from app.export import PARAGRAPH_GAP_S
from core.words import Word

PIPE_WIDTH = 80
_DIM, _RESET, _ERASE = "\x1b[2m", "\x1b[0m", "\x1b[K"


class TerminalCaptions:
    def __init__(self, out: TextIO, tty: bool | None = None, width: int | None = None):
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.width = width or (shutil.get_terminal_size().columns if self.tty else PIPE_WIDTH)
        self._line = ""
        self._partial = ""
        self._last_end: float | None = None
        self._speaker = ""  # who the line being written is by; a new speaker starts a new line
        self._drawn = False  # a TTY line is on screen and not yet ended

    def add_words(self, words: Sequence[Word]) -> None:
        for word in words:
            text = " ".join(word.text.split())
            if not text:
                continue
            paused = self._last_end is not None and word.start - self._last_end > PARAGRAPH_GAP_S
            turn = word.speaker != self._speaker
            if self._line and (paused or turn or len(self._line) + 1 + len(text) > self.width - 1):
                self._end_line()
            if not self._line and word.speaker:
                self._line = f"{word.speaker}:"  # each line says who speaks, so a wrapped turn reads alone
            self._line = f"{self._line} {text}" if self._line else text
            self._last_end, self._speaker = word.end, word.speaker
        self._redraw()

    def set_partial(self, text: str) -> None:
        self._partial = " ".join(text.split())
        self._redraw()

    def clear_line(self) -> None:
        """Take the line being drawn off the screen (to print a message); the next redraw brings it back."""
        if self.tty and self._drawn:
            self.out.write("\r" + _ERASE)
            self.out.flush()
            self._drawn = False

    def redraw(self) -> None:
        self._redraw()

    def finish(self) -> None:
        """End the last line: the words stay, the tentative tail goes."""
        self._partial = ""
        if self._line:
            self._end_line()
        elif self._drawn:
            self.clear_line()

    def _end_line(self) -> None:
        if self.tty:
            self.out.write("\r" + self._line + _ERASE + "\n")
        else:
            self.out.write(self._line + "\n")
        self.out.flush()
        self._line, self._drawn = "", False

    def _redraw(self) -> None:
        if not self.tty:
            return
        room = self.width - 1 - len(self._line) - (1 if self._line else 0)
        tail = self._partial[:max(0, room)] if self._partial and room > 0 else ""
        shown = self._line + (" " if self._line and tail else "") + (f"{_DIM}{tail}{_RESET}" if tail else "")
        self.out.write("\r" + shown + _ERASE)
        self.out.flush()
        self._drawn = bool(shown)
