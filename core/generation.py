"""The per-frame step and the frame schedule: the only place either exists.

Schedule (the one transformers' `generate` follows with `audio_window_size=None`): a padded clip
of L samples gets N = L // frame_size steps. Step 0 feeds the BOS text id with the audio BOS in
every codebook; step t >= 1 feeds the text token of step t - 1 with the codes of frame t - 1.
So frames 0 .. N-2 are heard and the last whole frame never is. Output: BOS, then one token per step.

`FrameStepper` runs that step for a batch of streams; `generate` (offline, the documented API) and
`StreamingTranscriber` (live) both drive it.
"""

from __future__ import annotations

import torch

from .modeling import KyutaiSpeechToTextForConditionalGeneration


def steps_for(total_samples: int, frame_size: int) -> int:
    """Decoder steps a padded stream of `total_samples` gets (one per whole frame)."""
    return total_samples // frame_size


class FrameStepper:
    """Codec + decoder state for `batch` streams stepped together, one frame at a time."""

    def __init__(self, model: KyutaiSpeechToTextForConditionalGeneration, batch: int):
        cfg = model.config
        self.model = model
        self._chunk = cfg.frame_size * model.codec_model.max_frames  # samples per codec call
        self.codec_state = model.codec_model.new_state(batch)
        self.cache = model.model.new_cache(batch)
        device = model.device
        self._ids = torch.empty(batch, 1, 1 + cfg.num_codebooks, dtype=torch.long, device=device)
        self._bos = torch.tensor([cfg.bos_token_id] + [cfg.audio_bos_token_id] * cfg.num_codebooks, device=device)
        self._num_codebooks = cfg.num_codebooks
        self.last_token = torch.full((batch,), cfg.bos_token_id, dtype=torch.long, device=device)
        self.steps = 0

    @torch.inference_mode()  # the state tensors are inference tensors once stepped
    def reset(self) -> None:
        self.codec_state.reset()
        self.cache.reset()
        self.last_token.fill_(self.model.config.bos_token_id)
        self.steps = 0

    @torch.inference_mode()
    def start(self) -> torch.Tensor:
        """Step 0: BOS in, first token out [B]."""
        assert self.steps == 0, "start() opens a stream; call reset() first"
        self._ids[:] = self._bos
        return self._decode()

    @torch.inference_mode()
    def step(self, frames: torch.Tensor) -> torch.Tensor:
        """n whole frames [B, n * frame_size] float32 in (each heard by one step), n tokens [B, n] out.

        The codec encodes up to max_frames frames per call (weights read once for all of them);
        the decoder then steps through their codes in order.
        """
        assert self.steps > 0, "start() must run before the first frame"
        frames = frames.to(device=self._ids.device, dtype=torch.float32)
        tokens = []
        for at in range(0, frames.shape[1], self._chunk):
            codes = self.model.codec_model.encode_frames(
                frames[:, at:at + self._chunk], self.codec_state, self._num_codebooks)  # [B, n, K]
            for i in range(codes.shape[1]):
                self._ids[:, 0, 0] = self.last_token
                self._ids[:, 0, 1:] = codes[:, i]
                tokens.append(self._decode())
        return torch.stack(tokens, dim=1)

    def _decode(self) -> torch.Tensor:
        logits = self.model.step_logits(self._ids, self.cache)  # [B, V]
        self.last_token = logits.argmax(dim=-1)
        self.steps += 1
        return self.last_token


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
