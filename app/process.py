"""Is a process still running? Asked of a session's recorder to tell a live session from a crashed one."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """Whether the process that recorded a session still runs (then its session is live, not crashed)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # os.kill(pid, 0) would send CTRL_C_EVENT on Windows
        handle = kernel32.OpenProcess(0x00100000, False, pid)  # SYNCHRONIZE
        if not handle:
            return False
        try:
            return kernel32.WaitForSingleObject(handle, 0) == 0x102  # WAIT_TIMEOUT: still running
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    return True
