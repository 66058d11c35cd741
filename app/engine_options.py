"""The engine a command or a live session loads: one options type for `surtitle transcribe`,
`surtitle live`, the window and the loader (app.model_loading) that they all go through.

Frozen, so two sessions asking for equal options can share a loaded engine (KeptEngine compares
them whole). No torch here: the command line's `--help` and the window import it at start.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import DEFAULT_MODEL


@dataclass(frozen=True)
class EngineOptions:
    model: str = DEFAULT_MODEL  # hub repo id or local checkpoint folder
    device: str | None = None  # "cpu", "cuda", "cuda:N", "mps"; None: the GPU if there is one, else the CPU
    dtype: str | None = None  # decoder precision ("float32", "bfloat16"...); None: the engine's choice for the device
    # CPU decoder weights: "int8", "int4", None (full precision); "auto": full precision on a GPU,
    # int8 on a CPU, and for a live engine int4 where int8 cannot keep up (measured once, remembered)
    quantize: str | None = "auto"
    # compile the CPU step (core.compiled_step; needs a C++ compiler); "auto": only where the uncompiled
    # step would not keep up live (the engine times a few frames as it loads)
    compile: bool | str = False
    live: bool = False  # the engine serves a live session: "auto" precision is chosen for live speed
