"""The `surtitle` command line.

`surtitle` alone opens the desktop app. `surtitle transcribe FILE...` streams audio files through
the engine and writes txt, srt, vtt or json; `surtitle live` captions the microphone in the
terminal (app/cli_live.py); `surtitle sessions` and `surtitle export` read the session journal
(app/cli_sessions.py). Each command plugs in the same way: an `add_<name>` function that builds
the subparser and sets `run`, a function `(args, transcriber_factory) -> exit code`.

Errors reach the user as one line, `surtitle: error: <message>`, and exit code 1; only --verbose
shows a traceback. The engine is created through a factory so tests can stand in a fake for it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from app.audio_file import audio_duration_s, iter_audio_blocks
from app.cli_common import (UsageError, add_engine_options, engine_options, error, first_line, format_clock_ms,
                            notify, stop_on_signals)
from app.cli_output import deliver, format_from_extension, plan_outputs
from app.export import FORMATS, Incomplete, to_txt
from app.engine_options import EngineOptions
from app.file_batches import FileTranscript, plan_groups, transcribe_together
from app.model_loading import Transcriber, TranscriberFactory, load_transcriber, no_report
from app.wav_header import wav_promised_seconds
from core.config import DEFAULT_MODEL  # noqa: F401  torch-free re-export: the default --model
from core.errors import AudioError, CheckpointError, SurtitleError
from core.words import Word

PROGRESS_MIN_S = 30.0  # shorter files finish before a progress bar would tell anything
BLOCK_S = 5.0  # audio handed to the engine per push: bounded memory, frequent progress updates
_BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]"  # seconds of audio
PARTIAL_MIN_S = 1.0  # a file damaged this early gets an error alone, not a transcript of a moment
BATCH = 8  # files transcribed together at most (app/file_batches.py): 8 streams step in 2.6x one's time
_CHECKPOINT_HINT = (
    "to run without the Hub, pass --model /path/to/folder holding the checkpoint's config.json, "
    "tokenizer.json and *.safetensors files"
)


# ---------------------------------------------------------------------------------------------
# Entry point


def main(argv: Sequence[str] | None = None, *, transcriber_factory: TranscriberFactory | None = None) -> int:
    """Run one command; returns its exit code. `transcriber_factory` replaces the engine (tests)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on bad arguments; we return codes
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        return run_gui(list(argv) if argv is not None else sys.argv[1:])
    try:
        return args.run(args, transcriber_factory)
    except UsageError as exc:
        error(str(exc))
        return 2
    except SurtitleError as exc:
        error(str(exc), exc if args.verbose else None)
        return 1
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except Exception as exc:  # a bug: one line by default, the traceback on request
        summary = f"unexpected {type(exc).__name__}: {first_line(exc)}"
        if args.verbose:
            error(summary, exc)
        else:
            error(f"{summary} (rerun with --verbose to see the traceback)")
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="surtitle", description="Live captions and transcripts with Kyutai's streaming speech-to-text."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of errors")
    _add_transcribe(commands, common)
    from app.cli_devices import add_devices
    from app.cli_live import add_live  # these import cli's helpers: imported once cli is complete
    from app.cli_sessions import add_export, add_sessions

    add_live(commands, common)
    add_devices(commands, common)
    add_sessions(commands, common)
    add_export(commands, common)
    return parser


def run_gui(argv: list[str]) -> int:
    """The desktop app; a one-line error, not a crash, where it cannot start."""
    if sys.platform.startswith("linux") and not any(
        os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    ):  # Qt would abort the process (SIGABRT) trying to open a display that is not there
        error("no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset); "
              "`surtitle live` captions in the terminal")
        return 1
    try:
        from app.gui.app import main as gui_main
    except ImportError as exc:
        error(f"the desktop app cannot start ({first_line(exc)}); `surtitle live` captions in the terminal")
        return 1
    code = gui_main(argv)
    return code if isinstance(code, int) else 0


# ---------------------------------------------------------------------------------------------
# surtitle transcribe


def _add_transcribe(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "transcribe", parents=[common], help="transcribe audio files",
        description="Transcribe audio files (WAV, FLAC, OGG, MP3; any rate, any channel count).",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio files to transcribe")
    add_engine_options(p)
    p.add_argument(
        "-f", "--format", choices=sorted(FORMATS),
        help="output format (default: from the -o file's extension, else txt)",
    )
    p.add_argument(
        "-o", "--output", metavar="OUT",
        help="output file for one input, or folder for several; '-' for stdout "
        "(default: stdout for one input, next to each input for several)",
    )
    p.add_argument("--timestamps", action="store_true", help="txt only: start each paragraph with [hh:mm:ss]")
    p.add_argument(
        "--batch", type=_positive_int, default=None, metavar="N",
        help=f"with several files, transcribe up to N files of about the same length together, in much "
             f"less time in all; no file's words depend on the others' (default: {BATCH}; 1 = one at a "
             "time, as with --compile). In float32 each file gets exactly its one-at-a-time words; int8 "
             "rounds a batch a little differently",
    )
    p.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None,
        help=f"progress bar on stderr (default: for files over {PROGRESS_MIN_S:.0f} s "
        "when stderr is a terminal)",
    )
    p.set_defaults(run=run_transcribe)


def run_transcribe(args: argparse.Namespace, transcriber_factory: TranscriberFactory | None) -> int:
    max_batch = args.batch or (1 if args.compile else BATCH)
    if args.compile and max_batch > 1:
        raise UsageError("--compile transcribes one file at a time: leave out --batch or --compile")
    fmt = args.format or format_from_extension(args.output) or "txt"
    extension, render = FORMATS[fmt]
    if args.timestamps and fmt == "txt":
        render = _txt_with_timestamps
    targets = plan_outputs(args.files, args.output, extension)

    # Check every file's header before loading the model: a typo should not cost a model load.
    failed = False
    jobs = []
    for path, target in zip(args.files, targets):
        try:
            jobs.append((path, target, audio_duration_s(path)))
        except AudioError as exc:
            error(str(exc), exc if args.verbose else None)
            failed = True
    if not jobs:
        return 1
    for path, _, duration_s in jobs:
        _warn_if_truncated(path, duration_s)

    factory = transcriber_factory or load_transcriber
    runner = _FileJobs(args, jobs, render, extension)
    with stop_on_signals(runner.stop, armed=lambda: runner.started, on_stop=runner.stopping):
        transcriber = _load_model(factory, engine_options(args))  # once, for all files
        runner.started = True
        for group in plan_groups([duration for _, _, duration in jobs], max_batch):
            if runner.stop.is_set():
                break
            if len(group) == 1:
                runner.alone(transcriber, group[0])
            else:
                runner.together(transcriber, group)
    if runner.stop.is_set():
        return 128 + runner.signum  # as a shell reports a command its signal ended
    return 1 if failed or runner.failed else 0


def _warn_if_truncated(path: Path, held: float) -> None:
    """Say so when a WAV holds less audio than its header promises (libsndfile reads what is there)."""
    promised = wav_promised_seconds(path)
    if promised is not None and promised > held + 0.001:
        print(f"surtitle: warning: {str(path)!r}: its header promises {format_clock_ms(promised)} of audio but the "
              f"file holds {format_clock_ms(held)} (it was cut short); transcribing {format_clock_ms(held)}",
              file=sys.stderr)


class _FileJobs:
    """Runs the files of one `surtitle transcribe`, alone or together, and delivers each transcript as
    its file ends; a file that fails is reported and the others go on. Once `stop` is set (Ctrl-C),
    the file at hand ends where it is, its transcript so far is delivered, and no other file starts."""

    def __init__(self, args: argparse.Namespace, jobs: list[tuple[Path, Path | None, float]], render, extension: str):
        self.args, self.jobs, self.render, self.extension = args, jobs, render, extension
        self.failed = False
        self.started = False  # the model is loaded: from now on Ctrl-C keeps what is transcribed
        self.stop = threading.Event()
        self.signum = signal.SIGINT  # what set `stop`: a second Ctrl-C sets it without a handler

    def stopping(self, signum: int) -> None:
        """Ctrl-C or SIGTERM arrived (in the signal handler): say what happens now."""
        self.signum = signum
        notify("stopping: writing the transcript so far (Ctrl-C again to stop at once)")

    def alone(self, transcriber: Transcriber, index: int) -> None:
        path, _, duration_s = self.jobs[index]
        try:
            result = transcribe_file(transcriber, path, self._show_progress(duration_s), self.stop)
        except SurtitleError as exc:  # nothing of this file could be read; the others still run
            self.file_failed(index, exc)
            return
        self.file_done(index, result)

    def together(self, transcriber: Transcriber, group: list[int]) -> None:
        from tqdm import tqdm

        pool = open_pool(transcriber, len(group))
        total = sum(self.jobs[i][2] for i in group)
        with tqdm(total=total, desc=f"{len(group)} files", file=sys.stderr, disable=not self._show_progress(total),
                  bar_format=_BAR_FORMAT) as bar:
            transcribe_together(
                pool, [self.jobs[i][0] for i in group], BLOCK_S,
                on_done=lambda k, result: self.file_done(group[k], result),
                on_seconds=lambda s: _advance(bar, s),
                stop=self.stop,
            )
            if not self.stop.is_set():
                bar.update(bar.total - bar.n)

    def file_done(self, index: int, result: FileTranscript) -> None:
        path, target, _ = self.jobs[index]
        if result.interrupted:
            self.stop.set()  # a second Ctrl-C, which no handler saw: nothing more starts
        if result.error is not None and result.seconds < PARTIAL_MIN_S:  # nothing worth keeping
            self.file_failed(index, result.error)
            return
        incomplete, problem = _incompleteness(path, result)
        meta = {"model": self.args.model, "file": str(path), "duration_s": round(result.seconds, 3)}
        if not deliver(self.render(result.words, meta, incomplete), target, path, self.extension, problem):
            self.failed = True

    def file_failed(self, index: int, exc: SurtitleError) -> None:
        error(str(exc), exc if self.args.verbose else None)
        self.failed = True

    def _show_progress(self, duration_s: float) -> bool:
        if self.args.progress is not None:
            return self.args.progress
        return duration_s > PROGRESS_MIN_S and sys.stderr.isatty()


def _incompleteness(path: Path, result: FileTranscript) -> tuple[Incomplete | None, str | None]:
    """(what the transcript says of where it stops, the one line that says so), or (None, None)."""
    at = format_clock_ms(result.seconds)
    if result.error is not None:
        return (Incomplete(result.seconds, f"the file could not be read past {at}"),
                str(result.error).rstrip("."))
    if result.interrupted:
        return (Incomplete(result.seconds, "the transcription was interrupted"),
                f"interrupted: {str(path)!r} was transcribed up to {at}")
    return None, None


def open_pool(transcriber: Transcriber, slots: int):
    """A StreamPool of `slots` streams over the transcriber's model (no second copy of the weights)."""
    from core import StreamPool

    return StreamPool.sharing(transcriber, slots)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _txt_with_timestamps(words: Sequence[Word], meta: Mapping[str, object],
                         incomplete: Incomplete | None = None) -> str:
    return to_txt(words, timestamps=True, incomplete=incomplete)


def transcribe_file(transcriber: Transcriber, path: Path, show_progress: bool = False,
                    stop: threading.Event | None = None) -> FileTranscript:
    """Stream one file through the engine block by block, for its words and the seconds they cover.

    Raises AudioError when not one block can be read. Past that, a block that cannot be read, or
    `stop`, ends the file where it is: the engine is flushed, so every word heard so far is kept.
    A KeyboardInterrupt returns the words already final, without a flush (the engine may have been
    stopped mid-step); they cover the audio up to the last word's end.
    """
    from tqdm import tqdm  # comes with huggingface_hub; imported late like the other heavy parts

    transcriber.reset()  # a previous file, or one that failed half-way, must not leak into this one
    rate = transcriber.sample_rate
    words: list[Word] = []
    samples = 0
    failure: SurtitleError | None = None
    with tqdm(
        total=audio_duration_s(path), desc=path.name, file=sys.stderr, disable=not show_progress,
        bar_format=_BAR_FORMAT,
    ) as bar:
        interrupted = False
        try:
            for block in iter_audio_blocks(path, block_s=BLOCK_S, sample_rate=rate):
                words.extend(transcriber.push(block))
                samples += len(block)
                _advance(bar, len(block) / rate)
                if stop is not None and stop.is_set():
                    interrupted = True
                    break
        except AudioError as exc:
            if samples == 0:
                raise
            failure = exc
        except KeyboardInterrupt:
            return FileTranscript.cut_short(words)
        try:
            words.extend(transcriber.flush())
        except KeyboardInterrupt:  # a second Ctrl-C while the last words came out
            return FileTranscript.cut_short(words)
        if failure is None and not interrupted:
            bar.update(bar.total - bar.n)  # and may fall a little short of it: end the bar full
    return FileTranscript(words, samples / rate, failure, interrupted)


def _advance(bar, seconds: float) -> None:
    """Move a progress bar of audio seconds on, never past its total (the resampled length may
    round a little past the header's, which tqdm would warn about)."""
    bar.update(min(seconds, bar.total - bar.n))


def _load_model(factory: TranscriberFactory, options: EngineOptions) -> Transcriber:
    """Build the engine; any failure becomes one CheckpointError line saying what to do.

    The engine's own errors already are such lines (they name the file, the device, the hub
    problem), so they pass unchanged; raw hub and file-system errors get explained here.
    """
    from huggingface_hub.errors import HFValidationError  # a bad repo id; a ValueError, not an OSError

    try:
        return factory(options, no_report)
    except CheckpointError as exc:
        if "local checkpoint folder" in str(exc):  # the engine's hub failure: say how, in this program's terms
            raise CheckpointError(f"{exc}; pass it as --model /path/to/folder") from None
        raise
    except (OSError, HFValidationError) as exc:
        source = options.model
        if Path(source).expanduser().is_dir():
            raise CheckpointError(f"cannot load the model in folder {source!r}: {first_line(exc)}") from exc
        raise CheckpointError(
            f"cannot load model {source!r} from the Hugging Face Hub ({_hub_reason(exc)}); {_CHECKPOINT_HINT}"
        ) from exc


def _hub_reason(exc: BaseException) -> str:
    """Name the usual hub failures in words rather than show an HTTP dump."""
    from huggingface_hub import errors as hub

    if isinstance(exc, hub.GatedRepoError):
        return "the repository is gated: accept its terms on huggingface.co, then run `hf auth login`"
    if isinstance(exc, hub.RepositoryNotFoundError):
        return "no such repository, or it needs a login"
    if isinstance(exc, (hub.LocalEntryNotFoundError, hub.OfflineModeIsEnabled, ConnectionError)):
        return "no network connection and no copy in the local cache"
    if isinstance(exc, hub.HFValidationError):
        return "it is neither an existing folder nor a valid repository id"
    return first_line(exc)


if __name__ == "__main__":
    sys.exit(main())
