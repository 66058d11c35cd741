"""The per-frame step and the frame schedule: the only place either exists.

Schedule (the one transformers' `generate` follows with `audio_window_size=None`): a padded clip
of L samples gets N = L // frame_size steps. Step 0 feeds the BOS text id with the audio BOS in
every codebook; step t >= 1 feeds the text token of step t - 1 with the codes of frame t - 1.
So frames 0 .. N-2 are heard and the last whole frame never is. Output: BOS, then one token per step.

`FrameStepper` runs that step for a batch of streams; `generate` (offline, the documented API),
`StreamingTranscriber` (live) and `StreamPool` (many live streams, each at its own step) drive it.
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import TYPE_CHECKING, Callable

import torch

from . import native
from .compiled_step import compiler_found
from .cuda_graphs import GraphedStep, graphs_wanted
from .kv_cache import stream_mask
from .quantize import compiled_kv_dtype

if TYPE_CHECKING:  # modeling's generate() calls down into this module
    from .modeling import KyutaiSpeechToTextForConditionalGeneration

log = logging.getLogger(__name__)

# compile="auto" compiles when an uncompiled live frame takes more than this share of the frame's
# duration: the rest of a live session (capture, resampling, journal, drawing) needs the remainder
KEEP_UP_SHARE = 0.8


def live_budget_s(config) -> float:
    """Seconds a live frame's step may take and keep up: KEEP_UP_SHARE of the frame's duration."""
    return KEEP_UP_SHARE * config.frame_size / config.sampling_rate


def steps_for(total_samples: int, frame_size: int) -> int:
    """Decoder steps a padded stream of `total_samples` gets (one per whole frame)."""
    return total_samples // frame_size


class FrameStepper:
    """Codec + decoder state for `batch` streams, stepped one frame at a time.

    Two ways to move the streams on, both through `_decode` (the schedule above):
    - `start()` then `step(frames)`: every stream together (a file, or one live stream); the codec
      takes up to `max_frames` frames per call (on a GPU: one replay of the captured masked step
      per frame instead, see `per_frame`). `steps` counts these steps.
    - `step_masked(frame, active)`: one frame, for the streams marked active only. Each stream is at
      its own place in the schedule (`step_index`); one at step 0 takes its BOS step and hears
      nothing, so streams can be reset (`reset(streams)`) and started one by one while the others
      go on. Fixed shapes, no host sync: this is the step core.cuda_graphs captures.

    `compile=True` (CPU only; a GPU replays CUDA graphs instead) runs start()/step() through
    torch.compile (core.compiled_step), compiling both graphs as the stepper is built.
    `compile="auto"` first times a few uncompiled live frames and compiles only if they take more
    than KEEP_UP_SHARE of a frame's duration and a C++ compiler is found: a CPU that keeps up
    uncompiled starts at once, a slower one pays the compile (once; later starts hit the cache)
    for the fastest step it has. `on_compile` is called as compiling begins (it takes a while).
    """

    def __init__(self, model: KyutaiSpeechToTextForConditionalGeneration, batch: int,
                 per_frame: bool | None = None, compile: bool | str = False,
                 on_compile: Callable[[], None] | None = None):
        if compile not in (True, False, "auto"):
            raise ValueError(f"compile must be True, False or 'auto', not {compile!r}")
        cfg = model.config
        self.model = model
        self._chunk = cfg.frame_size * model.codec_model.frames_per_call(batch)  # samples per codec call
        device = model.device
        if per_frame is None:
            per_frame = graphs_wanted(device)
        self.codec_state = model.codec_model.new_state(batch)
        found = compiler_found() if compile and not per_frame else False  # asked once: it searches PATH
        # a compiled int8 step keeps a narrower ring; "auto" times the eager step on the eager ring first
        self.cache = model.model.new_cache(batch, dtype=compiled_kv_dtype(model) if compile is True and found else None)
        self._ids = torch.empty(batch, 1, 1 + cfg.num_codebooks, dtype=torch.long, device=device)
        self._bos = torch.tensor([cfg.bos_token_id] + [cfg.audio_bos_token_id] * cfg.num_codebooks, device=device)
        self._num_codebooks = cfg.num_codebooks
        self.last_token = torch.full((batch,), cfg.bos_token_id, dtype=torch.long, device=device)
        self.step_index = torch.zeros(batch, dtype=torch.long, device=device)  # per stream; 0 = BOS step next
        self.steps = 0
        self._lockstep = True  # every stream has taken the same steps: start()/step() may be used
        # On a GPU the step is a few hundred small kernels, so launches cost more than the work: there
        # start()/step() replay the captured masked step once per frame, every stream active. On a CPU
        # the codec instead takes up to max_frames frames per call (its weights read once for all).
        self._per_frame = GraphedStep(self._masked, device) if per_frame else None
        self._everyone = torch.ones(batch, dtype=torch.bool, device=device)
        # compile (CPU): a lone frame runs codec and decoder as one compiled graph; frames that come
        # several at once keep the batched eager codec and run each decoder step compiled. Inputs go
        # through fixed buffers so that every call has the same shapes and strides (no recompiles).
        self._compiled_frame = self._compiled_decode = None
        self.eager_frame_s: float | None = None  # what compile="auto" measured
        if compile == "auto" and device.type == "cpu" and found:
            self.eager_frame_s = self.time_lone_frames()
            budget = live_budget_s(cfg)
            compile = self.eager_frame_s > budget
            if compile:
                log.info("an uncompiled frame takes %.0f ms (budget %.0f ms): compiling the step for this CPU",
                         self.eager_frame_s * 1e3, budget * 1e3)
                narrow = compiled_kv_dtype(model)
                if narrow is not None:
                    self.cache = model.model.new_cache(batch, dtype=narrow)
        if compile is True and not per_frame:
            from .compiled_step import CompiledStep

            if on_compile is not None and found:
                on_compile()
            if found and self.cache.keys[0].dtype in (torch.bfloat16, torch.int8) and \
                    native.try_kernels("attention over the narrow ring and the codec's live frame run"):
                model.codec_model.use_kernels()  # built once per machine, with the step
            self._frame_in = torch.zeros(batch, cfg.frame_size, device=device)  # [B, F]
            self._codes_in = torch.zeros(batch, cfg.num_codebooks, dtype=torch.long, device=device)  # [B, K]
            self._compiled_frame = CompiledStep(self._one_frame, "frame")
            self._compiled_decode = CompiledStep(self._decode_heard, "decoder")
            if self._compiled_frame.compiled or self._compiled_decode.compiled:
                self._warm_up()

    @property
    def compiled(self) -> bool:
        """Whether start()/step() run compiled (asked for or chosen by "auto", and compiling worked)."""
        return self._compiled_frame is not None and (self._compiled_frame.compiled or self._compiled_decode.compiled)

    @torch.inference_mode()  # the state tensors are inference tensors once stepped
    def time_lone_frames(self, frames: int = 5) -> float:
        """Median seconds a lone live frame (codec + decoder) takes, as this stepper runs it, over a
        full ring; on silence, and every stream starts over after (call it before streaming).

        The step's cost does not depend on what it hears: every weight is read whatever the audio.
        It does depend on how much of the ring is filled (attention skips empty slots), so the
        rings are made to look full first (RingKVCache.look_full), as in any session past its
        first window.
        """
        silence = torch.zeros(self._ids.shape[0], self.model.config.frame_size, device=self._ids.device)
        self.reset()
        self.start()
        self.step(silence)  # the first frame pays for one-time allocations
        self.cache.look_full()
        self.codec_state.kv.look_full()
        times = []
        for _ in range(frames):
            t0 = time.perf_counter()
            self.step(silence)
            times.append(time.perf_counter() - t0)
        self.reset()
        return statistics.median(times)

    def _warm_up(self) -> None:
        """Compile both graphs now, on silence: compiling on the first live frames would make a
        session drop its first minute (the audio that piled up meanwhile is skipped as a gap)."""
        silence = torch.zeros(self._ids.shape[0], 2 * self.model.config.frame_size, device=self._ids.device)
        self.start()  # the decoder graph
        self.step(silence)  # two frames: the batched codec, the decoder graph again
        self.step(silence[:, :self.model.config.frame_size])  # one frame: the lone-frame graph
        self.reset()

    @torch.inference_mode()  # the state tensors are inference tensors once stepped
    def reset(self, streams: torch.Tensor | None = None) -> None:
        """Start every stream over, or only `streams` (bool mask [B] or indices); the others go on."""
        if streams is None:
            self.codec_state.reset()
            self.cache.reset()
            self.last_token.fill_(self.model.config.bos_token_id)
            self.step_index.zero_()
            self.steps = 0
            self._lockstep = True
            return
        mask = stream_mask(streams, self.last_token.shape[0], self.last_token.device)
        self.codec_state.reset(mask)
        self.cache.reset(mask)
        self.last_token.masked_fill_(mask, self.model.config.bos_token_id)
        self.step_index.masked_fill_(mask, 0)
        self._lockstep = False

    @torch.inference_mode()
    def start(self) -> torch.Tensor:
        """Step 0: BOS in, first token out [B]."""
        assert self._lockstep and self.steps == 0, "start() opens every stream; call reset() first"
        self.steps += 1
        if self._per_frame is not None:  # step 0 is the BOS step whatever the frame holds
            silence = torch.zeros(self._ids.shape[0], self.model.config.frame_size, device=self._ids.device)
            return self._per_frame(silence, self._everyone).clone()  # a graph's output is overwritten
        return self._decode_codes(self._bos[1:].expand(self._ids.shape[0], -1))

    @torch.inference_mode()
    def step(self, frames: torch.Tensor) -> torch.Tensor:
        """n whole frames [B, n * frame_size] float32 in (each heard by one step), n tokens [B, n] out.

        The codec encodes up to max_frames frames per call (weights read once for all of them);
        the decoder then steps through their codes in order. With `per_frame` (a GPU), each frame
        is one replay of the captured masked step instead.
        """
        assert self._lockstep and self.steps > 0, "start() must run before the first frame"
        frames = frames.to(device=self._ids.device, dtype=torch.float32)
        tokens = []
        if self._per_frame is not None:
            fs = self.model.config.frame_size
            for at in range(0, frames.shape[1], fs):
                self.steps += 1
                tokens.append(self._per_frame(frames[:, at:at + fs], self._everyone).clone())
            return torch.stack(tokens, dim=1)
        if self._compiled_frame is not None and frames.shape[1] == self.model.config.frame_size:
            self.steps += 1
            self._frame_in.copy_(frames)
            return self._compiled_frame(self._frame_in)[:, None]
        for at in range(0, frames.shape[1], self._chunk):
            codes = self.model.codec_model.encode_frames(
                frames[:, at:at + self._chunk], self.codec_state, self._num_codebooks)  # [B, n, K]
            for i in range(codes.shape[1]):
                self.steps += 1
                tokens.append(self._decode_codes(codes[:, i]))
        return torch.stack(tokens, dim=1)

    def _decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """A lockstep decoder step (compiled when asked): codes [B, K] -> tokens [B]."""
        if self._compiled_decode is None:
            return self._decode(codes, None)
        self._codes_in.copy_(codes)
        return self._compiled_decode(self._codes_in)

    def _one_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """A lockstep step from one frame [B, F]: codec and decoder, compiled together."""
        codes = self.model.codec_model.encode_frames(frame, self.codec_state, self._num_codebooks)  # [B, 1, K]
        return self._decode(codes[:, 0], None)

    def _decode_heard(self, codes: torch.Tensor) -> torch.Tensor:
        return self._decode(codes, None)

    @torch.inference_mode()
    def step_masked(self, frame: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """One step of the streams where `active` [B] is True: frame [B, frame_size] -> tokens [B].

        An active stream at step 0 takes its BOS step and its frame row is ignored; later steps
        hear their row. Inactive streams keep all their state, and their token is their last one.
        """
        self._lockstep = False
        return self._masked(frame, active)

    def _masked(self, frame: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """step_masked's work: fixed shapes, no host sync, state changed in place only (capturable)."""
        hearing = active & (self.step_index > 0)  # [B]
        codes = self.model.codec_model.encode_frames(frame, self.codec_state, self._num_codebooks, hearing)  # [B, 1, K]
        return self._decode(codes[:, 0], active)

    def _decode(self, codes: torch.Tensor, active: torch.Tensor | None) -> torch.Tensor:
        """One decoder step from the audio codes [B, K] just heard; BOS ids for streams at step 0."""
        at_bos = (self.step_index == 0)[:, None]  # [B, 1]
        heard = torch.cat((self.last_token[:, None], codes), dim=1)  # [B, 1 + K]
        self._ids[:, 0] = torch.where(at_bos, self._bos, heard)
        token = self.model.step_logits(self._ids, self.cache, active).argmax(dim=-1)  # [B]
        if active is None:
            self.step_index += 1
        else:
            token = torch.where(active, token, self.last_token)
            self.step_index += active
        self.last_token.copy_(token)
        return token


@torch.inference_mode()
def generate(model: KyutaiSpeechToTextForConditionalGeneration, input_values: torch.Tensor,
             max_new_tokens: int | None = None) -> torch.Tensor:
    """input_values [B, 1, L] or [B, L] -> token ids [B, 1 + steps], BOS first."""
    audio = input_values.reshape(input_values.shape[0], -1)  # [B, L]
    fs = model.config.frame_size
    steps = steps_for(audio.shape[-1], fs)
    if max_new_tokens is not None:
        steps = min(steps, max_new_tokens)
    stepper = FrameStepper(model, audio.shape[0])
    out = torch.empty(audio.shape[0], 1 + steps, dtype=torch.long, device=model.device)
    out[:, 0] = model.config.bos_token_id
    if steps == 0:
        return out
    out[:, 1] = stepper.start()
    if steps > 1:  # steps 1 .. steps-1 hear frames 0 .. steps-2
        out[:, 2:] = stepper.step(audio[:, :(steps - 1) * fs])
    return out
