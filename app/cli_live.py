"""`surtitle live`: the live pipeline without a window, captions in the terminal.

The same LivePipeline the desktop app drives (design note 2): final words are printed as they
come and journaled; Ctrl-C or SIGTERM stops cleanly (the engine is flushed, the last words kept,
the session ended). Sessions a crash left open are recovered, and said so, before recording.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable

from app.audio.capture import list_input_devices
from app.cli_common import UsageError, add_engine_options, engine_options, error, format_clock, stop_on_signals
from app.journal import Journal
from app.model_loading import could_run_faster, load_transcriber
from app.pipeline import LivePipeline, default_capture
from app.audio.source import Source
from app.pipeline_types import PipelineInfo, PipelineListener, PipelineOptions
from app.recovery import recover_unfinished
from app.terminal_captions import TerminalCaptions

make_capture = default_capture  # tests put a fake microphone here


def add_live(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "live", parents=[common], help="live captions from the microphone or what the computer plays, in the terminal",
        description="Caption the microphone (or, with --source system, what the computer plays) live in the "
        "terminal; every session is saved in the journal (see `surtitle sessions` and `surtitle export`).",
    )
    add_engine_options(p)
    p.add_argument("--source", choices=[s.value for s in Source], default=Source.MICROPHONE.value,
                   help="what to caption: mic (an input, see --input), system (what the computer plays: the "
                   "other side of a call, a video; the default output, followed when it changes) or both (the two "
                   "sides of a call, labelled You and Others, in one batched engine) "
                   "(default: %(default)s; `surtitle devices` lists inputs and outputs)")
    p.add_argument("--input", metavar="DEVICE", help="input device name (or part of it) or index (default: the "
                   "system's default input; see --list-inputs)")
    p.add_argument("--list-inputs", action="store_true", help="list the input devices and exit")
    p.add_argument("--no-audio", action="store_true", help="do not save the session audio")
    p.add_argument("--seconds", type=_positive, metavar="N", help="stop after N seconds of recording")
    p.add_argument("--title", help="session title (default: the date and time)")
    p.add_argument("--max-lag", type=_positive, default=PipelineOptions.max_lag_s, metavar="S",
                   help="when captions fall more than S seconds behind, skip to live and mark a gap "
                   "(default: %(default)s)")
    p.set_defaults(run=run_live)


def run_live(args: argparse.Namespace, transcriber_factory) -> int:
    if args.list_inputs:
        return _list_inputs()
    journal = Journal()
    for info in recover_unfinished(journal):
        print(f"surtitle: recovered session {info.id} ({info.title!r}, {info.word_count} words, "
              f"{format_clock(info.duration_s)}), which was interrupted; "
              f"`surtitle export {info.id}` writes its transcript", file=sys.stderr)
    source = Source(args.source)
    if source is Source.SYSTEM and args.input is not None:  # with both, --input picks the microphone
        raise UsageError("--input picks a microphone; --source system captures the default output (change it "
                         "in the system's sound settings, or leave out --input)")
    options = PipelineOptions(engine_options(args, live=True), source=source, input_device=args.input,
                              save_audio=not args.no_audio, max_lag_s=args.max_lag, title=args.title)
    stop = threading.Event()
    captions = TerminalCaptions(sys.stdout)
    listener = _TerminalListener(captions, stop, args.seconds)
    pipeline = LivePipeline(options, listener, capture_factory=make_capture, journal=journal,
                            transcriber_factory=transcriber_factory or load_transcriber)
    listener.engine = lambda: pipeline.transcriber
    with stop_on_signals(stop, armed=lambda: pipeline.transcriber is not None):
        session_id = pipeline.run(stop)
    listener.cancel_timer()
    captions.finish()
    if session_id is not None:
        info = journal.session(session_id)
        audio = f"; audio in {str(info.audio_path)!r}" if info.audio_path else ""
        print(f"surtitle: session {session_id} saved in {str(journal.path)!r} ({info.word_count} words, "
              f"{format_clock(info.duration_s)}){audio}; `surtitle export {session_id} --format srt` "
              "writes subtitles", file=sys.stderr)
    journal.close()
    return 1 if listener.failed or session_id is None else 0


class _TerminalListener(PipelineListener):
    def __init__(self, captions: TerminalCaptions, stop: threading.Event, seconds: float | None):
        self.captions, self.stop, self.seconds = captions, stop, seconds
        self.failed = False
        self._timer: threading.Timer | None = None
        self._progress_tty = sys.stderr.isatty()
        self._announced_loading = False
        self.engine: Callable[[], object] = lambda: None  # the session's transcriber, once loaded
        self._hinted = False

    def on_loading(self, stage: str, done: int, total: int) -> None:
        if stage in ("compile", "kernel", "int4"):
            if self._progress_tty:
                sys.stderr.write("\r\x1b[K")
            line = {"compile": "compiling the model for this CPU (a minute or two the first time; later starts reuse "
                               "the result)",
                    "kernel": "preparing the int4 kernel (built once per machine: about a minute)",
                    "int4": f"int8 does not keep up on this CPU ({done} ms a frame, {total} allowed): loading int4 "
                            "instead (remembered for this machine; --quantize int8 forces int8)"}[stage]
            print(f"surtitle: {line}", file=sys.stderr, flush=True)
            self._announced_loading = False  # the progress line is gone
            return
        if self._progress_tty:
            amount = f"{done / 1e6:.0f}/{total / 1e6:.0f} MB" if stage == "download" else f"{done}/{total} tensors"
            sys.stderr.write(f"\rsurtitle: {'downloading' if stage == 'download' else 'loading'} the model: "
                             f"{100 * done // max(total, 1)}% ({amount})\x1b[K")
            sys.stderr.flush()
        elif not self._announced_loading:
            print("surtitle: loading the model...", file=sys.stderr)
        self._announced_loading = True

    def on_ready(self, info: PipelineInfo) -> None:
        if self._progress_tty and self._announced_loading:
            sys.stderr.write("\r\x1b[K")
        until = f"for {self.seconds:g} s" if self.seconds else "until Ctrl-C"
        print(f"surtitle: session {info.session_id}: listening on {info.input_device!r} ({info.input_rate} Hz) "
              f"with {info.model_name}, {until}", file=sys.stderr, flush=True)
        if self.seconds:
            self._timer = threading.Timer(self.seconds, self.stop.set)
            self._timer.daemon = True
            self._timer.start()

    def on_words(self, words) -> None:
        self.captions.add_words(words)

    def on_partial(self, text: str) -> None:
        self.captions.set_partial(text)

    def on_gap(self, start: float, end: float, reason: str) -> None:
        self._message(f"surtitle: {reason}: {end - start:.1f} s from {format_clock(start)} were not transcribed")
        if "lag" in reason and not self._hinted:
            self._hinted = True
            if could_run_faster(self.engine()):
                self._message("surtitle: this CPU does not keep up with the model in int8; `--quantize int4` "
                              "runs faster, a little less precisely (see docs/speed.md)")

    def on_error(self, message: str) -> None:
        self.failed = True
        self.captions.clear_line()
        error(message)
        self.captions.redraw()

    def _message(self, text: str) -> None:
        self.captions.clear_line()
        print(text, file=sys.stderr, flush=True)
        self.captions.redraw()

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _list_inputs() -> int:
    devices = list_input_devices()
    if not devices:
        error("no audio input device found; connect a microphone, or check that the sound server is running")
        return 1
    for d in devices:
        mark = "*" if d.is_default else " "
        print(f"{mark} {d.index:3d}  {d.name}  ({d.hostapi}, {d.channels} ch, {d.default_samplerate} Hz)")
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value
