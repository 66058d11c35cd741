"""GUI test set-up: isolated settings and data folder per test, a real journal, fakes at the edges."""

from __future__ import annotations

import uuid

import pytest
from PySide6.QtCore import QCoreApplication, QSettings

from app.gui.exporting import Exporter
from app.gui.main_window import MainWindow
from app.gui.session import SessionController
from app.gui.settings import Settings
from app.journal import Journal
from tests.gui.fakes import FakePipelineFactory


@pytest.fixture(autouse=True)
def isolated_store(tmp_path, monkeypatch, qapp):
    """Each test gets its own INI settings file and data folder: nothing leaks between tests."""
    monkeypatch.setenv("SURTITLE_DATA_DIR", str(tmp_path / "data"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    QCoreApplication.setOrganizationName(f"surtitle-test-{uuid.uuid4().hex[:8]}")
    QCoreApplication.setApplicationName("Surtitle")
    yield


@pytest.fixture
def settings():
    return Settings()


@pytest.fixture
def journal(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3", commit_interval_s=0.0)
    yield journal
    journal.close()


@pytest.fixture
def pipelines(journal):
    return FakePipelineFactory(journal)


class SaveTo:
    """Exporter file chooser that answers with given paths, in order, and records the calls."""

    def __init__(self, *answers: tuple[str, str]):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, parent, caption, suggestion, filters, selected):
        self.calls.append(suggestion)
        return self.answers.pop(0) if self.answers else ("", "")


@pytest.fixture
def make_window(qtbot, settings, journal, pipelines):
    """make_window(**overrides) -> MainWindow with a fake pipeline, a fake mic and a real journal."""

    made = []

    def make(**overrides):
        kwargs = dict(controller=SessionController(pipelines), device_lister=lambda: ["Test mic", "USB headset"],
                      exporter=Exporter(SaveTo(), lambda parent, message: False))
        kwargs.update(overrides)
        window = MainWindow(settings, journal, **kwargs)
        qtbot.addWidget(window)
        qtbot.addWidget(window.overlay)
        made.append(window)
        return window

    yield make
    for window in made:  # a test that fails mid-session must not leave its thread running
        window.controller.shutdown()
