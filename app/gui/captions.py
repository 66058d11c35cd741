"""What the caption overlay shows: final words laid out in lines, plus the word being formed.

Qt-free so the append-only rule can be tested on its own. Words are wrapped greedily from the
start of the caption, and greedy wrapping is prefix-stable: appending a word never moves an earlier
word to another line. Lines that scroll off the top are dropped for good, so memory stays bounded
however long the session runs, and what remains wraps exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CaptionLine:
    final: str  # words already final: drawn in full colour
    partial: str = ""  # the tentative word after them: drawn dimmer, only on the last line

    @property
    def text(self) -> str:
        return f"{self.final} {self.partial}".strip()


class CaptionBuffer:
    """Final words since the last clear, wrapped at `width` (same unit as `measure`)."""

    def __init__(self, measure: Callable[[str], float], width: float, max_lines: int):
        self._measure = measure
        self._width = width
        self._max_lines = max(1, max_lines)
        self._words: list[str] = []
        self._partial = ""

    @property
    def is_empty(self) -> bool:
        return not self._words and not self._partial

    def append_words(self, texts: Sequence[str]) -> None:
        self._words.extend(t for t in (" ".join(t.split()) for t in texts) if t)
        self._partial = ""  # the words that were forming are now final
        self._drop_scrolled_lines()

    def set_partial(self, text: str) -> None:
        self._partial = " ".join(text.split())

    def clear(self) -> None:
        self._words.clear()
        self._partial = ""

    def set_width(self, width: float) -> None:
        self._width = width

    def set_max_lines(self, max_lines: int) -> None:
        self._max_lines = max(1, max_lines)

    def set_measure(self, measure: Callable[[str], float]) -> None:
        self._measure = measure

    def lines(self) -> list[CaptionLine]:
        """The visible lines, oldest first: at most `max_lines`, the partial word on the last."""
        wrapped = self._wrap(self._words)
        finals = [" ".join(line) for line in wrapped]
        if self._partial:
            last = finals[-1] if finals else ""
            candidate = f"{last} {self._partial}".strip()
            if finals and self._measure(candidate) > self._width:
                finals.append("")  # the forming word goes where it will land when final
            elif not finals:
                finals.append("")
        lines = [CaptionLine(text) for text in finals]
        if self._partial:
            partial = self._partial if lines[-1].final else self._tail(self._partial)
            lines[-1] = CaptionLine(lines[-1].final, partial)
        return lines[-self._max_lines:]

    def _tail(self, text: str) -> str:
        """`text`, or as much of its end as fits behind "…": the newest words are the ones to show."""
        if self._measure(text) <= self._width:
            return text
        lo, hi = 1, len(text)  # the smallest cut that fits: more text kept is always wider
        while lo < hi:
            mid = (lo + hi) // 2
            if self._measure("…" + text[mid:]) <= self._width:
                hi = mid
            else:
                lo = mid + 1
        return "…" + text[lo:]

    def _wrap(self, words: Sequence[str]) -> list[list[str]]:
        lines: list[list[str]] = []
        for word in words:
            if lines and self._measure(" ".join([*lines[-1], word])) <= self._width:
                lines[-1].append(word)
            else:
                lines.append([word])  # a word wider than the box gets a line of its own
        return lines

    def _drop_scrolled_lines(self) -> None:
        # Keep one spare line above the visible ones: the last line may still be filling up.
        wrapped = self._wrap(self._words)
        extra = len(wrapped) - (self._max_lines + 1)
        if extra > 0:
            del self._words[: sum(len(line) for line in wrapped[:extra])]
