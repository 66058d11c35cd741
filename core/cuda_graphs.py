"""The single-frame step replayed as a CUDA graph: one launch for the whole step instead of hundreds.

A batched step of a streaming model is many small kernels; on a GPU their launch cost dominates,
which is why Kyutai's PyTorch path captures its steps as CUDA graphs (model-spec-kyutai §1.5, §2.2).
A graph replays fixed kernels on fixed memory, so the captured function must have fixed shapes, read
no tensor values on the host, and keep its state in tensors it updates in place:
`FrameStepper.step_masked` is written that way (tests/test_stream_pool.py checks it).

`GraphedStep(fn, device)` wraps such a function fn(frame [B, F], active [B]) -> tokens [B]:
- off CUDA, or opted out (`enabled=False`, or `SURTITLE_NO_CUDA_GRAPH=1`), it calls fn eagerly;
- on CUDA the first `warmup` calls run eagerly on a side stream (lazy set-up such as cuBLAS handles
  must not happen during a capture), the next call captures fn with the static input buffers (a
  capture runs nothing) and replays it, and every later call copies its inputs into those buffers
  and replays. Each call is a real step: none is spent on warming up.

One graph per GraphedStep, i.e. per batch size: the stepper behind it has a fixed batch.
"""

from __future__ import annotations

import logging
import os
from typing import Callable

import torch

log = logging.getLogger(__name__)

StepFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def graphs_wanted(device: torch.device, enabled: bool | None = None) -> bool:
    """CUDA graphs on a CUDA device unless turned off by argument or by SURTITLE_NO_CUDA_GRAPH=1."""
    if enabled is None:
        enabled = os.environ.get("SURTITLE_NO_CUDA_GRAPH", "") in ("", "0")
    return enabled and torch.device(device).type == "cuda"


class GraphedStep:
    def __init__(self, fn: StepFn, device: torch.device | str, *, enabled: bool | None = None, warmup: int = 1):
        self._fn = fn
        self.device = torch.device(device)
        self.uses_graph = graphs_wanted(self.device, enabled)
        self._warmup_left = warmup
        self._graph: torch.cuda.CUDAGraph | None = None
        self._frame: torch.Tensor | None = None  # static inputs and output of the graph
        self._active: torch.Tensor | None = None
        self._out: torch.Tensor | None = None

    def __call__(self, frame: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """frame [B, F] float32, active [B] bool (any device) -> tokens [B] on the model's device.

        With a graph the result is the graph's output buffer: read it before the next call.
        """
        if not self.uses_graph:
            return self._fn(frame.to(self.device, non_blocking=True), active.to(self.device, non_blocking=True))
        self._load(frame, active)
        if self._warmup_left > 0:
            self._warmup_left -= 1
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                out = self._fn(self._frame, self._active)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return out
        if self._graph is None:
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    self._out = self._fn(self._frame, self._active)
            except RuntimeError as exc:  # an op that cannot be captured: slower, but still right
                log.warning("CUDA graph capture failed, stepping without one: %s", str(exc).splitlines()[0])
                self.uses_graph = False
                return self._fn(self._frame, self._active)  # a failed capture ran nothing: this is the step
            self._graph = graph
        self._graph.replay()
        return self._out

    def _load(self, frame: torch.Tensor, active: torch.Tensor) -> None:
        if self._frame is None:
            self._frame = torch.empty(frame.shape, dtype=torch.float32, device=self.device)
            self._active = torch.empty(active.shape, dtype=torch.bool, device=self.device)
        if frame.shape != self._frame.shape or active.shape != self._active.shape:
            raise ValueError(f"a CUDA graph replays fixed shapes: captured frame {tuple(self._frame.shape)} and "
                             f"active {tuple(self._active.shape)}, got {tuple(frame.shape)} and {tuple(active.shape)}")
        self._frame.copy_(frame, non_blocking=True)
        self._active.copy_(active, non_blocking=True)
