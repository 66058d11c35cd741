"""Live transcription: push audio of any length, get final words with timestamps back.

The transcriber feeds the same frame schedule as `generate` (see core.generation): the silence
prefix goes in first, every whole 1920-sample frame is stepped as soon as it is complete, and
`flush()` appends the same tail of silence the feature extractor would, so that a pushed clip gives
the very tokens `generate(**processor(clip))` gives. Memory is fixed once built: one partial frame,
the codec's conv histories and ring caches, the decoder's ring cache.
"""

from __future__ import annotations

import os
from array import array
from typing import Any

import numpy as np
import torch

from .errors import AudioError
from .feature_extraction import KyutaiSpeechToTextFeatureExtractor
from .generation import FrameStepper, live_budget_s, steps_for
from .modeling import KyutaiSpeechToTextForConditionalGeneration
from .tokenizer import TextTokenizer
from .words import Word, WordSegmenter


class StreamingTranscriber:
    def __init__(self, model: KyutaiSpeechToTextForConditionalGeneration, tokenizer: TextTokenizer,
                 feature_extractor: KyutaiSpeechToTextFeatureExtractor, batch_size: int = 1,
                 keep_tokens: bool = True, compile: bool | str = False, on_compile=None):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model = model
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.batch_size = batch_size
        self.sample_rate = model.config.sampling_rate
        self.frame_samples = model.config.frame_size
        self.keep_tokens = keep_tokens
        self._prefix, self._suffix = feature_extractor.padding
        self.delay_s = feature_extractor.audio_delay_seconds
        # compile: the CPU step through torch.compile (core.compiled_step; needs a C++ compiler);
        # "auto" compiles only where the uncompiled step would not keep up live (FrameStepper)
        self._stepper = FrameStepper(model, batch_size, compile=compile, on_compile=on_compile)
        self._segmenters = [WordSegmenter(tokenizer, model.config.frame_rate, feature_extractor.word_offset_seconds)
                            for _ in range(batch_size)]
        self._partial = torch.zeros(batch_size, self.frame_samples, dtype=torch.float32)
        self._tokens = [array("q") for _ in range(batch_size)]
        self.reset()

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, device: Any = None, dtype: Any = None, batch_size: int = 1,
                        quantize: str | None = None, keep_tokens: bool = True, progress=None, revision=None,
                        cache_dir=None, tqdm_class=None, compile: bool | str = False,
                        on_compile=None) -> "StreamingTranscriber":
        """Load a -trfs checkpoint (folder or hub id). quantize="int8" stores the decoder's weights as
        int8 (CPU), "int4" as int4 (CPU with AVX2; core.int4), "auto" int8 on a CPU only; dtype picks the decoder's float type (default:
        float32 on CPU, bfloat16 on GPU); compile=True compiles the CPU step (see core.compiled_step),
        compile="auto" does so only where the uncompiled step cannot keep up with live audio;
        on_compile() is called as compiling begins."""
        from .hub import resolve_checkpoint

        folder = resolve_checkpoint(source, revision=revision, cache_dir=cache_dir, tqdm_class=tqdm_class)
        tokenizer = TextTokenizer.from_file(folder / "tokenizer.json")  # cheap checks before the big load
        features = KyutaiSpeechToTextFeatureExtractor.from_pretrained(folder)
        model = KyutaiSpeechToTextForConditionalGeneration.from_pretrained(
            folder, device_map=device, dtype=dtype, quantize=quantize, progress=progress)
        return cls(model, tokenizer, features, batch_size=batch_size, keep_tokens=keep_tokens, compile=compile,
                   on_compile=on_compile)

    # -- stream control ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Start a new stream (same model): forget all audio, tokens and open words."""
        self._stepper.reset()
        self._fill = 0
        self._pushed = 0  # samples pushed by the caller, per stream
        self._fed = 0  # samples fed to the schedule, prefix included
        self._finished = False
        self._new_words: list[list[Word]] = [[] for _ in range(self.batch_size)]
        for seg in self._segmenters:
            seg.reset()
        for toks in self._tokens:
            del toks[:]
        self._started = False

    def _start(self) -> None:
        first = self._stepper.start()
        self._started = True
        self._record(first)
        self._feed(torch.zeros(self.batch_size, self._prefix))

    @property
    def tokens(self) -> list[list[int]]:
        """Raw text-token stream per batch item, BOS first (as `generate` returns it)."""
        bos = self.model.config.bos_token_id
        return [[bos] + list(t) for t in self._tokens]

    @property
    def pending_text(self) -> str:
        """The word being formed in stream 0 (not final yet)."""
        return self._segmenters[0].pending_text

    @property
    def pending_texts(self) -> list[str]:
        return [s.pending_text for s in self._segmenters]

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio pushed so far in this stream."""
        return self._pushed / self.sample_rate

    @property
    def steps(self) -> int:
        return self._stepper.steps

    @property
    def compiled(self) -> bool:
        """Whether the step runs compiled (see `compile`)."""
        return self._stepper.compiled

    @property
    def live_budget_s(self) -> float:
        """Seconds a live frame's step may take and keep up: a share of the frame's duration, since
        the rest of a live session (capture, resampling, journal, drawing) needs the remainder."""
        return live_budget_s(self.model.config)

    def live_frame_seconds(self) -> float:
        """Median seconds a lone live frame takes in this engine as it runs (compiled or not), over a
        full key/value ring, timed on silence; every stream starts over, so ask before streaming."""
        stepper = self._stepper
        if stepper.eager_frame_s is not None and not stepper.compiled:
            return stepper.eager_frame_s  # compile="auto" timed this very step and kept it uncompiled
        seconds = stepper.time_lone_frames()
        self.reset()
        return seconds

    # -- audio in, words out ----------------------------------------------------------------------

    def push(self, pcm) -> list[Word] | list[list[Word]]:
        """Feed float32 24 kHz samples, shape (n,) or (batch, n); returns the words that became final."""
        batched, audio = self._check(pcm)
        if self._finished:
            self.reset()
        self._new_words = [[] for _ in range(self.batch_size)]
        if not self._started:
            self._start()
        self._pushed += audio.shape[1]
        self._feed(audio)
        return self._new_words if batched else self._new_words[0]

    def flush(self) -> list[Word] | list[list[Word]]:
        """End the stream: the trailing silence the model's delay needs, then the last words."""
        self._new_words = [[] for _ in range(self.batch_size)]
        if self._finished:
            return self._new_words if self.batch_size > 1 else self._new_words[0]
        if not self._started:
            self._start()
        for seg in self._segmenters:
            seg.end_audio(self.audio_seconds)  # the tail below is silence: no word lasts into it
        total = self._fed + self._suffix
        heard = steps_for(total, self.frame_samples) - 1  # frames the schedule lets the decoder hear
        missing = heard - (self._stepper.steps - 1)
        if missing > 0:
            # the open partial frame, then silence: the tail the feature extractor would append
            tail = torch.zeros(self.batch_size, missing * self.frame_samples)
            tail[:, :self._fill] = self._partial[:, :self._fill]
            self._fill = 0
            self._record(self._stepper.step(tail))
        end_index = self._stepper.steps
        for b, seg in enumerate(self._segmenters):
            self._new_words[b].extend(seg.flush(end_index + 1))
        self._finished = True
        return self._new_words if self.batch_size > 1 else self._new_words[0]

    def _check(self, pcm) -> tuple[bool, torch.Tensor]:
        arr = float_samples(pcm)
        batched = arr.ndim == 2
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[0] != self.batch_size:
            raise AudioError(f"push() takes shape (samples,) or ({self.batch_size}, samples), got {arr.shape}")
        if not batched and self.batch_size != 1:
            raise AudioError(f"this transcriber runs {self.batch_size} streams: push shape ({self.batch_size}, samples)")
        return batched, torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))

    def _feed(self, audio: torch.Tensor) -> None:
        """Append samples [B, n] to the partial frame, stepping every frame that completes."""
        n, at = audio.shape[1], 0
        self._fed += n
        fs = self.frame_samples
        while at < n:
            if self._fill == 0 and n - at >= fs:  # whole frames straight from the input, no copy
                whole = (n - at) // fs * fs
                self._record(self._stepper.step(audio[:, at:at + whole]))
                at += whole
                continue
            take = min(fs - self._fill, n - at)
            self._partial[:, self._fill:self._fill + take] = audio[:, at:at + take]
            self._fill += take
            at += take
            if self._fill == fs:
                self._fill = 0
                self._record(self._stepper.step(self._partial))

    def _record(self, tokens: torch.Tensor) -> None:
        """tokens [B] (one step) or [B, n] (the last n steps), in stream order."""
        tokens = tokens.reshape(self.batch_size, -1)
        first = self._stepper.steps - tokens.shape[1] + 1  # index in `tokens` (BOS is index 0)
        for b, row in enumerate(tokens.tolist()):
            if self.keep_tokens:
                self._tokens[b].extend(row)
            for i, tok in enumerate(row):
                self._new_words[b].extend(self._segmenters[b].feed(first + i, tok))


def float_samples(pcm) -> np.ndarray:
    """A caller's samples (array or tensor, any shape) as an array, or AudioError naming what is wrong."""
    if isinstance(pcm, torch.Tensor):
        pcm = pcm.detach().cpu().numpy()
    arr = np.asarray(pcm)
    if arr.dtype.kind != "f":
        raise AudioError(f"push() takes float samples in [-1, 1], got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise AudioError("audio contains NaN or infinite samples")
    return arr
