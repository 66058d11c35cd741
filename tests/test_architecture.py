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
