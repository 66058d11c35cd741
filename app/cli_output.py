"""Where the command line's transcripts go, and how none is lost when they cannot go there.

`surtitle transcribe` and `surtitle export` share these rules: a transcript goes to stdout or to
the file `-o` names (written by app.output_file, which never replaces a device, a FIFO or a link);
if that fails, a rescue copy is saved in the current folder (else the temporary folder) and one
line says where. A transcript that stops early says so in its text and in that line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from app.cli_common import UsageError, error, printable
from app.export import FORMATS
from app.output_file import OutputRefused, check_output, is_stdout, write_output


def format_from_extension(output: str | None) -> str | None:
    if output is None or output == "-":
        return None
    suffix = Path(output).suffix.lower()
    return next((name for name, f in FORMATS.items() if f.extension == suffix), None)


def output_target(output: str | None, keep: Sequence[Path] = ()) -> Path | None:
    """One transcript's destination: None for stdout (no -o, '-', or a name for stdout itself).
    Raises UsageError if it must not be written: a folder, a disk, or one of the files in `keep`
    (the inputs, the journal) under any name."""
    if output is None or output == "-" or is_stdout(output):
        return None
    target = Path(output)
    _check(target, keep)
    return target


def plan_outputs(files: list[Path], output: str | None, extension: str) -> list[Path | None]:
    """One destination per input file; None means stdout. Raises UsageError for impossible plans."""
    if len(files) == 1 and (output is None or not _names_folder(output)):
        return [output_target(output, keep=files)]
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
    seen: dict[Path, Path] = {}
    for source, target in zip(files, targets):
        key = target.resolve()
        if key in seen:
            both = f"{str(seen[key])!r} and {str(source)!r}"
            raise UsageError(f"{both} would both be written to {str(target)!r}; rename one of them")
        seen[key] = source
        _check(target, files)
    return targets


def _names_folder(output: str) -> bool:
    return Path(output).is_dir() or output.endswith(("/", os.sep))


def _check(target: Path, keep: Sequence[Path]) -> None:
    for kept in keep:  # by identity: a link or another name of the same file is the same file
        with contextlib.suppress(OSError):  # one of the two does not exist: not the same file
            if os.path.samefile(target, kept):
                raise UsageError(f"writing to {str(target)!r} would overwrite {str(kept)!r}, which "
                                 "it is made from; choose another -o")
    try:
        check_output(target)
    except OutputRefused as exc:
        raise UsageError(f"cannot write {str(target)!r}: {exc.strerror}") from None


def deliver(text: str, target: Path | None, source: Path, extension: str, problem: str | None = None) -> bool:
    """Write a transcript to `target` (None: stdout); if that fails, save a rescue copy so it is not lost.

    `problem` says why the transcript is incomplete (a decode error, Ctrl-C): the one line that
    reports the write then reports it too, as an error, and an incomplete transcript does not
    replace a file already there (an earlier, complete one): it goes beside it. True when a complete
    transcript is where it was asked to be.
    """
    what = "the transcript" if problem is None else "the transcript so far"
    if problem is not None and target is not None and _holds_a_file(target):
        target = _beside(target, extension)
    where = "stdout" if target is None else repr(str(target))
    try:
        if target is None:
            write_stdout(text)
        else:
            write_output(target, text)
    except (OSError, UnicodeError) as exc:
        printed = target is not None and _try_stdout(text)
        saved = _save_rescue(text, source, extension)
        kept = ["printed to stdout"] if printed else []
        kept.append(f"saved to {str(saved)!r}" if saved else "could not be saved anywhere else either")
        message = f"cannot write {what} to {where} ({_reason(exc)}); it was {' and '.join(kept)}"
        error(message if problem is None else f"{problem}; {message}")
        return False
    if problem is not None:
        error(f"{problem}; {what} was written to {where}, marked as incomplete")
        return False
    if target is not None:
        print(f"surtitle: wrote {printable(str(target))}", file=sys.stderr)
    return True


def write_stdout(text: str) -> None:
    """Print a transcript; raises OSError if stdout takes it not (closed, a full disk, a gone reader),
    UnicodeEncodeError if its encoding cannot hold the text."""
    stream = sys.stdout
    if stream is None:  # started with stdout closed
        raise OSError(errno.EBADF, "stdout is closed")
    try:
        stream.write(text)
        stream.flush()
    except OSError:
        _silence_stdout()
        raise


def _reason(exc: OSError | UnicodeError) -> str:
    if isinstance(exc, UnicodeEncodeError):
        return f"its encoding, {exc.encoding}, cannot hold {exc.object[exc.start:exc.end]!r}"
    return exc.strerror or str(exc)


def _try_stdout(text: str) -> bool:
    try:
        write_stdout(text)
    except (OSError, UnicodeError):
        return False
    return True


def _silence_stdout() -> None:
    """Send what stdout still buffers to /dev/null: Python flushes it at exit, and would fail there
    again with a message of its own after ours."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation: a stream with no descriptor to redirect
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


_STEM_CHARS = 100  # of a name we make from another: room for what we add within any name limit


def _holds_a_file(target: Path) -> bool:
    try:
        info = target.stat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size > 0


def _beside(target: Path, extension: str) -> Path:
    """A new name next to `target` for an incomplete transcript, so that it replaces nothing."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return target.with_name(f"{target.stem[:_STEM_CHARS]}-incomplete-{stamp}{target.suffix or extension}")


def _save_rescue(text: str, source: Path, extension: str) -> Path | None:
    """A new file `surtitle-<input>-<time>.<ext>` in the current folder, else the temporary folder."""
    stem = f"surtitle-{source.stem[:_STEM_CHARS]}-{time.strftime('%Y%m%d-%H%M%S')}"
    for folder in (Path.cwd, lambda: Path(tempfile.gettempdir())):
        for n in range(1, 100):
            try:
                candidate = folder() / (f"{stem}{extension}" if n == 1 else f"{stem}-{n}{extension}")
                with open(candidate, "x", encoding="utf-8", newline="") as f:  # "x": never over an earlier rescue
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                return candidate
            except FileExistsError:
                continue
            except OSError:  # this folder will not do (gone, read-only, full): the next one
                break
    return None
