"""History on a real journal: list, reopen, search, rename, delete, export (and a failed export)."""

import errno
import json
import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QInputDialog

from app.gui.exporting import CHOICES, Exporter, file_stem
from app.gui.history import HistoryWindow
from tests.gui.conftest import SaveTo
from tests.gui.fakes import words


@pytest.fixture
def filled(journal):
    """Two finished sessions."""
    ids = []
    for title, text in (("Standup", "we ship the overlay on friday"), ("Lecture", "entropy always increases here")):
        sid = journal.start_session("kyutai/stt-1b-en_fr-trfs", "mic", title=title)
        journal.add_words(sid, words(*text.split()))
        journal.end_session(sid)
        ids.append(sid)
    return ids


def make_history(qtbot, journal, chooser=None, ask=None):
    window = HistoryWindow(journal, Exporter(chooser or SaveTo(), ask or (lambda parent, message: False)))
    qtbot.addWidget(window)
    return window


def titles(window):
    return [window.sessions.item(i).text().split("\n")[0] for i in range(window.sessions.count())]


def test_lists_sessions_newest_first_and_opens_one(qtbot, journal, filled):
    window = make_history(qtbot, journal)
    assert titles(window) == ["Lecture", "Standup"]
    window.sessions.setCurrentRow(1)
    assert "Standup" in window.header.text()
    assert window.transcript.plain_text() == "00:00  we ship the overlay on friday"


def test_empty_journal_explains_itself(qtbot, journal):
    window = make_history(qtbot, journal)
    assert window.empty.isVisibleTo(window) and "No sessions yet" in window.empty.text()


def test_search_finds_words_across_sessions(qtbot, journal, filled):
    window = make_history(qtbot, journal)
    window.search.setText("entropy")
    qtbot.waitUntil(lambda: window.sessions.count() == 1 and "Lecture" in window.sessions.item(0).text(),
                    timeout=3000)
    assert "[entropy]" in window.sessions.item(0).text()
    window.sessions.setCurrentRow(0)
    assert "entropy always increases" in window.transcript.plain_text()
    window.search.setText("nothing-like-this")
    qtbot.waitUntil(lambda: window.sessions.count() == 0, timeout=3000)
    assert "Nothing matches" in window.empty.text()


def test_rename_through_the_dialog(qtbot, journal, filled, monkeypatch):
    window = make_history(qtbot, journal)
    window.sessions.setCurrentRow(1)
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("Monday standup", True)))
    window.rename_button.click()
    assert journal.session(filled[0]).title == "Monday standup"
    assert "Monday standup" in titles(window)


def test_delete_asks_first(qtbot, journal, filled, monkeypatch):
    window = make_history(qtbot, journal)
    window.sessions.setCurrentRow(0)
    asked = []
    monkeypatch.setattr("app.gui.history.confirm_delete", lambda parent, title: asked.append(title) or False)
    window.delete_button.click()
    assert asked == ["Lecture"] and len(journal.sessions()) == 2
    monkeypatch.setattr("app.gui.history.confirm_delete", lambda parent, title: True)
    window.delete_button.click()
    assert [s.title for s in journal.sessions()] == ["Standup"]
    assert titles(window) == ["Standup"]


def test_the_live_session_cannot_be_deleted(qtbot, journal, filled):
    window = make_history(qtbot, journal)
    window.set_live_session(filled[1])
    window.sessions.setCurrentRow(0)
    assert not window.delete_button.isEnabled()


@pytest.mark.parametrize("choice", CHOICES, ids=lambda c: c.label.split(" (")[0])
def test_export_round_trip_in_every_format(qtbot, journal, filled, tmp_path, choice):
    target = tmp_path / f"out{choice.extension}"
    window = make_history(qtbot, journal, SaveTo((str(target), choice.label)))
    window.sessions.setCurrentRow(1)
    window.export_button.click()
    text = target.read_text(encoding="utf-8")
    if choice.extension == ".json":
        document = json.loads(text)
        assert [w["text"] for w in document["words"]] == "we ship the overlay on friday".split()
        assert document["meta"]["title"] == "Standup"
    else:
        assert "we ship the overlay" in text
    if "time stamps" in choice.label:
        assert text.startswith("[00:00:00] ")


def test_unwritable_export_says_why_and_offers_another_place(qtbot, journal, filled, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_open = os.open

    def refusing_open(path, *args, **kwargs):
        # What the OS answers for a folder we may not write in. Not chmod: CI runs as root, who may.
        if Path(path).parent == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    good = tmp_path / "ok.txt"
    messages = []
    chooser = SaveTo((str(locked / "x.txt"), CHOICES[0].label), (str(good), CHOICES[0].label))
    window = make_history(qtbot, journal, chooser, lambda parent, message: messages.append(message) or True)
    window.sessions.setCurrentRow(0)
    window.export_button.click()
    assert messages == [f"Surtitle is not allowed to write {locked / 'x.txt'}; choose another folder."]
    assert good.read_text().startswith("entropy")
    assert journal.words(filled[1])  # nothing lost


def test_export_into_a_missing_folder_is_one_clear_sentence(qtbot, journal, filled, tmp_path):
    messages = []
    chooser = SaveTo((str(tmp_path / "no" / "such" / "x.srt"), CHOICES[2].label))
    window = make_history(qtbot, journal, chooser, lambda parent, message: messages.append(message) or False)
    window.sessions.setCurrentRow(0)
    window.export_button.click()
    assert messages == [f"The folder for {tmp_path / 'no' / 'such' / 'x.srt'} does not exist; choose another folder."]
    assert not list(tmp_path.rglob("*.srt"))


def test_export_under_a_file_is_refused_in_one_line(qtbot, journal, filled, tmp_path):
    (tmp_path / "plain").write_text("")
    messages = []
    chooser = SaveTo((str(tmp_path / "plain" / "x.txt"), CHOICES[0].label))
    window = make_history(qtbot, journal, chooser, lambda parent, message: messages.append(message) or False)
    window.sessions.setCurrentRow(0)
    window.export_button.click()
    assert messages == [f"Could not write {tmp_path / 'plain' / 'x.txt'}: Not a directory."]


def test_file_stem_is_safe():
    assert file_stem('Q3: "budget/plan" <draft>?') == "Q3 budget plan draft"
    assert file_stem("...") == "transcript"
