"""Where the command line's transcripts go, and how none is lost when they cannot go there.

`surtitle transcribe` and `surtitle export` share these rules: a transcript goes to stdout or to
the file `-o` names (written by app.output_file, which never replaces a device, a FIFO or a link);
if that fails, a rescue copy is saved in the current folder (else the temporary folder) and one
line says where. A transcript that stops early says so in its text and in that line.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
import time
from pathlib import Path

from app.cli_common import UsageError, error
from app.export import FORMATS
from app.output_file import OutputRefused, check_output, is_stdout, write_output, write_text_atomic


def format_from_extension(output: str | None) -> str | None:
    if output is None or output == "-":
        return None
    suffix = Path(output).suffix.lower()
    return next((name for name, f in FORMATS.items() if f.extension == suffix), None)


def output_target(output: str | None) -> Path | None:
    """One transcript's destination: None for stdout (no -o, '-', or a name for stdout itself)."""
    if output is None or output == "-" or is_stdout(output):
        return None
    target = Path(output)
    _check(target)
    return target


def plan_outputs(files: list[Path], output: str | None, extension: str) -> list[Path | None]:
    """One destination per input file; None means stdout. Raises UsageError for impossible plans."""
    if len(files) == 1 and (output is None or not _names_folder(output)):
        return [output_target(output)]
    if output == "-":
        raise UsageError("-o - (stdout) takes one input file; give a folder to -o for several")
    if output is None:
        targets = [f.with_suffix(extension) for f in files]  # next to each input
    else:
        out = Path(output)
        if out.exists() and not out.is_dir():
            raise UsageError(f"-o {output!r} is a file; with several inputs -o must name a folder")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # each write will then fail and fall back, which keeps and reports the transcripts
        targets = [out / (f.stem + extension) for f in files]
    inputs = {f.resolve() for f in files}
    seen: dict[Path, Path] = {}
    for source, target in zip(files, targets):
        key = target.resolve()
        if key in inputs:
            raise UsageError(f"the transcript of {str(source)!r} would overwrite the input {str(target)!r}")
        if key in seen:
            both = f"{str(seen[key])!r} and {str(source)!r}"
            raise UsageError(f"{both} would both be written to {str(target)!r}; rename one of them")
        seen[key] = source
        _check(target)
    return targets


def _names_folder(output: str) -> bool:
    return Path(output).is_dir() or output.endswith(("/", os.sep))


def _check(target: Path) -> None:
    try:
        check_output(target)
    except OutputRefused as exc:
        raise UsageError(f"cannot write {str(target)!r}: {exc.strerror}") from None


def deliver(text: str, target: Path | None, source: Path, extension: str, problem: str | None = None) -> bool:
    """Write a transcript to `target` (None: stdout); if that fails, save a rescue copy so it is not lost.

    `problem` says why the transcript is incomplete (a decode error, Ctrl-C): the one line that
    reports the write then reports it too, as an error. True when a complete transcript is where
    it was asked to be.
    """
    where = "stdout" if target is None else repr(str(target))
    what = "the transcript" if problem is None else "the transcript so far"
    try:
        if target is None:
            write_stdout(text)
        else:
            write_output(target, text)
    except OSError as exc:
        printed = target is not None and _try_stdout(text)
        saved = _save_rescue(text, source, extension)
        kept = ["printed to stdout"] if printed else []
        kept.append(f"saved to {str(saved)!r}" if saved else "could not be saved anywhere else either")
        reason = exc.strerror or str(exc)
        message = f"cannot write {what} to {where} ({reason}); it was {' and '.join(kept)}"
        error(message if problem is None else f"{problem}; {message}")
        return False
    if problem is not None:
        error(f"{problem}; {what} was written to {where}, marked as incomplete")
        return False
    if target is not None:
        print(f"surtitle: wrote {target}", file=sys.stderr)
    return True


def write_stdout(text: str) -> None:
    """Print a transcript; raises OSError if stdout takes it not (closed, a full disk, a gone reader)."""
    stream = sys.stdout
    if stream is None:  # started with stdout closed
        raise OSError(errno.EBADF, "stdout is closed")
    try:
        stream.write(text)
        stream.flush()
    except OSError:
        _silence_stdout()
        raise


def _try_stdout(text: str) -> bool:
    try:
        write_stdout(text)
    except OSError:
        return False
    return True


def _silence_stdout() -> None:
    """Send what stdout still buffers to /dev/null: Python flushes it at exit, and would fail there
    again with a message of its own after ours."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a stand-in stream (tests): nothing to flush at exit
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _save_rescue(text: str, source: Path, extension: str) -> Path | None:
    """A new file `surtitle-<input>-<time>.<ext>` in the current folder, else the temporary folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (Path.cwd(), Path(tempfile.gettempdir())):
        candidate = folder / f"surtitle-{source.stem}-{stamp}{extension}"
        n = 1
        while candidate.exists():  # never overwrite an earlier rescue
            n += 1
            candidate = folder / f"surtitle-{source.stem}-{stamp}-{n}{extension}"
        try:
            write_text_atomic(candidate, text)
            return candidate
        except OSError:
            continue
    return None
