"""Emitting stays safe however many times it happens (PySide6 6.12.0 drops a reference per emit)."""

import ctypes
import sys
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.gui import qt_signals
from app.gui.qt_signals import emit

ROOT = Path(__file__).resolve().parents[2]

_decref = ctypes.pythonapi.Py_DecRef
_decref.argtypes = [ctypes.py_object]
_decref.restype = None


class Sender(QObject):
    changed = Signal(str)
    forwarded = Signal(str)


class LeakingSignal:
    """Stands in for 6.12.0's SignalInstance (no supported PySide6 has the bug): its emit returns True
    without a reference to it, so the caller, dropping the result, takes one of True's references."""

    def __init__(self):
        self.emitted = 0

    def emit(self, *args):
        self.emitted += 1
        _decref(True)
        return True


def test_emit_delivers_like_signal_emit(qtbot):
    sender, seen = Sender(), []
    sender.changed.connect(sender.forwarded)  # signal to signal, as SessionController forwards
    sender.forwarded.connect(seen.append)
    emit(sender.changed, "x")
    assert seen == ["x"]


def test_a_leaking_emit_is_measured_and_its_references_given_back(monkeypatch):
    signal = LeakingSignal()
    monkeypatch.setattr(qt_signals, "LEAK_PER_EMIT", qt_signals._leak_per_emit(signal))
    before = sys.getrefcount(True)
    emits = 2 * before  # unchecked, this many would free True and abort the interpreter (before 3.12)
    for _ in range(emits):
        emit(signal, "x")
        # Checked on every emit so that a broken workaround fails here, a few references short, not in a crash.
        assert sys.getrefcount(True) >= before - 2
    assert signal.emitted >= emits


def test_app_gui_emits_only_through_the_helper():
    for path in (ROOT / "app" / "gui").glob("*.py"):
        if path.name != "qt_signals.py":
            assert ".emit(" not in path.read_text(), f"{path.name}: use app.gui.qt_signals.emit"
