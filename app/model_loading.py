"""Loading the engine, for a command or a live session, reporting progress a window or a terminal can show.

`load_transcriber(EngineOptions, report)` is the one loader: `surtitle transcribe`, `surtitle live`
and the window all go through it.

Five stages reach the reporter as (stage, done, total): "kernel" (0, 0: no measure of progress)
while int4's kernel is built or found in its cache, "download" in bytes while a hub checkpoint is
fetched (through a tqdm class handed to huggingface_hub; nothing is printed), "weights" in tensors
while they are read, "compile" (0, 0) if the step is compiled, and "int4" (ms a frame took, ms it
may take) when "auto" precision measured that int8 cannot keep up on this CPU and loads int4
instead (app.live_precision; the stages above then come again).
torch is imported here, on first use, so the pipeline module and `surtitle --help` stay light.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from app.engine_options import EngineOptions
from app.live_precision import PrecisionChoices
from core.words import Word

if TYPE_CHECKING:
    from core import StreamingTranscriber

LoadReport = Callable[[str, int, int], None]


class Transcriber(Protocol):
    """What the command line and the live pipeline need of `core.StreamingTranscriber`."""

    sample_rate: int
    delay_s: float

    @property
    def pending_text(self) -> str: ...
    def push(self, pcm: np.ndarray) -> list[Word]: ...
    def flush(self) -> list[Word]: ...
    def reset(self) -> None: ...


TranscriberFactory = Callable[[EngineOptions, LoadReport], Transcriber]


def no_report(stage: str, done: int, total: int) -> None:
    """A LoadReport for callers that show no progress."""


def load_transcriber(options: EngineOptions, report: LoadReport = no_report) -> Transcriber:
    """The engine `options` ask for; raises CheckpointError, ConfigError or DeviceError (one line each)."""
    from core.runtime import configure_threads

    threads = configure_threads()  # once per process, before the first step (see core.runtime for the policy)
    if options.quantize != "auto" or not options.live or not _int4_could_serve(options):
        return _load(options, options.quantize, report)
    # "auto" on a CPU: int8 where it keeps up live, int4 where not (app.live_precision)
    choices = PrecisionChoices()
    key = choices.key(options.model, threads)
    known = choices.get(key)
    engine = _load(options, known or "int8", report)
    if known is None:
        frame_s = engine.live_frame_seconds()
        mode = "int8"
        if frame_s > engine.live_budget_s:
            report("int4", round(frame_s * 1e3), round(engine.live_budget_s * 1e3))  # ms a frame, ms allowed
            del engine  # freed before int4 loads: never two models in memory
            engine, mode = _load(options, "int4", report), "int4"
        choices.put(key, mode, frame_s)
    return engine


def _int4_could_serve(options: EngineOptions) -> bool:
    """Whether "auto" has int4 to fall back on: the model runs on the CPU, in int8 by default, and
    int4's kernel can be built here (core.int4)."""
    from core.checkpoint import resolve_device
    from core.int4 import unavailable_reason
    from core.quantize import resolve_mode

    device = resolve_device(options.device)
    return device.type == "cpu" and resolve_mode("auto", device) == "int8" and unavailable_reason() is None


def _load(options: EngineOptions, quantize: str | None, report: LoadReport) -> StreamingTranscriber:
    from core import StreamingTranscriber

    if quantize == "int4":
        from core.int4 import kernel

        report("kernel", 0, 0)  # built on a machine's first int4 session: about a minute
        kernel()
    extra: dict[str, Any] = {"quantize": quantize} if quantize else {}
    return StreamingTranscriber.from_pretrained(
        options.model,
        device=options.device,
        dtype=options.dtype,  # a name such as "bfloat16"; the loader resolves it
        keep_tokens=False,  # a session or a file may run for hours: keep words, not every token
        compile=options.compile,
        on_compile=lambda: report("compile", 0, 0),  # a minute or two the first time: say so
        tqdm_class=hub_progress_class(report),
        progress=lambda done, total: report("weights", done, total),
        **extra,
    )


def could_run_faster(transcriber: object) -> bool:
    """Whether an engine that falls behind live has a faster mode to offer: int8 on a CPU (int4 is)."""
    model = getattr(transcriber, "model", None)
    device = getattr(getattr(model, "device", None), "type", None)
    return device == "cpu" and getattr(model, "quantization", None) == "int8"


class KeptEngine:
    """A transcriber factory that keeps the engine of a session that ended well for the next one.

    Loading the 1b model takes about 10 s on a 2-core CPU (about 20 s with the compiled step), so
    the app's second Start would otherwise wait that long again. At most one engine is held: a
    session takes it (reset, as good as new) and gives it back as it ends; a session with other
    options (model, device, precision, compile) drops it before loading its own, so two models
    are never in memory at once. An engine whose session failed unexpectedly is not taken back.
    """

    def __init__(self, loader: TranscriberFactory = load_transcriber):
        self._loader = loader
        self._lock = threading.Lock()  # sessions run on worker threads, one after another
        self._kept: tuple[EngineOptions, Transcriber] | None = None

    def __call__(self, options: EngineOptions, report: LoadReport) -> Transcriber:
        with self._lock:
            kept, self._kept = self._kept, None
        if kept is not None and kept[0] == options:  # equal options: the same engine would load
            kept[1].reset()
            return kept[1]
        del kept  # the other engine is freed before this one loads
        return self._loader(options, report)

    def give_back(self, engine: Transcriber, options: EngineOptions, healthy: bool) -> None:
        """End of a session: keep `engine` for the next one if it ended well."""
        if healthy:
            with self._lock:
                self._kept = (options, engine)


def hub_progress_class(report: LoadReport) -> type:
    """A tqdm class for huggingface_hub that reports download bytes instead of drawing a bar."""
    from tqdm import tqdm

    class HubProgress(tqdm):
        def __init__(self, *args: Any, **kwargs: Any):
            kwargs.pop("name", None)  # huggingface_hub's own tqdm takes a name; plain tqdm does not
            kwargs["file"] = io.StringIO()  # drawn nowhere
            kwargs["disable"] = False  # tqdm stops counting when disabled
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            # Byte bars only (the other counts files). The hub's network-transfer bar is skipped:
            # its total is a guess that grows; the bar of bytes written has the real total.
            if self.unit == "B" and not str(self.desc).lower().startswith("downloading bytes"):
                report("download", int(self.n), int(self.total or 0))
            return shown

    return HubProgress
