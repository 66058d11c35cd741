"""Read tensors from a .safetensors file with plain reads instead of a memory map.

The format is an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
shape and byte range, then the raw bytes. Reading each tensor into memory it owns (rather than
mapping the file) means the loading process holds the weights it keeps and none of the file's
pages, so peak memory at load stays close to the model's size.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import torch

from .errors import CheckpointError

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


class SafetensorsFile:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                head = fh.read(8)
                if len(head) < 8:
                    self._corrupt("shorter than a header")
                (n,) = struct.unpack("<Q", head)
                if n > size - 8 or n > 100 * 2**20:
                    self._corrupt("header length is larger than the file")
                header = json.loads(fh.read(n))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            self._corrupt(str(exc))
        if not isinstance(header, dict):
            self._corrupt("header is not a JSON object")
        header.pop("__metadata__", None)
        self._data_start = 8 + n
        self.entries: dict[str, tuple[torch.dtype, tuple[int, ...], int, int]] = {}
        for name, info in header.items():
            try:
                dtype = _DTYPES[info["dtype"]]
                shape = tuple(int(d) for d in info["shape"])
                begin, end = (int(x) for x in info["data_offsets"])
            except (KeyError, TypeError, ValueError):
                self._corrupt(f"entry {name!r} is malformed")
            itemsize = torch.empty(0, dtype=dtype).element_size()
            if end - begin != math.prod(shape) * itemsize:
                self._corrupt(f"tensor {name} has {end - begin} bytes for shape {list(shape)}")
            if self._data_start + end > size:
                self._corrupt(f"tensor {name} ends past the end of the file")
            self.entries[name] = (dtype, shape, begin, end)
        self._handle = None  # opened on the first read, kept for the following ones

    def _corrupt(self, why: str):
        raise CheckpointError(f"{self.path} is truncated or corrupt ({why}); delete it and download it again")

    def keys(self) -> list[str]:
        return list(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name][1]

    def read(self, name: str) -> torch.Tensor:
        dtype, shape, begin, end = self.entries[name]
        out = torch.empty(shape, dtype=dtype)
        view = memoryview(out.view(-1).view(torch.uint8).numpy()) if out.numel() else memoryview(b"")
        try:
            if self._handle is None:
                self._handle = open(self.path, "rb")
            self._handle.seek(self._data_start + begin)
            if self._handle.readinto(view) != end - begin:
                self._corrupt(f"tensor {name} is cut short")
        except OSError as exc:
            self._corrupt(str(exc))
        return out

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
