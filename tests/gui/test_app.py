"""`app.gui.app.main`: start-up wiring, in a process of its own (it creates the QApplication)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, sys.argv[1])

    def fake_exec(app):  # look at what main() built instead of running the event loop
        app.processEvents()
        windows = [w for w in app.topLevelWidgets() if w.isVisible()]
        print("ORG", QCoreApplication.organizationName())
        print("WINDOWS", sorted(type(w).__name__ for w in windows))
        print("HOOK", type(sys.excepthook).__name__)
        main = next(w for w in windows if type(w).__name__ == "MainWindow")
        print("JOURNAL", type(main.journal).__name__)
        return 0

    QApplication.exec = fake_exec
    from app.gui.app import main
    sys.exit(main([]))
""")


def test_main_builds_the_window_logging_and_hook(tmp_path):
    env = dict(os.environ, SURTITLE_DATA_DIR=str(tmp_path / "data"), QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "settings")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert lines["ORG"] == "Surtitle"
    assert "MainWindow" in lines["WINDOWS"] and "CaptionOverlay" in lines["WINDOWS"]
    assert lines["HOOK"] == "ExceptionDialog"
    assert lines["JOURNAL"] == "Journal"
    assert (tmp_path / "data" / "surtitle.log").is_file()
    assert (tmp_path / "data" / "journal.sqlite3").is_file()


def test_gui_modules_other_than_the_worker_do_not_import_the_pipeline():
    # The worker is the one module that drives the engine; it imports the pipeline only when a
    # session starts, so opening the window never loads torch.
    code = "import sys, app.gui.main_window; print('torch' in sys.modules, 'app.pipeline' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert out.stdout.split() == ["False", "False"], out.stderr
    for path in (ROOT / "app" / "gui").glob("*.py"):
        if path.name != "worker.py":
            text = path.read_text()
            for statement in ("from app.pipeline", "import app.pipeline", "import torch", "from torch"):
                assert statement not in text, path
