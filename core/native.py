"""Surtitle's own CPU kernels (C++, AVX2), built on the user's machine the first time they are wanted.

One extension module holds them all (core/native_bindings.cpp):
- int4_linear (core/int4_kernel.cpp): int4 decoder weights times a step's few rows;
- ring_attention (core/ring_attention.cpp): one query step over a key/value ring stored in int8
  (a scale per slot and head) or bfloat16, for compiled int8 and int4 steps
  (core.attention.widening_attention);
- nearest_centroids (core/codebook_search.cpp): a live frame's codebook search over int8 copies of
  the books, exact all the same, for the same steps (core.codebook_search);
- few_rows_linear (core/row_products.cpp): a live frame's float32 codec products (2 rows), for the
  same steps (core.layers.few_row_linear).

torch's extension loader builds it with the machine's C++ compiler and ninja (about a minute on
2 cores) into torch's extension cache, where later starts find it in about a second. `kernels()`
builds or loads it and says in one line why it cannot; `loaded()` answers without ever building,
for code on a step's path that must not stall for a minute.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from pathlib import Path
from types import ModuleType

import torch

from .errors import ConfigError

SOURCES = [Path(__file__).with_name(name) for name in
           ("native_bindings.cpp", "int4_kernel.cpp", "ring_attention.cpp", "codebook_search.cpp",
            "row_products.cpp")]
HEADER = Path(__file__).with_name("native_simd.h")  # helpers the sources share

log = logging.getLogger(__name__)

_module: ModuleType | None = None
_told = False
_lock = threading.Lock()


def unavailable_reason() -> str | None:
    """Why the kernels cannot be built here, or None if they can (and then ninja is on PATH for the loader)."""
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        return "Surtitle's CPU kernels need an x86 CPU with AVX2"
    if not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        return "Surtitle's CPU kernels are built on first use and need a C++ compiler: install g++"
    try:
        import ninja
    except ImportError:
        return "Surtitle's CPU kernels are built with ninja: pip install ninja"
    # torch's loader runs `ninja` from PATH, which lacks the virtual environment's bin folder when
    # the surtitle script is started by its full path without activating the environment
    if ninja.BIN_DIR not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    return None


def kernels() -> ModuleType:
    """The extension module, built (or found in torch's extension cache) on first use; ConfigError if it cannot be."""
    global _module
    with _lock:  # the loader may be called from the packing thread and the caller at once
        if _module is None:
            reason = unavailable_reason()
            if reason:
                raise ConfigError(reason)
            from torch.utils.cpp_extension import load

            try:  # -fopenmp: without it at::parallel_for, a header template, runs on one thread
                # the loader hashes sources and flags, not headers: the header's hash goes in as a flag
                header = hashlib.sha1(HEADER.read_bytes()).hexdigest()[:12]
                _module = load(name="surtitle_native", sources=[str(s) for s in SOURCES],
                               extra_cflags=["-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp",
                                             f"-DSURTITLE_SIMD_H={header}"], verbose=False)
            except (RuntimeError, OSError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ConfigError(f"could not build Surtitle's CPU kernels ({first})") from exc
    return _module


def loaded() -> ModuleType | None:
    """The extension module if `kernels()` has already built or loaded it in this process, else None."""
    return _module


def try_kernels(purpose: str) -> bool:
    """Build or load the kernels for an optional speed-up; if they cannot be, say why in one line (once)."""
    global _told
    try:
        kernels()
        return True
    except ConfigError as exc:
        if not _told:
            _told = True
            log.warning("%s without Surtitle's CPU kernels: %s", purpose, exc)
        return False
