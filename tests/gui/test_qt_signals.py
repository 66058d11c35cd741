"""Emitting stays safe however many times it happens (PySide6 6.12.0 drops a reference per emit)."""

import sys
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.gui.qt_signals import emit

ROOT = Path(__file__).resolve().parents[2]


class Sender(QObject):
    changed = Signal(str)
    forwarded = Signal(str)


def test_many_emits_leave_true_alone(qtbot):
    sender, seen = Sender(), []
    sender.changed.connect(sender.forwarded)  # signal to signal, as SessionController forwards
    sender.forwarded.connect(seen.append)
    before = sys.getrefcount(True)
    for _ in range(5000):  # far more than True's references before Python 3.12
        emit(sender.changed, "x")
    assert abs(sys.getrefcount(True) - before) <= 2
    assert len(seen) == 5000


def test_app_gui_emits_only_through_the_helper():
    for path in (ROOT / "app" / "gui").glob("*.py"):
        if path.name != "qt_signals.py":
            assert ".emit(" not in path.read_text(), f"{path.name}: use app.gui.qt_signals.emit"
