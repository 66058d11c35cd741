"""Words with timestamps, cut from the model's text-token stream.

Kyutai's text stream is mostly padding (id 3); id 0 ("end of padding") is emitted in the step right
before a word's first piece. A segment runs from one 0 marker to the next padding or marker; its
pieces are SentencePiece ids whose '▁' prefix starts a word, so a segment normally holds one word
and holds several only in fast speech, where the model skipped a marker. As in Kyutai's Rust
server (model-spec-kyutai §3.3), a segment's words become final at the padding or marker that closes
it; their times are the steps of the opening marker and of that closing token, minus the model's delay
and our silence prefix. Several words in one segment share its span by token counts, as Kyutai's
PyTorch scripts do (§3.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Sequence

WORD_START_ID = 0  # "end of padding": the next piece opens a word
TEXT_PAD_ID = 3  # nothing new in this step
MAX_OPEN_PIECES = 200  # 16 s of text with no padding: never in speech; bounds a model that stopped padding


@dataclass(frozen=True)
class Word:
    """One final word and its time span, in seconds of the audio the caller pushed."""

    text: str
    start: float
    end: float
    speaker: str = ""  # who said it ("You", "Others"), where the caller knows; the engine does not

    def to_dict(self) -> dict:
        out = {"text": self.text, "start": round(self.start, 3), "end": round(self.end, 3)}
        if self.speaker:
            out["speaker"] = self.speaker
        return out


class PieceDecoder(Protocol):
    def is_word_start(self, token_id: int) -> bool: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def is_text(self, token_id: int) -> bool: ...


class WordSegmenter:
    """Incremental segmenter for one stream: feed tokens in order, get final words back.

    `index` is the token's place in the stream as `generate` returns it (BOS = 0), so that index k
    stands for the moment k frames have been stepped; time(k) = k / frame_rate - offset_s.
    """

    def __init__(self, decoder: PieceDecoder, frame_rate: float, offset_s: float):
        self._decoder = decoder
        self._frame_s = 1.0 / frame_rate
        self._offset_s = offset_s
        self.reset()

    def reset(self) -> None:
        self._open_index: int | None = None  # index of the marker that opened the segment
        self._pieces: list[int] = []
        self._audio_end_s = math.inf  # set by end_audio(): no word ends after it

    @property
    def pending_text(self) -> str:
        """Text of the segment still open (shown as a tentative tail in live captions)."""
        return self._decoder.decode(self._pieces).strip() if self._pieces else ""

    def time_of(self, index: int) -> float:
        return max(0.0, index * self._frame_s - self._offset_s)

    def feed(self, index: int, token_id: int) -> list[Word]:
        if token_id == WORD_START_ID:
            words = self._close(index)
            self._open_index = index
            return words
        if token_id == TEXT_PAD_ID or not self._decoder.is_text(token_id):
            return self._close(index)
        if self._open_index is None:
            # a piece with no marker before it: the segment starts where the marker would have been
            self._open_index = index - 1
        self._pieces.append(token_id)
        if len(self._pieces) >= MAX_OPEN_PIECES:
            return self._close_early(index)
        return []

    def end_audio(self, audio_s: float) -> None:
        """The stream's audio ends at `audio_s` seconds: call it before the silence a stream's end
        is padded with is stepped. Words closed by tokens of that silence (up to a second past the
        audio) end where the audio does: a word cannot go on past the audio it is in."""
        self._audio_end_s = audio_s

    def flush(self, index: int) -> list[Word]:
        """Close whatever is open at the end of the stream."""
        return self._close(index)

    def _close_early(self, index: int) -> list[Word]:
        """A segment no padding ends (a broken or random model): its words but the last become final
        now, so that memory stays bounded and the journal keeps them; the last may still grow."""
        last = max((j for j, tok in enumerate(self._pieces) if self._decoder.is_word_start(tok)), default=0)
        if last == 0:  # one endless word: cut it here
            return self._close(index + 1)
        # pieces are one per step while a segment is open: piece j was fed at open_index + 1 + j, so
        # the step before the last word's first piece plays the marker that would have split them
        split = self._open_index + last
        keep, self._pieces = self._pieces[last:], self._pieces[:last]
        words = self._close(split)
        self._open_index, self._pieces = split, keep
        return words

    def _close(self, index: int) -> list[Word]:
        if not self._pieces:
            return []
        start_index, pieces = self._open_index, self._pieces
        self._open_index, self._pieces = None, []
        groups: list[list[int]] = []
        for tok in pieces:
            if not groups or self._decoder.is_word_start(tok):
                groups.append([])
            groups[-1].append(tok)
        seg_end = min(self.time_of(index), self._audio_end_s)
        seg_start = min(self.time_of(start_index), seg_end)
        words, at = [], start_index
        for i, group in enumerate(groups):
            text = self._decoder.decode(group).strip()
            start = min(self.time_of(at), seg_end)
            at += len(group)
            end = seg_end if i == len(groups) - 1 else min(self.time_of(at), seg_end)
            if text:
                words.append(Word(text, max(start, seg_start), end))
        return words
