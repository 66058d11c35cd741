"""Several audio files through one model at once: files of about the same length share a StreamPool.

A decoder step reads every weight once whatever the batch, so streams stepped together cost much
less than one after the other (stt-1b, int8, 2 CPU cores: a file alone takes 59 ms per 80 ms frame;
a pool step takes 132 ms for 4 streams and 187 ms for 8, i.e. 33 and 23 ms per stream). A pool
steps every slot until the last of its files ends, so files are grouped by length: the longest file
left opens a group, and files at least two thirds as long join it, up to `max_batch`. A file with
no partner goes alone through the plain transcriber, which is cheaper than a pool of one.

No file's words depend on the other files': in float modes each file gets exactly the words it gets
alone (the pool's contract, tests/test_stream_pool.py, checked end to end in tests/test_cli_engine.py);
in int8 each stream's activations are quantized on their own in a batch, which rounds a little
differently from a lone stream. No Qt, no torch at import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.audio_file import iter_audio_blocks
from core.errors import SurtitleError
from core.words import Word

JOIN_RATIO = 2 / 3  # a file joins a group if it is at least this fraction of the group's longest
REFILL_S = 1.0  # a slot is given its file's next block once less than this is left to step


def plan_groups(durations: Sequence[float], max_batch: int) -> list[list[int]]:
    """Indices of `durations`, grouped to be transcribed together; longest first, each group by length."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, got {max_batch}")
    if max_batch == 1:  # one at a time: in the order given
        return [[i] for i in range(len(durations))]
    order = sorted(range(len(durations)), key=lambda i: (-durations[i], i))
    groups: list[list[int]] = []
    for i in order:
        last = groups[-1] if groups else None
        if last and len(last) < max_batch and durations[i] >= JOIN_RATIO * durations[last[0]]:
            last.append(i)
        else:
            groups.append([i])
    return groups


@dataclass(frozen=True)
class FileTranscript:
    """What came of one file: its words, the seconds of audio they cover, and why it stopped early."""

    words: list[Word]
    seconds: float  # audio transcribed; the whole file unless it stopped early
    error: SurtitleError | None = None  # the file could not be read past `seconds`
    interrupted: bool = False  # Ctrl-C stopped it at `seconds`

    @classmethod
    def cut_short(cls, words: list[Word]) -> "FileTranscript":
        """Stopped at once (a second Ctrl-C), with no flush: the words final so far, which cover
        the audio up to the last one's end (audio pushed after it may hold words not yet final)."""
        return cls(words, words[-1].end if words else 0.0, interrupted=True)


@dataclass
class _File:
    index: int  # position in the caller's list
    blocks: Iterator[np.ndarray]
    words: list[Word] = field(default_factory=list)
    samples: int = 0
    flushed: bool = False
    error: SurtitleError | None = None
    interrupted: bool = False

    def result(self, rate: int) -> FileTranscript:
        return FileTranscript(self.words, self.samples / rate, self.error, self.interrupted)


def transcribe_together(
    pool: Any,
    paths: Sequence[Path],
    block_s: float,
    on_done: Callable[[int, FileTranscript], None],
    on_seconds: Callable[[float], None] = lambda seconds: None,
    stop: threading.Event | None = None,
) -> None:
    """Transcribe `paths` in the slots of `pool` (a core.StreamPool with a free slot for each).

    `on_done(i, transcript)` is called as file i ends. A file that cannot be read to its end is
    flushed where it stops (its error in the transcript); once `stop` is set, every file is flushed
    where it is (interrupted). A KeyboardInterrupt hands each file on with the words it has, unflushed.
    `on_seconds` gets the audio seconds each step got through, for a progress bar.
    """
    rate = pool.sample_rate
    frame_s = pool.frame_samples / rate
    files: dict[int, _File] = {}
    for i, path in enumerate(paths):
        files[pool.open()] = _File(i, iter_audio_blocks(path, block_s=block_s, sample_rate=rate))
    try:
        while files:
            for slot, file in list(files.items()):
                if not file.flushed and stop is not None and stop.is_set():
                    file.interrupted = True
                    _end(pool, slot, file)
                if not file.flushed and pool.buffered_seconds(slot) < REFILL_S:
                    _refill(pool, slot, file)
                if file.flushed and file.samples == 0:  # nothing read: nothing to step
                    pool.close(slot)
                    del files[slot]
                    on_done(file.index, file.result(rate))
            if not files:
                break
            updates = pool.step()
            on_seconds(frame_s * len(updates))  # one update per slot stepped (or finished)
            for update in updates:
                file = files[update.slot]
                file.words.extend(update.words)
                if update.finished:
                    on_done(file.index, file.result(rate))
                    del files[update.slot]  # only once delivered: an interrupt meanwhile still hands it on
    except KeyboardInterrupt:  # stop now: the words so far, without the flush a step would need
        for slot, file in files.items():
            pool.close(slot)
            on_done(file.index, FileTranscript.cut_short(file.words))


def _refill(pool: Any, slot: int, file: _File) -> None:
    """The file's next block into its slot; at its end, or where it cannot be read, the stream ends."""
    try:
        block = next(file.blocks, None)
    except SurtitleError as exc:  # unreadable or bad samples part-way: keep what came before
        file.error = exc
        block = None
    if block is None:
        _end(pool, slot, file)
    else:
        pool.push(slot, block)
        file.samples += len(block)


def _end(pool: Any, slot: int, file: _File) -> None:
    if file.samples:
        pool.flush(slot)  # its last words come with the update that finishes the slot
    file.flushed = True
