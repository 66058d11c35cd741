"""Start the desktop app: `surtitle` with no subcommand lands here.

Set-up that must happen once, before any window: a log file in the user's data folder, an
exception hook that logs and shows one dialog at a time, the application's names (QSettings and
the journal live under them), the journal, then the main window.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from app.gui.messages import describe
from app.paths import APP_NAME, user_data_dir

log = logging.getLogger("app.gui")

LOG_FILE = "surtitle.log"
RESOURCES = Path(__file__).resolve().parents[2] / "resources"


def setup_logging(folder: Path) -> Path | None:
    """Log to a rotating file (the details behind every one-line message); None if unwritable."""
    path = folder / LOG_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        logging.basicConfig(level=logging.INFO)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


class ExceptionDialog:
    """sys.excepthook: log the traceback, show one sentence, never a pile of dialogs."""

    def __init__(self, log_path: Path | None):
        self._log_path = log_path
        self._open = False

    def __call__(self, kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        log.error("unhandled exception:\n%s", "".join(traceback.format_exception(kind, exc, tb)))
        if self._open or QApplication.instance() is None:
            return
        self._open = True
        where = f" Details are in {self._log_path}." if self._log_path else ""
        try:
            QMessageBox.critical(None, APP_NAME, f"{describe(exc).text}{where}")
        finally:
            self._open = False


def open_journal():
    """The session journal and "", or what is wrong with it: opened for reading only when it cannot
    be written (History still shows past sessions), None when it cannot even be read."""
    from app.journal import Access, Journal

    try:
        return Journal(), ""
    except Exception as exc:  # the app still captions; it just cannot keep sessions
        log.exception("could not open the journal for writing")
        problem = describe(exc).text.rstrip(".") + "."  # follows "Sessions will not be saved: "
    try:
        return Journal(access=Access.READ), f"{problem} Past sessions can still be read in History."
    except Exception:
        log.exception("could not open the journal for reading")
        return None, problem


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else [sys.argv[0], *argv])
    log_path = setup_logging(user_data_dir())
    app = QApplication(argv)
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("surtitle")
    icon = QIcon(str(RESOURCES / "surtitle.svg"))
    app.setWindowIcon(icon)
    style = RESOURCES / "style.qss"
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))
    sys.excepthook = ExceptionDialog(log_path)

    from app.gui.main_window import MainWindow
    from app.gui.session import SessionController
    from app.gui.settings import Settings
    from app.gui.worker import pipeline_factory_for
    from app.model_loading import KeptEngine

    journal, journal_problem = open_journal()
    settings = Settings()
    engines = KeptEngine()  # the model stays loaded between sessions: Start is immediate the second time
    # a journal open for reading only serves History; each session then opens the journal anew, so
    # one started after the disk has room again (or the lock is gone) is saved
    sessions_journal = journal if journal is not None and journal.writable else None
    window = MainWindow(settings, journal, icon=icon,
                        controller=SessionController(pipeline_factory_for(sessions_journal, engines)))
    app.aboutToQuit.connect(window.controller.shutdown)  # a last resort: the window normally waits
    window.show()
    if journal_problem:
        QTimer.singleShot(0, lambda: window.errors.show(f"Sessions will not be saved: {journal_problem}"))
    log.info("Surtitle started; log file %s", log_path)
    code = app.exec()
    if journal is not None:
        journal.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
