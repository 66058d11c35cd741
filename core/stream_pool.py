"""Many live streams over one model: fixed slots, one batched step for every slot that has audio.

The shape of Kyutai's batched server (model-spec-kyutai §2.5): a fixed number of slots; a client
takes a free one (`open`), which resets that slot only; its audio, of any length, is buffered per
slot (`push`); `step()` runs ONE batched step in which every slot with a whole frame buffered takes
part and the others are masked out, their state untouched. `flush(slot)` appends the silence tail
the model's delay needs (as `StreamingTranscriber.flush` does); the slot drains in the following
steps and frees itself when its schedule is done. `close(slot)` frees a slot at once.

The schedule is FrameStepper's (`step_masked`): a slot's first step is its BOS step (no audio
needed), then one frame per step, its silence prefix first. So in float modes every slot gives
exactly the tokens its audio alone gives through `StreamingTranscriber` or `generate`. In int8 a
step of several slots quantizes each slot's activations alone: a stream's tokens never depend on
its slot-mates, but they may differ from a run alone (one row: fbgemm's own rounding) as much as
two int8 roundings do. On a GPU the step is replayed
as a CUDA graph (core.cuda_graphs). Not thread-safe: one thread drives a pool.
"""

from __future__ import annotations

import enum
import os
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .cuda_graphs import GraphedStep
from .errors import AudioError, StreamError
from .feature_extraction import KyutaiSpeechToTextFeatureExtractor
from .generation import FrameStepper, steps_for
from .modeling import KyutaiSpeechToTextForConditionalGeneration
from .streaming import float_samples
from .tokenizer import TextTokenizer
from .words import Word, WordSegmenter


@dataclass(frozen=True)
class SlotUpdate:
    """What one slot got from a pool step."""

    slot: int
    words: list[Word]  # newly final words; times in seconds of the audio pushed to this slot since open()
    finished: bool = False  # the flushed stream has ended: these are its last words and the slot is free


class _Phase(enum.Enum):
    FREE = enum.auto()
    OPEN = enum.auto()  # takes audio
    DRAINING = enum.auto()  # flushed: steps through what is buffered, then becomes FREE


class _PendingAudio:
    """Samples pushed but not stepped yet, kept as the caller's chunks (nothing is re-copied to grow)."""

    def __init__(self):
        self._chunks: deque[np.ndarray] = deque()
        self._head = 0  # samples of the first chunk already taken
        self.size = 0

    def clear(self) -> None:
        self._chunks.clear()
        self._head = 0
        self.size = 0

    def append(self, samples: np.ndarray) -> None:
        if len(samples):
            self._chunks.append(samples)
            self.size += len(samples)

    def take_into(self, out: np.ndarray) -> None:
        """Fill `out` with the oldest len(out) samples (the caller checked there are enough)."""
        at = 0
        while at < len(out):
            chunk = self._chunks[0]
            n = min(len(out) - at, len(chunk) - self._head)
            out[at:at + n] = chunk[self._head:self._head + n]
            at += n
            self._head += n
            if self._head == len(chunk):
                self._chunks.popleft()
                self._head = 0
        self.size -= len(out)


@dataclass
class _Slot:
    """Host-side bookkeeping of one slot; its model state lives in the pool's FrameStepper row."""

    segmenter: WordSegmenter
    phase: _Phase = _Phase.FREE
    audio: _PendingAudio = field(default_factory=_PendingAudio)
    fed: int = 0  # samples given to the schedule, silence prefix included
    steps: int = 0  # steps taken since open(); the next one is step `steps` (0 = BOS)
    last_step: int | None = None  # set by flush(): the number of steps the stream gets in all
    tokens: array = field(default_factory=lambda: array("q"))


class StreamPool:
    """`size` independent live streams over one model, stepped as one batch (see the module docstring)."""

    def __init__(self, model: KyutaiSpeechToTextForConditionalGeneration, tokenizer: TextTokenizer,
                 feature_extractor: KyutaiSpeechToTextFeatureExtractor, slots: int, *,
                 cuda_graphs: bool | None = None, keep_tokens: bool = True, max_buffered_s: float = 30.0):
        if slots < 1:
            raise ValueError("a pool needs at least 1 slot")
        if max_buffered_s <= 0:
            raise ValueError("max_buffered_s must be positive")
        self.model = model
        self.tokenizer = tokenizer
        self.sample_rate = model.config.sampling_rate
        self.frame_samples = model.config.frame_size
        self.keep_tokens = keep_tokens
        # a live client that runs ahead of the server would grow its slot's buffer without bound
        self.max_buffered = int(max_buffered_s * self.sample_rate)
        self._prefix, self._suffix = feature_extractor.padding
        self._stepper = FrameStepper(model, slots, per_frame=False)  # the pool steps it masked, graphed below
        self._step = GraphedStep(self._stepper.step_masked, model.device, enabled=cuda_graphs)
        offset_s = feature_extractor.word_offset_seconds
        self._slots = [_Slot(WordSegmenter(tokenizer, model.config.frame_rate, offset_s)) for _ in range(slots)]
        self._frames = torch.zeros(slots, self.frame_samples, dtype=torch.float32)  # [B, F] staging
        self._frames_np = self._frames.numpy()
        self._active = torch.zeros(slots, dtype=torch.bool)  # [B]

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, slots: int, device: Any = None, dtype: Any = None,
                        quantize: str | None = None, cuda_graphs: bool | None = None,
                        keep_tokens: bool = True, max_buffered_s: float = 30.0, **hub_kwargs) -> "StreamPool":
        """Load a -trfs checkpoint (folder or hub id) as StreamingTranscriber.from_pretrained does."""
        from .hub import resolve_checkpoint

        folder = resolve_checkpoint(source, **hub_kwargs)
        tokenizer = TextTokenizer.from_file(folder / "tokenizer.json")
        features = KyutaiSpeechToTextFeatureExtractor.from_pretrained(folder)
        model = KyutaiSpeechToTextForConditionalGeneration.from_pretrained(
            folder, device_map=device, dtype=dtype, quantize=quantize)
        return cls(model, tokenizer, features, slots, cuda_graphs=cuda_graphs, keep_tokens=keep_tokens,
                   max_buffered_s=max_buffered_s)

    @classmethod
    def sharing(cls, transcriber: Any, slots: int) -> "StreamPool":
        """A pool over the model a loaded StreamingTranscriber holds: no second copy of the weights.
        It keeps words, not every token, as live streams and files do."""
        return cls(transcriber.model, transcriber.tokenizer, transcriber.feature_extractor, slots, keep_tokens=False)

    @property
    def size(self) -> int:
        return len(self._slots)

    @property
    def free_slots(self) -> int:
        return sum(s.phase is _Phase.FREE for s in self._slots)

    @property
    def uses_cuda_graph(self) -> bool:
        return self._step.uses_graph

    # -- slots ------------------------------------------------------------------------------------

    def open(self) -> int:
        """Take a free slot and start a new stream there (only that slot is reset); returns its index."""
        free = [i for i, s in enumerate(self._slots) if s.phase is _Phase.FREE]
        if not free:
            raise StreamError(f"all {self.size} slots are in use: close or flush a stream first")
        index = free[0]
        self._stepper.reset(torch.tensor([index]))
        slot = self._slots[index]
        slot.phase, slot.fed, slot.steps, slot.last_step = _Phase.OPEN, 0, 0, None
        slot.audio.clear()
        slot.segmenter.reset()
        del slot.tokens[:]
        self._give(slot, np.zeros(self._prefix, dtype=np.float32))
        return index

    def push(self, slot: int, pcm) -> None:
        """Buffer float32 24 kHz mono samples (any length) for `slot`; they are heard in later steps.

        A push that would leave more than `max_buffered_s` seconds waiting is refused whole
        (StreamError, nothing buffered): the client is running ahead and should retry after steps.
        """
        state = self._slot(slot)
        if state.phase is not _Phase.OPEN:
            why = "flushed" if state.phase is _Phase.DRAINING else "not open"
            raise StreamError(f"slot {slot} does not take audio: it is {why}")
        samples = _checked(pcm)
        if state.audio.size + len(samples) > self.max_buffered:
            raise StreamError(f"slot {slot} already has {self.buffered_seconds(slot):.1f} s of audio waiting "
                              f"(at most {self.max_buffered / self.sample_rate:g} s): push again after step() "
                              f"has taken some, or send audio no faster than real time")
        self._give(state, samples)

    def buffered_seconds(self, slot: int) -> float:
        """Audio pushed to `slot` and not stepped yet, in seconds (a server paces its clients with it)."""
        return self._slot(slot).audio.size / self.sample_rate

    def flush(self, slot: int) -> None:
        """End the stream of `slot`: the trailing silence goes in, and later steps drain it.

        Its last words come from step() in an update with finished=True; the slot is free after that.
        """
        state = self._slot(slot)
        if state.phase is not _Phase.OPEN:
            raise StreamError(f"slot {slot} is not open")
        fs = self.frame_samples
        state.last_step = steps_for(state.fed + self._suffix, fs)
        heard = max(state.steps - 1, 0)  # frames stepped so far
        wanted = (state.last_step - 1 - heard) * fs  # the rest of the schedule, partial frame included
        # the tail is at least 1 s (feature_extraction.silence_padding), so the schedule always
        # reaches past what is buffered: the buffer only ever grows by silence here
        assert wanted >= state.audio.size, "silence tail shorter than a frame"
        state.segmenter.end_audio((state.fed - self._prefix) / self.sample_rate)  # fed: prefix and pushes
        state.audio.append(np.zeros(wanted - state.audio.size, dtype=np.float32))
        state.phase = _Phase.DRAINING

    def close(self, slot: int) -> None:
        """Free `slot` now, dropping its buffered audio and open words."""
        state = self._slot(slot)
        state.phase = _Phase.FREE
        state.audio.clear()

    def tokens(self, slot: int) -> list[int]:
        """Raw text tokens of the slot's current (or last) stream, BOS first, as `generate` returns them."""
        return [self.model.config.bos_token_id] + list(self._slot(slot).tokens)

    def pending_text(self, slot: int) -> str:
        """The word being formed in `slot` (not final yet)."""
        return self._slot(slot).segmenter.pending_text

    def has_work(self) -> bool:
        """Whether step() would step a slot or finish one."""
        return any(self._ready(s) or self._done(s) for s in self._slots)

    # -- the batched step -------------------------------------------------------------------------

    def step(self) -> list[SlotUpdate]:
        """One batched step for every slot with a frame ready; an update per slot stepped or finished."""
        ready = [i for i, s in enumerate(self._slots) if self._ready(s)]
        words: dict[int, list[Word]] = {}
        if ready:
            self._active.zero_()
            for i in ready:
                slot = self._slots[i]
                self._active[i] = True
                if slot.steps > 0:  # step 0 is the BOS step: it hears nothing
                    slot.audio.take_into(self._frames_np[i])
            with torch.inference_mode():
                tokens = self._step(self._frames, self._active).tolist()  # the step's one host sync
            for i in ready:
                slot = self._slots[i]
                slot.steps += 1  # the token of step s has index s + 1 in the stream (BOS is index 0)
                if self.keep_tokens:
                    slot.tokens.append(tokens[i])
                words[i] = slot.segmenter.feed(slot.steps, tokens[i])
        finished = [i for i, s in enumerate(self._slots) if self._done(s)]
        for i in finished:
            slot = self._slots[i]
            words[i] = words.get(i, []) + slot.segmenter.flush(slot.steps + 1)
            slot.phase = _Phase.FREE
        return [SlotUpdate(i, words[i], i in finished) for i in sorted(words)]

    def _ready(self, slot: _Slot) -> bool:
        if slot.phase is _Phase.FREE or (slot.last_step is not None and slot.steps >= slot.last_step):
            return False
        return slot.steps == 0 or slot.audio.size >= self.frame_samples

    @staticmethod
    def _done(slot: _Slot) -> bool:
        return slot.phase is _Phase.DRAINING and slot.steps >= slot.last_step

    def _give(self, slot: _Slot, samples: np.ndarray) -> None:
        slot.audio.append(samples)
        slot.fed += len(samples)

    def _slot(self, slot: int) -> _Slot:
        if not (isinstance(slot, (int, np.integer)) and 0 <= slot < self.size):
            raise StreamError(f"no slot {slot!r}: this pool has slots 0 to {self.size - 1}")
        return self._slots[slot]


def _checked(pcm) -> np.ndarray:
    """Caller's samples -> float32 array (n,), or AudioError naming what is wrong."""
    arr = float_samples(pcm)
    if arr.ndim != 1:
        raise AudioError(f"push() takes one slot's mono samples, shape (samples,), got {arr.shape}")
    return np.array(arr, dtype=np.float32)  # a copy: the caller may reuse its buffer
