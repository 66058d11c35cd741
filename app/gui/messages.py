"""Failures as one sentence a user can act on, never a traceback (design note 6).

Qt-free. Exceptions are recognised by type where we own the type and by name where importing the
library here would be costly (torch) or optional (sounddevice, huggingface_hub). The full
exception always goes to the log file; only the sentence reaches the screen.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import Enum

from core.errors import CheckpointError, SurtitleError

LOCAL_FOLDER_HINT = (
    "To work offline, choose Model → Local folder… and pick a folder holding the model's "
    "config.json, tokenizer.json and .safetensors files."
)


class Remedy(str, Enum):
    """A one-click way out that the window can offer next to the message."""

    NONE = ""
    USE_CPU = "use_cpu"
    USE_LOCAL_FOLDER = "use_local_folder"
    CHOOSE_INPUT = "choose_input"
    USE_INT4 = "use_int4"


@dataclass(frozen=True)
class UserMessage:
    text: str
    remedy: Remedy = Remedy.NONE


def one_line(text: str) -> str:
    """The first line, whitespace folded: status bars and message boxes get one sentence."""
    first = next((line.strip() for line in str(text).splitlines() if line.strip()), "")
    return " ".join(first.split())


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _module(exc: BaseException) -> str:
    return type(exc).__module__ or ""


def describe(exc: BaseException) -> UserMessage:
    names, detail = _names(exc), one_line(str(exc))
    if "OutOfMemoryError" in names or "out of memory" in detail.lower():
        return UserMessage(
            "The GPU ran out of memory for this model; run it on the CPU instead, "
            "or choose 8-bit precision in Settings.",
            Remedy.USE_CPU,
        )
    if "PortAudioError" in names or _module(exc).startswith("sounddevice"):
        return UserMessage(
            f"The microphone could not be opened ({detail}); plug one in or pick another input and "
            "press Start again.",
            Remedy.CHOOSE_INPUT,
        )
    if _module(exc).startswith(("huggingface_hub", "httpx", "requests", "urllib3")) or names & {
        "ConnectionError", "TimeoutError", "OfflineModeIsEnabled", "LocalEntryNotFoundError",
    }:
        return UserMessage(f"The model could not be downloaded (no network?). {LOCAL_FOLDER_HINT}",
                           Remedy.USE_LOCAL_FOLDER)
    if isinstance(exc, CheckpointError):
        return UserMessage(f"{_sentence(detail)} {LOCAL_FOLDER_HINT}", Remedy.USE_LOCAL_FOLDER)
    if isinstance(exc, SurtitleError):
        return UserMessage(detail)
    if isinstance(exc, OSError):
        return UserMessage(describe_os_error(exc))
    return UserMessage(f"Something went wrong: {detail or type(exc).__name__} (details are in the log file).")


def describe_os_error(exc: OSError, action: str = "write", path: str | None = None) -> str:
    """`path` names the file the user chose (the error may name a temporary file beside it)."""
    where = f" {path or exc.filename}" if (path or exc.filename) else ""
    if exc.errno == errno.ENOSPC:
        return f"The disk is full: could not {action}{where}; free some space and try again."
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"Surtitle is not allowed to {action}{where}; choose another folder."
    if isinstance(exc, FileNotFoundError):
        return f"The folder for{where} does not exist; choose another folder."
    reason = exc.strerror or one_line(str(exc))
    return f"Could not {action}{where}: {reason}."


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def as_sentence(text: str) -> str:
    """A pipeline message ("input device 'X' disappeared; ...") as one capitalised sentence."""
    line = one_line(text)
    return _sentence(line[:1].upper() + line[1:]) if line else line


def remedy_for_message(text: str) -> Remedy:
    """The remedy for a failure the pipeline reported as text only.

    The pipeline catches everything in `run` and hands on one line, so a GPU running out of memory
    mid-session arrives as "unexpected OutOfMemoryError: CUDA out of memory...". Recognising that
    one text is the only way to offer the CPU until the pipeline reports errors with a type.
    """
    return Remedy.USE_CPU if "out of memory" in text.lower() else Remedy.NONE
