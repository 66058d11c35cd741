"""The CPU step compiled with torch.compile: fewer, fused kernels instead of hundreds of small ones.

On a CPU the eager step pays for every small op twice: its own dispatch, and a cold start, since
each weight matrix streamed through the caches just before evicted the code and data the next ops
need (an rms_norm takes 9 µs alone and 46 µs right after a 23 MB int8 matmul, on the 2-core test
machine). Inductor fuses the norms, rotations, cache writes, activations and the codec's small
convs into a few C++ kernels; the int8 and int4 products stay their kernels', as the opaque op below,
and attention over the int8 ring is Surtitle's (core.attention.ring_attention_int8), as is a live
frame's codebook search (core.codebook_search). Measured on
the stt-1b shape, int8, 2 cores: a live frame went from 70 to 62 ms, a frame of a file from 54
to 51 ms (benchmarks/bench.py --compile).

It needs a C++ compiler (g++ or clang) at run time. FrameStepper compiles both of its graphs when
it is built (a live session must not lose its first minute to compiling): on 2 cores that is about
65 s the first time and 8-25 s on later starts, which reuse inductor's on-disk cache. If compiling
fails, one line is logged and the step runs eagerly, so compiling never breaks transcription.
Outputs are not bit-identical to eager: fused kernels round differently, which int8 mode then
amplifies; measured against float32, compiled int8 drifts as far as eager int8 does.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import weakref
from typing import Any, Callable

import torch

log = logging.getLogger(__name__)

_QUANTIZED_LINEARS: "weakref.WeakValueDictionary[int, Any]" = weakref.WeakValueDictionary()
_numbers = itertools.count()
_told_no_compiler = False


def register_quantized_linear(module: Any) -> int:
    """A number by which the traced op below finds `module` (held weakly: models can still be freed)."""
    number = next(_numbers)
    _QUANTIZED_LINEARS[number] = module
    return number


@torch.library.custom_op("surtitle::quantized_linear", mutates_args=())
def quantized_linear(x: torch.Tensor, number: int, out_features: int) -> torch.Tensor:
    """x [M, in] float32 -> [M, out]: Int8Linear or Int4Linear number `number`'s product, opaque to the compiler."""
    return _QUANTIZED_LINEARS[number].product(x)


@quantized_linear.register_fake
def _(x: torch.Tensor, number: int, out_features: int) -> torch.Tensor:
    return x.new_empty(x.shape[0], out_features)


def compiler_found() -> bool:
    """Whether inductor will find the C++ compiler it needs on this machine."""
    import torch._inductor.config as inductor

    names = [c for c in inductor.cpp.cxx if c] or ["g++"]
    return any(shutil.which(c) for c in names)


class CompiledStep:
    """fn compiled on its first call; if that fails (an unsupported op, a broken toolchain), fn runs eagerly.

    A failed compile raises before the step runs anything, so falling back there loses no state.
    Without a C++ compiler it does not try at all.
    """

    def __init__(self, fn: Callable[..., torch.Tensor], name: str):
        # inductor caches in /tmp by default, which a reboot empties: keep it with the user's caches
        cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(cache_home, "surtitle", "torchinductor"))
        self._eager = fn
        self.name = name
        # dynamic=False: every call has the same shapes (FrameStepper feeds fixed buffers)
        self._fn = torch.compile(fn, dynamic=False)
        self.compiled = True
        if not compiler_found():  # say so now, rather than after tracing the whole step for nothing
            self.compiled = False
            global _told_no_compiler
            if not _told_no_compiler:  # one line per process, however many steps wanted compiling
                _told_no_compiler = True
                log.warning("cannot compile the step, running it uncompiled: no C++ compiler found (install g++)")

    def __call__(self, *args) -> torch.Tensor:
        if not self.compiled:
            return self._eager(*args)
        try:
            return self._fn(*args)
        except Exception as exc:  # noqa: BLE001 - any compile failure: the eager step still works
            if not _is_compile_error(exc):
                raise
            self._give_up(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            return self._eager(*args)

    def _give_up(self, why: str) -> None:
        log.warning("could not compile the %s step, running it uncompiled: %s", self.name, why)
        self.compiled = False


def _is_compile_error(exc: Exception) -> bool:
    from torch._dynamo.exc import BackendCompilerFailed, TorchRuntimeError, Unsupported

    return isinstance(exc, (BackendCompilerFailed, TorchRuntimeError, Unsupported)) or \
        type(exc).__module__.startswith("torch._inductor")
