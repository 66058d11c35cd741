"""Final words → transcript files: plain text, SRT, WebVTT and JSON.

Pure functions on `core.words.Word` lists (no Qt, no torch), so a live session and a past one are
exported by the same code. Subtitles follow common broadcast rules: at most two lines of about
42 characters, a new cue at each sentence end and long pause, readable minimum durations, and
cues that never overlap.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, Protocol

from core.words import Word

PARAGRAPH_GAP_S = 2.0  # a silence this long starts a new paragraph in plain text
CUE_MAX_GAP_S = 1.2  # a silence this long ends a subtitle cue, so text never hangs over a pause

_SENTENCE_END = (".", "!", "?", "…")
_BREAK_AFTER = (".", ",", ";", ":", "!", "?", "…")
_CLOSERS = "\"'”’»)]"
# A line break that does not follow punctuation costs as much as making the two lines differ by
# this many characters: lines may be somewhat unbalanced to break at a natural pause.
_PUNCTUATION_SLACK_CHARS = 12


@dataclass(frozen=True)
class Incomplete:
    """A transcript that stops before its audio ends; every format says so in its own text."""

    stops_at_s: float  # seconds of audio the transcript covers
    reason: str  # why it stops, a clause that follows "because": "the file cannot be decoded past 0:05"

    @property
    def notice(self) -> str:
        return f"[Incomplete transcript: it stops at {_hms(self.stops_at_s)} because {self.reason}.]"


@dataclass(frozen=True)
class Cue:
    """One subtitle: shown from `start` to `end` seconds, one string per displayed line, said by one
    speaker ("" when the session heard one source and nobody is named)."""

    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str = ""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


# ---------------------------------------------------------------------------------------------
# Plain text and JSON


def to_txt(words: Sequence[Word], timestamps: bool = False, paragraph_gap_s: float = PARAGRAPH_GAP_S,
           incomplete: Incomplete | None = None) -> str:
    """Running text, one paragraph per stretch of speech; `[hh:mm:ss] ` opens each if asked."""
    paragraphs = []
    for group in _split_at_pauses(_in_time_order(_clean(words)), paragraph_gap_s):
        text = " ".join(w.text for w in group)
        if group[0].speaker:  # a turn: who speaks opens its paragraph
            text = f"{group[0].speaker}: {text}"
        if timestamps:
            text = f"[{_hms(group[0].start)}] {text}"
        paragraphs.append(text)
    if incomplete is not None:
        paragraphs.append(incomplete.notice)
    return "\n\n".join(paragraphs) + "\n" if paragraphs else ""


def to_json(words: Sequence[Word], meta: Mapping[str, object], incomplete: Incomplete | None = None) -> str:
    """`{"meta": ..., "text": ..., "words": [{"text", "start", "end"}, ...]}`, times in seconds; an
    incomplete transcript adds `"incomplete": {"stops_at_s", "reason"}`."""
    words = _in_time_order(_clean(words))
    document: dict[str, object] = {
        "meta": dict(meta),
        "text": " ".join(w.text for w in words),
        "words": [w.to_dict() for w in words],
    }
    speakers = _speakers(words)
    if speakers:
        document["speakers"] = speakers
    if incomplete is not None:
        document["incomplete"] = {"stops_at_s": round(incomplete.stops_at_s, 3), "reason": incomplete.reason}
    # allow_nan=False: "Infinity" is not JSON; _clean has made every time finite, this keeps it so
    return json.dumps(document, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------------------------
# Subtitles


def build_cues(
    words: Sequence[Word],
    max_chars: int = 42,
    max_lines: int = 2,
    min_duration: float = 1.0,
    max_duration: float = 7.0,
    max_gap: float = CUE_MAX_GAP_S,
) -> list[Cue]:
    """Group words into subtitle cues with monotonic times, never overlapping within one speaker.

    A cue ends after a sentence, before a pause longer than `max_gap`, before its text would need
    more than `max_lines` lines of `max_chars`, and before it would last more than `max_duration`.
    A lone word longer than `max_chars` gets a line of its own rather than being cut. A cue never
    mixes two speakers, and its lines leave room for the speaker's name ("Others: ").
    """
    if max_chars < 1 or max_lines < 1 or min_duration < 0 or max_duration <= 0 or max_gap < 0:
        raise ValueError(
            "build_cues needs max_chars, max_lines, max_duration > 0 and min_duration, max_gap >= 0"
        )
    words = _clean(words)
    speakers = _speakers(words)
    room = max_chars - max((len(s) + 2 for s in speakers), default=0)  # "Others: " on a line
    limits = _CueLimits(max(room, 1), max_lines, max_duration)
    # each speaker's words make their own cues, so one interjecting does not cut the other's
    groups = [g for speaker in speakers or [""] for g in _cue_groups([w for w in words if w.speaker == speaker],
                                                                       limits, max_gap)]
    if len(speakers) > 1:
        groups.sort(key=lambda group: group[0].start)
    layouts = [_layout(tuple(w.text for w in group), limits.max_chars, max_lines) for group in groups]
    return _timed(groups, layouts, min_duration, max_duration)


def _cue_groups(words: list[Word], limits: _CueLimits, max_gap: float) -> list[list[Word]]:
    """One speaker's words, in cues."""
    groups: list[list[Word]] = []
    for word in words:
        if not groups or _ends_sentence(groups[-1][-1].text) or word.start - groups[-1][-1].end > max_gap:
            groups.append([word])
            continue
        current = groups[-1]
        if limits.fit(current + [word]):
            current.append(word)
            continue
        # The cue is full. Rather than leave a clause's last words alone at the top of the next cue,
        # end this one at its last clause break when that keeps most of its text.
        tail = _clause_tail(current)
        if tail and limits.fit(tail + [word]):
            del current[-len(tail) :]
            groups.append(tail + [word])
        else:
            groups.append([word])
    return groups


def format_srt(cues: Sequence[Cue]) -> str:
    # SubRip has no speakers: the name opens the cue's first line, as broadcast subtitles do
    blocks = [
        f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n"
        f"{_srt_escape(f'{c.speaker}: {c.text}' if c.speaker else c.text)}\n"
        for i, c in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def format_vtt(cues: Sequence[Cue]) -> str:
    # WebVTT names speakers with voice spans, <v Name>, and colours them in a STYLE block
    blocks = [
        f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n"
        f"{f'<v {_vtt_escape(c.speaker)}>' if c.speaker else ''}{_vtt_escape(c.text)}\n"
        for c in cues
    ]
    speakers = list(dict.fromkeys(c.speaker for c in cues if c.speaker))
    style = [_vtt_style(speakers)] if speakers else []
    return "\n".join(["WEBVTT\n", *style, *blocks])


VOICE_COLOURS = ("#ffd75f", "#87d7ff", "#afff87", "#ff87af")  # "You" amber, "Others" sky blue, then more


def _vtt_style(speakers: list[str]) -> str:
    rules = [f'::cue(v[voice="{_css_string(name)}"]) {{ color: {VOICE_COLOURS[k % len(VOICE_COLOURS)]} }}'
             for k, name in enumerate(speakers)]
    return "STYLE\n" + "\n".join(rules) + "\n"


def _css_string(text: str) -> str:
    # inside a CSS string a quote or backslash would end it; "-->" would end the STYLE block
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("-->", "--\\>")


def to_srt(words: Sequence[Word], incomplete: Incomplete | None = None) -> str:
    return format_srt(_with_notice(build_cues(words), incomplete))


def to_vtt(words: Sequence[Word], incomplete: Incomplete | None = None) -> str:
    return format_vtt(_with_notice(build_cues(words), incomplete))


def _with_notice(cues: list[Cue], incomplete: Incomplete | None, shown_s: float = 4.0) -> list[Cue]:
    """An incomplete transcript's subtitles end with a cue that says so, where the words stop."""
    if incomplete is None:
        return cues
    start = max([incomplete.stops_at_s, *(c.end for c in cues[-1:])])
    return [*cues, Cue(start, start + shown_s, (incomplete.notice,))]


@dataclass(frozen=True)
class _CueLimits:
    max_chars: int
    max_lines: int
    max_duration: float

    def fit(self, words: list[Word]) -> bool:
        return (
            words[-1].end - words[0].start <= self.max_duration
            or len(words) == 1  # one word that lasts too long still needs a cue; its end is capped later
        ) and _layout(tuple(w.text for w in words), self.max_chars, self.max_lines) is not None


def _clause_tail(words: list[Word]) -> list[Word]:
    """Words after the last clause break (comma, full stop...) if that break keeps most of the text."""
    total = sum(len(w.text) + 1 for w in words)
    kept = total
    for i in range(len(words) - 1, 0, -1):
        kept -= len(words[i].text) + 1
        if kept * 2 < total:
            break
        if words[i - 1].text.rstrip(_CLOSERS).endswith(_BREAK_AFTER):
            return words[i:]
    return []


def _ends_sentence(text: str) -> bool:
    return text.rstrip(_CLOSERS).endswith(_SENTENCE_END)


@lru_cache(maxsize=4096)  # cue building asks again for the same prefix plus one word
def _layout(texts: tuple[str, ...], max_chars: int, max_lines: int) -> tuple[str, ...] | None:
    """Fewest lines that fit, broken at the most balanced place, preferring breaks after punctuation.

    Returns None when the words cannot fit in `max_lines` lines of `max_chars` characters.
    """
    n = len(texts)
    starts = [0]  # starts[i] = characters before word i, counting one space between words
    for text in texts:
        starts.append(starts[-1] + len(text) + 1)

    def width(i: int, j: int) -> int:  # characters of words i..j-1 on one line
        return starts[j] - starts[i] - 1

    def fits(i: int, j: int) -> bool:
        return width(i, j) <= max_chars or j == i + 1

    penalty = 2 * _PUNCTUATION_SLACK_CHARS**2  # moving d chars between two lines costs about 2*d²

    @lru_cache(maxsize=None)
    def best(i: int, lines: int) -> tuple[float, tuple[int, ...]] | None:
        """Cheapest way to lay words i.. on exactly `lines` lines: (cost, break positions)."""
        if lines == 1:
            return (width(i, n) ** 2, ()) if fits(i, n) else None
        choices = []
        for j in range(i + 1, n - lines + 2):  # leave at least one word per remaining line
            if not fits(i, j):
                break
            rest = best(j, lines - 1)
            if rest is not None:
                natural = texts[j - 1].rstrip(_CLOSERS).endswith(_BREAK_AFTER)
                cost = width(i, j) ** 2 + (0 if natural else penalty) + rest[0]
                choices.append((cost, (j, *rest[1])))
        return min(choices) if choices else None

    for lines in range(1, min(max_lines, n) + 1):
        found = best(0, lines)
        if found is not None:
            bounds = (0, *found[1], n)
            return tuple(" ".join(texts[a:b]) for a, b in zip(bounds, bounds[1:]))
    return None


def _timed(
    groups: list[list[Word]], layouts: list[tuple[str, ...] | None], min_duration: float, max_duration: float
) -> list[Cue]:
    """Times from the words, stretched to `min_duration` where the next cue leaves room.

    Cues of one speaker never overlap; two speakers talking at once get overlapping cues, which
    players show together (squeezed into one timeline, one of them would get no time at all).
    """
    cues: list[Cue] = []
    previous_end: dict[str, float] = {}  # per speaker
    for k, (group, lines) in enumerate(zip(groups, layouts)):
        assert lines is not None  # every group was built to fit, or is one overlong word
        speaker = group[0].speaker
        next_start = next((g[0].start for g in groups[k + 1:] if g[0].speaker == speaker), math.inf)
        start = max(group[0].start, previous_end.get(speaker, 0.0))  # never before the speaker's last cue ends
        end = max(group[-1].end, start + min_duration)
        end = max(start, min(end, start + max_duration, next_start))
        cues.append(Cue(start, end, lines, speaker))
        previous_end[speaker] = end
    return cues


def _timestamp(seconds: float, decimal_mark: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_mark}{ms:03d}"


def _vtt_escape(text: str) -> str:
    # WebVTT cue text is markup: a bare '<' or '&' would start a tag or entity.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _srt_escape(text: str) -> str:
    # SubRip has no escapes, yet players render <b>, <i>, <u> and <font> in it as markup, and few
    # decode "&lt;". Angle quotation marks look like the brackets and cannot open a tag.
    return text.replace("<", "\u2039").replace(">", "\u203a")


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _clean(words: Sequence[Word]) -> list[Word]:
    """Drop empty words, fold inner whitespace and make times finite, so no format can get a blank
    or broken line, an unreadable time or invalid JSON.

    A time that is not a finite number (a damaged journal) becomes the previous word's end: the
    word keeps its place in the text instead of taking every cue and timestamp down with it.
    """
    cleaned: list[Word] = []
    for w in words:
        text = " ".join(w.text.split())
        if not text:
            continue
        before = cleaned[-1].end if cleaned else 0.0
        start = w.start if math.isfinite(w.start) else before
        end = w.end if math.isfinite(w.end) else start
        if (text, start, end) != (w.text, w.start, w.end):
            w = Word(text, start, end, w.speaker)
        cleaned.append(w)
    return cleaned


def _split_at_pauses(words: list[Word], gap_s: float) -> list[list[Word]]:
    """Paragraphs: a new one after a long pause, and at every change of speaker."""
    groups: list[list[Word]] = []
    for word in words:
        if groups and word.start - groups[-1][-1].end <= gap_s and word.speaker == groups[-1][-1].speaker:
            groups[-1].append(word)
        else:
            groups.append([word])
    return groups


def _speakers(words: Sequence[Word]) -> list[str]:
    """The named speakers, in the order they first speak."""
    return list(dict.fromkeys(w.speaker for w in words if w.speaker))


def _in_time_order(words: list[Word]) -> list[Word]:
    """Two speakers' words arrive stream by stream; a transcript reads them in the order said."""
    if len(_speakers(words)) < 2:
        return words
    return sorted(words, key=lambda w: w.start)


def _hms(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


# ---------------------------------------------------------------------------------------------
# Formats by name


class Render(Protocol):
    """(words, meta, incomplete) -> the file's text; meta describes the source (JSON keeps it)."""

    def __call__(self, words: Sequence[Word], meta: Mapping[str, object],
                 incomplete: Incomplete | None = None) -> str: ...


class ExportFormat(NamedTuple):
    extension: str  # with the dot, as Path.suffix spells it
    render: Render


FORMATS: dict[str, ExportFormat] = {
    "txt": ExportFormat(".txt", lambda words, meta, incomplete=None: to_txt(words, incomplete=incomplete)),
    "srt": ExportFormat(".srt", lambda words, meta, incomplete=None: to_srt(words, incomplete)),
    "vtt": ExportFormat(".vtt", lambda words, meta, incomplete=None: to_vtt(words, incomplete)),
    "json": ExportFormat(".json", to_json),
}
