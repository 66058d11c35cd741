"""What every `surtitle` command shares: engine options, one-line errors, Ctrl-C, clock times."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from app.engine_options import EngineOptions
from core.config import DEFAULT_MODEL  # torch-free: `--help` stays fast


class UsageError(Exception):
    """Arguments that parse but do not make sense together (exit code 2, like argparse)."""


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Engine options shared by every command that loads a model."""
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, metavar="ID_OR_DIR",
        help=f"Hugging Face repo id or local checkpoint folder (default: {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--device", default="auto", type=device_name, help="auto, cpu, cuda, cuda:N or mps (default: auto)"
    )
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
        help="weight and compute precision (default: chosen by the engine for the device)",
    )
    parser.add_argument(
        "--quantize", default="auto", choices=["auto", "none", "int8", "int4"],
        help="auto (default): int8 decoder weights on a CPU, and for a live session int4 where int8 cannot "
             "keep up (measured the first time, remembered for the machine); full precision on a GPU. int4: half int8's bytes, faster still for one stream on a CPU "
             "whose memory is slow, but less precise; it builds its kernel on first use (a minute; "
             "needs g++ and an AVX2 CPU). none: full precision everywhere",
    )
    parser.add_argument(
        "--compile", action=argparse.BooleanOptionalAction, default=None,
        help="compile the CPU step with torch.compile: 12-40%% faster per frame, but the first start "
             "takes a minute or two (later ones reuse a cache) and a C++ compiler (g++) must be installed; "
             "without one it runs uncompiled. `surtitle live` compiles by default where the uncompiled "
             "step would not keep up (it times a few frames); files are compiled only when asked",
    )


def engine_options(args: argparse.Namespace, live: bool = False) -> EngineOptions:
    """The engine options given on the command line. A live engine compiles where it would fall
    behind unless --compile or --no-compile says; files are compiled only when asked."""
    default_compile: bool | str = "auto" if live else False
    return EngineOptions(
        model=args.model,
        device=None if args.device == "auto" else args.device,
        dtype=None if args.dtype == "auto" else args.dtype,
        quantize=None if args.quantize == "none" else args.quantize,
        compile=default_compile if args.compile is None else args.compile,
        live=live,
    )


def device_name(text: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, cuda, cuda:N or mps")
    return text


def error(message: str, exc: BaseException | None = None) -> None:
    """`surtitle: error: <one line>` on stderr; the traceback first when asked for (--verbose)."""
    if exc is not None:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"surtitle: error: {' '.join(message.split())}", file=sys.stderr, flush=True)


def printable(text: str) -> str:
    """Text as one terminal line: line breaks and tabs become spaces, and other control characters
    (an escape sequence in a title or a file name could clear the screen or retitle the terminal)
    are shown as escapes instead of being obeyed."""
    return "".join(c if c.isprintable() else " " if c in "\n\r\t\v\f" else c.encode("unicode_escape").decode()
                   for c in text)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def format_clock(seconds: float) -> str:
    """1:02:03 or 2:03: a duration as people read it."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@contextmanager
def stop_on_signals(stop: threading.Event, armed: Callable[[], bool] = lambda: True,
                    on_stop: Callable[[int], None] = lambda signum: None) -> Iterator[None]:
    """Ctrl-C and SIGTERM set `stop`, so the work ends cleanly and keeps what it has done; a second
    Ctrl-C interrupts at once (KeyboardInterrupt). Until `armed()` (while a model loads, say, with
    nothing to keep yet) Ctrl-C interrupts at once too. `on_stop(signum)` runs as `stop` is set, in
    the signal handler: it must not write through sys.stderr, which may be mid-write (see `notify`)."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def handler(signum, frame):
        if not armed():
            raise KeyboardInterrupt
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the second Ctrl-C does not wait
        on_stop(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def format_clock_ms(seconds: float) -> str:
    """2:03.250 or 1:02:03.250: a place in an audio file, to the millisecond."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    clock = f"{minutes}:{ms / 1000:06.3f}"
    return f"{hours}:{minutes:02d}:{ms / 1000:06.3f}" if hours else clock


def notify(line: str) -> None:
    """`surtitle: <line>` on stderr from a signal handler: straight to the descriptor, since the
    interrupted code may be inside a write to sys.stderr (a progress bar), on a line of its own."""
    with contextlib.suppress(OSError, ValueError):  # stderr closed: nobody to tell
        os.write(2, f"{chr(10) if sys.stderr.isatty() else ''}surtitle: {line}\n".encode())
