"""Failures become one actionable sentence, with a remedy where one exists."""

import errno

import pytest

from app.gui.messages import LOCAL_FOLDER_HINT, Remedy, describe, describe_os_error, one_line
from core.errors import CheckpointError


class OutOfMemoryError(RuntimeError):  # named like torch.cuda.OutOfMemoryError
    pass


class PortAudioError(Exception):
    pass


PortAudioError.__module__ = "sounddevice"


class LocalEntryNotFoundError(FileNotFoundError):
    pass


LocalEntryNotFoundError.__module__ = "huggingface_hub.errors"


@pytest.mark.parametrize("exc, remedy, words", [
    (OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB\n..."), Remedy.USE_CPU, "GPU ran out of memory"),
    (PortAudioError("Error querying device -1"), Remedy.CHOOSE_INPUT, "microphone could not be opened"),
    (LocalEntryNotFoundError("offline"), Remedy.USE_LOCAL_FOLDER, "could not be downloaded"),
    (CheckpointError("model.safetensors is missing from /models/x"), Remedy.USE_LOCAL_FOLDER, "safetensors"),
    (OSError(errno.ENOSPC, "No space left on device", "/data/j.sqlite3"), Remedy.NONE, "disk is full"),
    (ValueError("weird\nTraceback (most recent call last):"), Remedy.NONE, "Something went wrong: weird"),
])
def test_describe(exc, remedy, words):
    message = describe(exc)
    assert message.remedy is remedy
    assert words in message.text
    assert "\n" not in message.text and "Traceback" not in message.text


def test_missing_model_says_how_to_work_offline():
    assert LOCAL_FOLDER_HINT in describe(CheckpointError("no config.json in /x")).text


def test_permission_error_names_the_file():
    text = describe_os_error(PermissionError(errno.EACCES, "Permission denied", "/root/a.srt"))
    assert text == "Surtitle is not allowed to write /root/a.srt; choose another folder."


def test_one_line():
    assert one_line("\n  first   line \nsecond") == "first line"
