"""`emit(signal, *args)`: Signal.emit, safe from PySide6 6.12.0's reference bug.

In PySide6 6.12.0, `SignalInstance.emit` returns True without taking a reference to it, so every
emit made from Python drops one reference that True never had. Before Python 3.12 bools are not
immortal: after a few hundred emits (True starts with about 600 references) the interpreter aborts
with "bool_dealloc". A model download reports progress thousands of times, so the app would die
on its first start. (6.11.x is not affected; Qt's own emits from C++ are not affected.)

The leak is measured once, at import; where emits leak, each `emit` gives the reference back. All
signals of `app.gui` are emitted through here. Remove this module once the project requires a
PySide6 release without the bug.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal

_PROBES = 16


class _Probe(QObject):
    fired = Signal()


_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


def _leak_per_emit(signal: Any) -> int:
    """The references to True that one `signal.emit()` drops; the probing's own are given back."""
    if sys.version_info >= (3, 12):  # immortal bools: a missing reference cannot hurt
        return 0
    before = sys.getrefcount(True)
    for _ in range(_PROBES):
        signal.emit()
    leak = max(0, round((before - sys.getrefcount(True)) / _PROBES))
    for _ in range(leak * _PROBES):
        _incref(True)
    return leak


_probe = _Probe()
LEAK_PER_EMIT = _leak_per_emit(_probe.fired)
del _probe


def emit(signal: Any, *args: Any) -> None:
    signal.emit(*args)
    for _ in range(LEAK_PER_EMIT):
        _incref(True)
