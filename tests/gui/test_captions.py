"""The caption buffer: append-only lines, scrolling, the tentative word, bounded memory (no Qt)."""

from app.gui.captions import CaptionBuffer, CaptionLine


def buffer(width=20, lines=2):
    return CaptionBuffer(len, width, lines)  # one unit per character


def texts(buf):
    return [line.text for line in buf.lines()]


def test_words_wrap_greedily_into_lines():
    buf = buffer(width=11, lines=3)
    buf.append_words(["hello", "there", "general", "kenobi"])
    assert texts(buf) == ["hello there", "general", "kenobi"]


def test_old_lines_scroll_off_the_top():
    buf = buffer(width=5, lines=2)
    buf.append_words(["one", "two", "three"])
    assert texts(buf) == ["two", "three"]


def test_partial_word_follows_the_final_words_on_the_last_line():
    buf = buffer(width=20)
    buf.append_words(["the", "cat"])
    buf.set_partial("sat")
    assert buf.lines() == [CaptionLine("the cat", "sat")]


def test_partial_that_does_not_fit_goes_where_it_will_land():
    buf = buffer(width=7, lines=2)
    buf.append_words(["the", "cat"])
    buf.set_partial("sat")
    assert buf.lines() == [CaptionLine("the cat"), CaptionLine("", "sat")]
    buf.append_words(["sat"])  # final now: same place, full colour
    assert buf.lines() == [CaptionLine("the cat"), CaptionLine("sat")]


def test_partial_alone():
    buf = buffer()
    buf.set_partial("hel")
    assert buf.lines() == [CaptionLine("", "hel")]


def test_a_partial_wider_than_the_box_shows_its_newest_end():
    buf = buffer(width=10)
    buf.set_partial("averyveryverylongword still growing")  # a model gone wrong; real ones say a word or two
    assert buf.lines() == [CaptionLine("", "…l growing")]  # as much of the end as fits, behind "…"
    buf.append_words(["ok"])
    buf.set_partial("averyveryverylongword")  # after final words it goes to a line of its own, and is cut
    assert buf.lines() == [CaptionLine("ok"), CaptionLine("", "…ylongword")]


def test_final_words_replace_the_partial():
    buf = buffer()
    buf.set_partial("wor")
    buf.append_words(["world"])
    assert buf.lines() == [CaptionLine("world")]


def test_clear_empties_everything():
    buf = buffer()
    buf.append_words(["a", "b"])
    buf.set_partial("c")
    buf.clear()
    assert buf.is_empty and buf.lines() == []


def shows_the_newest_words(appended: list[str], lines: list[CaptionLine]) -> bool:
    """Append-only: the final words shown are the last words appended, in order, none rewritten.

    Older words may have scrolled off the top, but only from the top: a model that corrects or drops
    an earlier word shows something that is not a suffix of what it was given.
    """
    shown = " ".join(line.final for line in lines).split()
    return bool(shown) and shown == appended[-len(shown):]


def test_shown_text_is_append_only_across_a_long_stream():
    buf = buffer(width=24, lines=3)
    story = ("It was a bright cold day in April and the clocks were striking thirteen while "
             "Winston Smith his chin nuzzled into his breast slipped quickly through the glass doors").split()
    for i, word in enumerate(story):
        buf.set_partial(word[:2])
        buf.append_words([word])
        current = buf.lines()
        assert shows_the_newest_words(story[: i + 1], current), (i, current)
        assert len(current) <= 3


def test_memory_stays_bounded():
    buf = buffer(width=10, lines=2)
    for _ in range(10_000):
        buf.append_words(["word"])
    assert len(buf._words) <= 2 * 4  # (lines + 1 spare) lines of two words


def test_whitespace_and_empty_words_are_ignored():
    buf = buffer()
    buf.append_words(["  a  ", "", "b\nc"])
    assert texts(buf) == ["a b c"]
