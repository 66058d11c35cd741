"""Word segmentation and timing from a synthetic token stream (Kyutai's rule)."""

from core import words as words_module
from core.words import MAX_OPEN_PIECES, Word, WordSegmenter

# a toy piece table: 4 = "▁hel", 5 = "lo", 6 = "▁world", 7 = "▁big", 8 = "!"
PIECES = {4: "\u2581hel", 5: "lo", 6: "\u2581world", 7: "\u2581big", 8: "!"}


class ToyPieces:
    def is_text(self, token_id):
        return token_id in PIECES

    def is_word_start(self, token_id):
        return PIECES.get(token_id, "").startswith("\u2581")

    def decode(self, ids):
        return "".join(PIECES[i] for i in ids).replace("\u2581", " ").strip()


def run(tokens, offset_s=0.5):
    seg = WordSegmenter(ToyPieces(), frame_rate=12.5, offset_s=offset_s)
    words = []
    for index, tok in enumerate(tokens, start=1):
        words += seg.feed(index, tok)
    return words + seg.flush(len(tokens) + 1), seg


def t(index, offset_s=0.5):
    return max(0.0, index * 0.08 - offset_s)


def test_marker_opens_and_padding_closes_a_word():
    #         1  2  3  4  5  6  7  8  9  10 11 12
    tokens = [3, 3, 3, 3, 3, 3, 3, 3, 0, 4, 5, 3]
    words, _ = run(tokens)
    assert words == [Word("hello", t(9), t(12))]


def test_next_marker_closes_the_previous_word():
    tokens = [3] * 8 + [0, 6, 0, 7, 3]
    words, _ = run(tokens)
    assert words == [Word("world", t(9), t(11)), Word("big", t(11), t(13))]


def test_several_words_in_one_segment_share_it_by_token_count():
    tokens = [3] * 10 + [0, 4, 5, 6, 8, 3, 3, 3]  # marker at 11, pieces 12..15, closed at 16
    words, _ = run(tokens)
    assert [w.text for w in words] == ["hello", "world!"]
    assert words[0] == Word("hello", t(11), t(13))
    assert words[1] == Word("world!", t(13), t(16))


def test_words_become_final_only_when_closed_and_pending_text_shows_the_rest():
    seg = WordSegmenter(ToyPieces(), frame_rate=12.5, offset_s=0.0)
    assert seg.feed(1, 0) == []
    assert seg.feed(2, 4) == []
    assert seg.feed(3, 5) == []
    assert seg.pending_text == "hello"
    assert seg.feed(4, 3) == [Word("hello", 0.08, 0.32)]
    assert seg.pending_text == ""


def test_flush_closes_the_open_word_and_times_never_go_negative():
    words, _ = run([0, 7], offset_s=2.0)
    assert words == [Word("big", 0.0, 0.0)]


def test_no_word_closed_after_the_audio_ends_runs_past_it():
    # the last words close on tokens of the silence a stream is padded with at its end
    seg = WordSegmenter(ToyPieces(), frame_rate=12.5, offset_s=0.0)
    words = []
    for index, tok in enumerate([3, 3, 0, 4, 5, 6], start=1):
        words += seg.feed(index, tok)
    seg.end_audio(0.44)
    words += seg.feed(7, 3) + seg.feed(8, 3)  # padding closes "hello world" at 0.56: past the audio
    words += seg.feed(9, 0) + seg.feed(10, 7) + seg.flush(20)  # unclamped, "big" would end at 1.6 s
    assert words == [Word("hello", t(3, 0.0), t(5, 0.0)), Word("world", t(5, 0.0), 0.44),
                     Word("big", 0.44, 0.44)]


def test_specials_and_unknown_ids_are_not_text():
    tokens = [3, 0, 1, 6, 2, 3, 99999]
    words, _ = run(tokens, offset_s=0.0)
    assert [w.text for w in words] == ["world"]


def test_piece_without_marker_opens_its_own_segment():
    tokens = [3, 3, 6, 3]
    words, _ = run(tokens, offset_s=0.0)
    assert words == [Word("world", t(2, 0.0), t(4, 0.0))]


def test_a_segment_no_padding_ends_gives_its_words_as_it_goes(monkeypatch):
    # a model that never pads again: words must still become final (bounded memory, journaled)
    tokens = [3] * 4 + [0] + [7, 8, 6] * 200 + [3]  # "big! world" repeated, one closing pad at the end
    seg = WordSegmenter(ToyPieces(), frame_rate=12.5, offset_s=0.5)
    during = []
    for index, tok in enumerate(tokens[:-1], start=1):
        during += seg.feed(index, tok)
        assert len(seg._pieces) < MAX_OPEN_PIECES
    words = during + seg.feed(len(tokens), tokens[-1])
    assert len(during) > 300  # most became final before the stream padded
    monkeypatch.setattr(words_module, "MAX_OPEN_PIECES", 10**9)
    unbounded, _ = run(tokens)
    assert words == unbounded  # the same words and times as one long segment: none split, lost or moved


def test_one_endless_word_is_cut_at_the_bound():
    seg = WordSegmenter(ToyPieces(), frame_rate=12.5, offset_s=0.0)
    words = []
    for index in range(1, 2 * MAX_OPEN_PIECES + 1):
        words += seg.feed(index, 5)  # "lo" forever, never a word start
    assert len(words) == 2 and words[0].text == "lo" * MAX_OPEN_PIECES
