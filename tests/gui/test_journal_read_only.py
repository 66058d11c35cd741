"""A journal the app cannot write (here, on a read-only disk) still opens, for reading: History lists
and exports past sessions, and offers no rename or delete it could not carry out."""

from app.gui.app import open_journal
from app.gui.exporting import Exporter
from app.gui.history import HistoryWindow
from app.journal import Journal
from tests.disks import make_read_only, small_disk
from tests.gui.conftest import SaveTo
from tests.gui.fakes import words


def test_history_reads_a_journal_on_a_read_only_disk(qtbot, tmp_path, monkeypatch):
    with small_disk(tmp_path / "disk") as disk:
        journal = Journal(disk / "journal.sqlite3")
        sid = journal.start_session("kyutai/stt-1b-en_fr-trfs", "mic", title="Standup")
        journal.add_words(sid, words("we", "ship", "friday"))
        journal.end_session(sid)
        journal.close()
        make_read_only(disk)
        monkeypatch.setenv("SURTITLE_DATA_DIR", str(disk))

        journal, problem = open_journal()

        assert journal is not None and not journal.writable
        assert "read-only" in problem and "Past sessions can still be read in History" in problem
        out = tmp_path / "standup.txt"
        window = HistoryWindow(journal, Exporter(SaveTo((str(out), "Plain text (*.txt)"))))
        qtbot.addWidget(window)
        window.sessions.setCurrentRow(0)
        assert "Standup" in window.header.text() and "we ship friday" in window.transcript.plain_text()
        assert not window.rename_button.isEnabled() and not window.delete_button.isEnabled()
        assert "only be read" in window.delete_button.toolTip()
        window.export_button.click()
        assert out.read_text() == "we ship friday\n"
        journal.close()
