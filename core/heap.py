"""Hand freed heap memory back to the operating system (glibc only; a no-op elsewhere).

Loading a checkpoint makes many short-lived tensors of a few MB (a weight read in bfloat16, its
float32 copy, its int8 rows) between long-lived ones (the packed weights that stay). glibc serves
blocks of that size from its heap and keeps what is freed there, so the holes between the
long-lived blocks pile up: the 1b model loaded in int8 held 570 MB of RSS beyond its weights,
350 MB of it freed pages. `malloc_trim` returns such whole free pages to the OS.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys


def _load_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim  # glibc's; musl and others lack it
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _load_trim()


def release_freed_memory() -> bool:
    """Give the heap's free pages back to the OS; True if this platform can."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class ReleaseEvery:
    """Calls release_freed_memory() each time `nbytes` more bytes have gone through `add()`:
    often enough that holes never pile up, rarely enough to cost little (each call walks the heap)."""

    def __init__(self, nbytes: int):
        self.nbytes, self._since = nbytes, 0

    def add(self, nbytes: int) -> None:
        self._since += nbytes
        if self._since >= self.nbytes:
            self._since = 0
            release_freed_memory()
