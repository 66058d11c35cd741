"""Giving freed heap pages back to the OS while a checkpoint loads."""

from __future__ import annotations

import sys

import core.heap as heap


def test_release_works_on_linux():
    assert heap.release_freed_memory() is sys.platform.startswith("linux")


def test_release_every_calls_once_per_threshold(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "release_freed_memory", lambda: calls.append(1))
    every = heap.ReleaseEvery(100)
    for nbytes in (40, 40, 19):  # 99 bytes: not yet
        every.add(nbytes)
    assert calls == []
    every.add(1)  # 100
    assert len(calls) == 1
    every.add(250)  # one call however far past the threshold, and the count starts again
    every.add(99)
    assert len(calls) == 2
