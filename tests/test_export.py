"""Transcript exports: subtitle cue rules, SRT/VTT/JSON round trips, paragraphs, incomplete
transcripts, damaged times."""

import json
import math
import re

import pytest

from app.export import FORMATS, Cue, Incomplete, build_cues, to_json, to_srt, to_txt, to_vtt
from core.words import Word

SPEECH = (
    "So this morning we went down to the old harbour, where the fishing boats come in. "
    "It was cold and grey, but the light over the water was wonderful and nobody wanted to leave. "
    "Yes. Then we talked about the plan for the summer holidays in Brittany, the long drive, the "
    "campsite by the sea and the friends we had not seen for years"
)


def _words(text: str = SPEECH, pause_after: dict[str, float] | None = None) -> list[Word]:
    """Words spoken at a plausible pace: 80 ms a character, 50 ms between words."""
    pause_after = pause_after or {}
    words, t = [], 0.0
    for token in text.split():
        d = 0.08 * len(token) + 0.1
        words.append(Word(token, round(t, 3), round(t + d, 3)))
        t += d + 0.05 + pause_after.get(token, 0.0)
    return words


# --- an independent reader for what we write ---------------------------------------------------

_TIME = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"


def _seconds(h, m, s, ms) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def _parse_cues(text: str, vtt: bool) -> list[tuple[float, float, list[str]]]:
    if vtt:
        header, _, text = text.partition("\n\n")
        assert header == "WEBVTT"
    cues = []
    for block in text.strip("\n").split("\n\n") if text.strip() else []:
        lines = block.split("\n")
        if not vtt:
            assert lines.pop(0) == str(len(cues) + 1)  # SRT numbers cues from 1
        m = re.fullmatch(f"{_TIME} --> {_TIME}", lines[0])
        assert m, lines[0]
        sep = "." if vtt else ","
        assert lines[0].count(sep) == 2
        g = m.groups()
        body = lines[1:]
        # no raw bracket may reach a player: both formats would take it for the start of a tag
        assert not any(c in b for b in body for c in "<>"), body
        if vtt:
            assert not re.search(r"&(?!(amp|lt|gt);)", "".join(body)), body  # a bare '&' starts an entity
            body = [b.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for b in body]
        else:
            body = [b.replace("\u2039", "<").replace("\u203a", ">") for b in body]
        cues.append((_seconds(*g[:4]), _seconds(*g[4:]), body))
    return cues


# --- cue rules ---------------------------------------------------------------------------------


def _check_cue_invariants(cues: list[Cue], max_chars=42, max_lines=2, max_duration=7.0):
    for cue in cues:
        assert 1 <= len(cue.lines) <= max_lines
        assert all(len(line) <= max_chars or " " not in line for line in cue.lines)
        assert all(line == line.strip() and line for line in cue.lines)
        assert cue.start <= cue.end <= cue.start + max_duration + 1e-9
    for a, b in zip(cues, cues[1:]):
        assert a.end <= b.start  # never overlapping, times monotonic


def test_cues_keep_every_word_in_order_and_obey_the_limits():
    words = _words()
    cues = build_cues(words)

    _check_cue_invariants(cues)
    assert " ".join(" ".join(c.lines) for c in cues) == " ".join(w.text for w in words)


def test_sentence_end_starts_a_new_cue():
    cues = build_cues(_words("Hello there. How are you?  Fine!"))
    assert [c.text for c in cues] == ["Hello there.", "How are you?", "Fine!"]


def test_closing_quote_after_full_stop_still_ends_the_sentence():
    cues = build_cues(_words('He said "stop." Then left'))
    assert [c.text for c in cues] == ['He said "stop."', "Then left"]


def test_long_pause_starts_a_new_cue_and_short_one_does_not():
    words = _words("one two three four", pause_after={"two": 2.0, "three": 0.5})
    assert [c.text for c in build_cues(words, max_gap=1.2)] == ["one two", "three four"]


def test_lines_break_after_punctuation_when_possible():
    # the most balanced break would be after "and"; the comma is close enough to win
    (cue,) = build_cues(_words("We walked to the harbour, and then along the quiet beach"), max_duration=60)
    assert cue.lines == ("We walked to the harbour,", "and then along the quiet beach")


def test_two_lines_are_balanced_without_punctuation():
    words = _words("the quick brown fox jumps over the lazy dog and runs far away into the wood")
    (cue,) = build_cues(words, max_duration=60)
    first, second = cue.lines
    assert abs(len(first) - len(second)) <= 8


def test_short_text_stays_on_one_line():
    (cue,) = build_cues(_words("Good morning everyone"))
    assert cue.lines == ("Good morning everyone",)


def test_full_cue_ends_at_a_clause_break_rather_than_orphaning_words():
    cues = build_cues(_words(SPEECH))
    assert cues[0].lines[-1].endswith("harbour,")
    assert cues[1].text == "where the fishing boats come in."


def test_word_longer_than_a_line_gets_its_own_line():
    url = "https://example.org/a/very/long/address/that/cannot/be/broken"
    cues = build_cues([Word("see", 0.0, 0.3), Word(url, 0.4, 2.0), Word("there", 2.1, 2.4)])
    _check_cue_invariants(cues)
    assert any(url in c.lines for c in cues)


def test_short_cue_is_stretched_to_min_duration_but_not_over_the_next():
    words = [Word("Yes.", 1.0, 1.2), Word("No.", 1.6, 1.8), Word("Maybe.", 5.0, 5.3)]
    cues = build_cues(words, min_duration=1.0)
    assert (cues[0].start, cues[0].end) == (1.0, 1.6)  # stopped by the next cue
    assert (cues[1].start, cues[1].end) == (1.6, pytest.approx(2.6))  # room: full second
    assert cues[2].end == pytest.approx(6.0)


def test_cue_never_lasts_longer_than_max_duration():
    words = [Word(f"w{i}", i * 0.9, i * 0.9 + 0.8) for i in range(30)]  # slow speech, no punctuation
    cues = build_cues(words, max_duration=4.0)
    _check_cue_invariants(cues, max_duration=4.0)
    assert len(cues) > 5
    # a single word that lasts too long is cut short rather than shown forever
    (cue,) = build_cues([Word("hmmmm", 0.0, 12.0)], max_duration=7.0)
    assert cue.end == 7.0


def test_overlapping_or_unsorted_word_times_still_give_monotonic_cues():
    words = [Word("A.", 0.0, 2.0), Word("B.", 1.0, 1.5), Word("C.", 1.2, 3.0)]
    _check_cue_invariants(build_cues(words))


def test_empty_words_are_dropped_and_no_words_give_no_cues():
    assert build_cues([]) == []
    assert [c.text for c in build_cues([Word(" ", 0, 1), Word("hi", 1, 2)])] == ["hi"]


def test_nonsense_limits_are_rejected():
    with pytest.raises(ValueError):
        build_cues(_words("a b"), max_chars=0)


# --- SRT and VTT round trips -------------------------------------------------------------------


@pytest.mark.parametrize("vtt", [False, True], ids=["srt", "vtt"])
def test_subtitles_round_trip_text_and_times(vtt):
    words = _words(SPEECH, pause_after={"Yes.": 3.0}) + [Word("a<b & c>d", 90.0, 91.0)]
    cues = build_cues(words)
    text = to_vtt(words) if vtt else to_srt(words)

    parsed = _parse_cues(text, vtt)

    assert [lines for _, _, lines in parsed] == [list(c.lines) for c in cues]
    for (start, end, _), cue in zip(parsed, cues):
        assert start == pytest.approx(cue.start, abs=5e-4) and end == pytest.approx(cue.end, abs=5e-4)
    assert all(a[1] <= b[0] for a, b in zip(parsed, parsed[1:]))  # still monotonic after rounding


def test_timestamps_past_an_hour():
    text = to_srt([Word("late", 3723.5, 3724.25)])
    assert "01:02:03,500 --> 01:02:04,500" in text
    assert "01:02:03.500 --> " in to_vtt([Word("late", 3723.5, 3724.25)])


def test_empty_subtitles_are_still_valid_files():
    assert to_srt([]) == ""
    assert to_vtt([]).startswith("WEBVTT\n")


# --- plain text and JSON -----------------------------------------------------------------------


def test_txt_breaks_paragraphs_at_long_pauses():
    words = _words("Hello there. How are you? Fine.", pause_after={"there.": 5.0})
    assert to_txt(words) == "Hello there.\n\nHow are you? Fine.\n"


def test_txt_timestamps_open_each_paragraph():
    words = [Word("one", 0.2, 0.5), Word("two", 0.6, 0.9), Word("three", 3725.0, 3725.5)]
    assert to_txt(words, timestamps=True) == "[00:00:00] one two\n\n[01:02:05] three\n"


def test_txt_of_nothing_is_empty():
    assert to_txt([]) == ""


def test_json_round_trip_keeps_words_times_and_meta():
    words = _words("Bonjour à tous, ça va ?")
    meta = {"model": "kyutai/stt-1b-en_fr-trfs", "file": "talk.wav", "duration_s": 2.5}

    document = json.loads(to_json(words, meta))

    assert document["meta"] == meta
    assert document["text"] == "Bonjour à tous, ça va ?"
    back = [Word(w["text"], w["start"], w["end"]) for w in document["words"]]
    assert back == words  # times in _words() are already rounded to the millisecond


def test_formats_table_renders_every_format():
    words = _words("Hello world.")
    for name, (extension, render) in FORMATS.items():
        assert extension == "." + name
        assert "Hello world." in render(words, {"model": "m"})


# --- incomplete transcripts and damaged times ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_an_incomplete_transcript_says_where_it_stops_and_why(name):
    words = _words("Hello world.")
    stop = Incomplete(5.0, "the file could not be read past 0:05.000")

    text = FORMATS[name].render(words, {"model": "m"}, stop)

    assert "Hello world." in text
    if name == "json":
        assert json.loads(text)["incomplete"] == {"stops_at_s": 5.0, "reason": stop.reason}
    else:
        assert "Incomplete transcript: it stops at 00:00:05 because the file could not be read past 0:05.000" in text
        assert "Incomplete" not in FORMATS[name].render(words, {"model": "m"})


@pytest.mark.parametrize("vtt", [False, True], ids=["srt", "vtt"])
def test_the_notice_of_an_incomplete_transcript_is_its_own_last_cue(vtt):
    words = _words(SPEECH)
    stop = Incomplete(words[-1].end + 2.0, "the transcription was interrupted")
    text = to_vtt(words, stop) if vtt else to_srt(words, stop)

    *spoken, (start, end, notice) = _parse_cues(text, vtt)

    assert [line for _, _, lines in spoken for line in lines] == [line for c in build_cues(words) for line in c.lines]
    assert notice == [stop.notice] and start == pytest.approx(stop.stops_at_s, abs=5e-4) and end > start


def test_non_finite_times_from_a_damaged_journal_are_made_finite_in_every_format():
    words = [Word("one", 0.5, 1.0), Word("two", math.inf, math.inf), Word("three", 2.0, math.nan),
             Word("four", -math.inf, 3.5)]

    document = json.loads(to_json(words, {}))  # json.loads accepts "Infinity"; the check below does not
    times = [(w["start"], w["end"]) for w in document["words"]]
    assert [w["text"] for w in document["words"]] == ["one", "two", "three", "four"]
    assert all(math.isfinite(t) for pair in times for t in pair), times
    assert "Infinity" not in to_json(words, {}) and "NaN" not in to_json(words, {})
    for vtt in (False, True):
        cues = _parse_cues(to_vtt(words) if vtt else to_srt(words), vtt)
        assert " ".join(line for _, _, lines in cues for line in lines) == "one two three four"
    assert to_txt(words, timestamps=True).startswith("[00:00:00] one two three four")


# --- two speakers ---------------------------------------------------------------------------------


def _call() -> list[Word]:
    """Both sides of a call as the journal has them: one stream's words, then the other's."""
    you = [Word(t, s, s + 0.4, "You") for t, s in (("Can", 0.0), ("you", 0.5), ("hear", 1.0), ("me?", 1.5),
                                                    ("Great,", 6.0), ("thanks.", 6.5))]
    others = [Word(t, s, s + 0.4, "Others") for t, s in (("Yes,", 2.5), ("loud", 3.0), ("and", 3.5),
                                                          ("clear", 4.0), ("<here>", 4.5))]
    return you + others


def test_a_cue_never_mixes_two_speakers_and_srt_readers_see_who_speaks():
    import srt

    cues = build_cues(_call())
    assert all(c.speaker in ("You", "Others") for c in cues)
    parsed = list(srt.parse(to_srt(_call())))
    assert [c.content.split(":")[0] for c in parsed] == ["You", "Others", "You"]  # in the order said
    assert parsed[1].content == "Others: Yes, loud and clear \u2039here\u203a"
    assert all(len(line) <= 42 for c in parsed for line in c.content.splitlines())  # the name fits too


def test_webvtt_readers_see_two_voices_and_their_colours():
    import webvtt

    document = webvtt.from_string(to_vtt(_call()))
    assert [c.voice for c in document] == ["You", "Others", "You"]
    assert document.captions[1].text == "Yes, loud and clear &lt;here&gt;"
    assert 'voice="Others"' in document.styles[0].text and 'voice="You"' in document.styles[0].text


def test_text_turns_and_json_say_who_speaks():
    assert to_txt(_call()) == "You: Can you hear me?\n\nOthers: Yes, loud and clear <here>\n\nYou: Great, thanks.\n"
    document = json.loads(to_json(_call(), {}))
    assert document["speakers"] == ["You", "Others"]
    assert [w["speaker"] for w in document["words"]][:5] == ["You"] * 4 + ["Others"]


def test_speaker_names_cannot_break_a_webvtt_file():
    import webvtt

    words = [Word("hi", 0.0, 0.5, 'A&B <"x">'), Word("yo", 2.0, 2.5, "-->")]
    document = webvtt.from_string(to_vtt(words))
    assert [c.voice for c in document] == ['A&amp;B &lt;"x"&gt;', "--&gt;"]
    assert "-->" not in document.styles[0].text


def test_two_speakers_at_once_get_overlapping_cues_not_empty_ones():
    you = [Word("Hello", 0.0, 0.3, "You"), Word("there.", 0.4, 0.7, "You")]
    others = [Word("Good", 0.1, 0.4, "Others"), Word("morning.", 0.5, 0.9, "Others")]
    cues = build_cues(you + others)
    assert [(c.speaker, c.start, c.end) for c in cues] == [("You", 0.0, 1.0), ("Others", 0.1, 1.1)]
    for speaker in ("You", "Others"):  # one speaker's cues still never overlap
        own = [c for c in build_cues(_call() + you + others) if c.speaker == speaker]
        assert all(a.end <= b.start for a, b in zip(own, own[1:]))
