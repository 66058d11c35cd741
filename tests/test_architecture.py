"""The house's import rules: the engine knows no GUI, audio device or oracle."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_core_imports_no_qt_no_sounddevice_no_transformers():
    mods = imported_after("import core")
    assert not mods & {"PySide6", "sounddevice", "transformers", "shiboken6"}


def test_core_sources_do_not_mention_forbidden_imports():
    for path in (ROOT / "core").rglob("*.py"):
        text = path.read_text()
        for name in ("PySide6", "sounddevice", "transformers"):
            assert f"import {name}" not in text and f"from {name}" not in text, f"{path} imports {name}"


def test_app_audio_imports_no_qt_no_torch():
    # app/audio runs next to PortAudio's real-time thread and in the terminal: it must stay light
    mods = imported_after("import app.audio.capture, app.audio.ring, app.audio.level")
    assert not mods & {"PySide6", "shiboken6", "torch"}


def test_journal_pipeline_and_cli_import_no_qt():
    # the pipeline is driven by the Qt worker and by `surtitle live`; it knows neither widgets nor torch
    # until a model is loaded
    mods = imported_after("import app.journal, app.pipeline, app.session_audio, app.cli")
    assert not mods & {"PySide6", "shiboken6", "torch"}
