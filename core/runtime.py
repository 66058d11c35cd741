"""Process-wide compute settings chosen once, at start-up."""

from __future__ import annotations

import os

import torch

# Large tensors (weights, the key/value ring) in transparent huge pages. A step streams them from
# memory, and with 4 KB pages a virtual machine pays a nested page walk every 4 KB (the 1b's 64
# int4 products of a step, 2 AMD cores, same machine: 36 -> 29-31 ms; a 196 MB ring read 10 -> 8
# ms). torch reads this as it allocates; a value the user has set is kept.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def configure_threads(threads: int | None = None) -> int:
    """Set torch's CPU threads and return the number used.

    A decoder step streams every weight from memory once; on the 2-core machine we measure on, two
    threads draw about twice the bandwidth of one (int8 1b step: 52 ms with 2, ~90 ms with 1), so
    the default is every core. `SURTITLE_THREADS` (or the argument) overrides it, e.g. to leave a
    core free for other work. Tiny models are the exception: their ops are too small to split,
    which is why the test suite runs single-threaded.
    """
    if threads is None:
        env = os.environ.get("SURTITLE_THREADS")
        threads = int(env) if env else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


def _cpu_has_native_bfloat16() -> bool:
    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except AttributeError:  # an older or non-x86 build: stay with float32
        return False


_NATIVE_BFLOAT16 = _cpu_has_native_bfloat16()  # asked once: torch.compile cannot trace the query itself


def native_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX); elsewhere it is emulated and slow."""
    return _NATIVE_BFLOAT16
