"""What a WAV file's header says it holds, read from the header itself.

libsndfile quietly trims a WAV whose data chunk claims more bytes than the file has (a recording cut
off by a crash, a partial download) to what is there, so the header's promise must be read here to
tell the user that the file is shorter than it says.
"""

from __future__ import annotations

import os
import struct

_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # written by recorders that never came back to fill the size in


def wav_promised_seconds(path: str | os.PathLike) -> float | None:
    """Seconds of audio the header of a WAV (RIFF, RIFX, RF64 or BW64) promises; None if `path` is
    not such a file or its header leaves the length open."""
    try:
        with open(path, "rb") as f:
            return _promised_seconds(f)
    except (OSError, struct.error):
        return None


def _promised_seconds(f) -> float | None:
    riff, _, wave = struct.unpack("<4sI4s", f.read(12))
    if wave != b"WAVE" or riff not in (b"RIFF", b"RIFX", b"RF64", b"BW64"):
        return None
    endian = ">" if riff == b"RIFX" else "<"
    rate = block_align = long_data_size = None
    while True:
        header = f.read(8)
        if len(header) < 8:
            return None  # no data chunk at all
        chunk, size = struct.unpack(f"{endian}4sI", header)
        if chunk == b"ds64":  # RF64: the 64-bit sizes the 32-bit fields cannot hold
            long_data_size = struct.unpack("<QQ", f.read(16))[1]
            f.seek(size - 16 + (size & 1), os.SEEK_CUR)
        elif chunk == b"fmt ":
            fmt = f.read(size)
            _, _, rate, _, block_align = struct.unpack(f"{endian}HHIIH", fmt[:14])
            f.seek(size & 1, os.SEEK_CUR)
        elif chunk == b"data":
            if size == 0xFFFFFFFF and long_data_size is not None:
                size = long_data_size
            elif size in _UNKNOWN_SIZES:
                return None
            if not rate or not block_align:
                return None
            return size // block_align / rate
        else:
            f.seek(size + (size & 1), os.SEEK_CUR)
