"""Turns raw 24 kHz clips into the padded batch `generate` expects, exactly as transformers does.

Each clip is right-padded to the longest of the batch, then every row gets
`audio_silence_prefix_seconds` of silence on the left and `audio_delay_seconds + 1` s on the right:
the model writes a word about `audio_delay_seconds` after hearing it, so the tail lets it finish.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import AudioError, CheckpointError


def silence_padding(prefix_s: float, delay_s: float, sampling_rate: int) -> tuple[int, int]:
    """(left, right) padding in samples; the same arithmetic as transformers, float rounding included."""
    return int(prefix_s * sampling_rate), int((delay_s + 1.0) * sampling_rate)


class BatchFeature(dict):
    """A dict of arrays with attribute access and `.to(device)`, like transformers' BatchFeature."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> "BatchFeature":
        for key, value in self.items():
            if isinstance(value, torch.Tensor):
                self[key] = value.to(device=device, dtype=dtype if (dtype and value.is_floating_point()) else None)
        return self


class KyutaiSpeechToTextFeatureExtractor:
    model_input_names = ["input_values", "padding_mask"]

    def __init__(self, feature_size: int = 1, sampling_rate: int = 24000, padding_value: float = 0.0,
                 chunk_length_s: float | None = None, overlap: float | None = None,
                 audio_delay_seconds: float = 0.0, audio_silence_prefix_seconds: float = 0.0, **unused):
        if feature_size != 1:
            raise ValueError("only mono audio (feature_size = 1) is supported")
        self.feature_size = feature_size
        self.sampling_rate = sampling_rate
        self.padding_value = padding_value
        self.chunk_length_s = chunk_length_s
        self.overlap = overlap
        self.audio_delay_seconds = float(audio_delay_seconds or 0.0)
        self.audio_silence_prefix_seconds = float(audio_silence_prefix_seconds or 0.0)

    @property
    def chunk_length(self) -> int | None:
        return None if self.chunk_length_s is None else int(self.chunk_length_s * self.sampling_rate)

    @property
    def chunk_stride(self) -> int | None:
        if self.chunk_length_s is None or self.overlap is None:
            return None
        return max(1, int((1.0 - self.overlap) * self.chunk_length))

    @property
    def padding(self) -> tuple[int, int]:
        return silence_padding(self.audio_silence_prefix_seconds, self.audio_delay_seconds, self.sampling_rate)

    @property
    def word_offset_seconds(self) -> float:
        """What to subtract from a step's time to get the caller's audio time: prefix plus text delay."""
        return self.padding[0] / self.sampling_rate + self.audio_delay_seconds

    def __call__(self, raw_audio, padding: bool | str | None = True, truncation: bool = False,
                 max_length: int | None = None, return_tensors: str | None = None,
                 sampling_rate: int | None = None, **unused) -> BatchFeature:
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise AudioError(f"audio is at {sampling_rate} Hz but the model takes {self.sampling_rate} Hz: "
                             f"resample it first")
        if padding and truncation:
            raise ValueError("padding and truncation cannot both be set")
        padding = True if padding is None else padding
        clips = self._as_clips(raw_audio)
        lengths = [len(c) for c in clips]
        target = None
        if padding in (True, "longest"):
            target = max(lengths)
        elif padding == "max_length":
            target = max_length if max_length is not None else max(lengths)
        if self.chunk_stride is not None and self.chunk_length is not None and max_length is None and padding:
            steps = math.ceil(max(lengths) / self.chunk_stride)
            target = (steps - 1) * self.chunk_stride + self.chunk_length
        if truncation and max_length is not None:
            clips = [c[:max_length] for c in clips]
            lengths = [len(c) for c in clips]
            target = max_length if padding else None
        if target is None:
            if len(set(lengths)) > 1 and return_tensors:
                raise ValueError("clips of different lengths need padding=True to be batched")
            target = max(lengths)
        left, right = self.padding
        values = np.full((len(clips), left + target + right), self.padding_value, dtype=np.float32)
        mask = np.zeros((len(clips), left + target + right), dtype=np.int32)
        for row, clip in enumerate(clips):
            clip = clip[:target]
            values[row, left:left + len(clip)] = clip
            mask[row, left:left + len(clip)] = 1
        out = BatchFeature(input_values=values[:, None, :])  # [B, 1, L]
        if padding:
            out["padding_mask"] = mask  # [B, L]
        if return_tensors in ("pt", "torch"):
            for key in list(out):
                out[key] = torch.from_numpy(out[key])
        elif return_tensors not in (None, "np"):
            raise ValueError(f"return_tensors={return_tensors!r} is not supported (use 'pt' or 'np')")
        return out

    def _as_clips(self, raw_audio) -> list[np.ndarray]:
        if isinstance(raw_audio, torch.Tensor):
            raw_audio = raw_audio.detach().cpu().numpy()
        batched = isinstance(raw_audio, (list, tuple)) and len(raw_audio) > 0 and \
            isinstance(raw_audio[0], (np.ndarray, list, tuple, torch.Tensor))
        if isinstance(raw_audio, np.ndarray) and raw_audio.ndim == 2:
            items = list(raw_audio)
        elif batched:
            items = list(raw_audio)
        else:
            items = [raw_audio]
        clips = []
        for item in items:
            if isinstance(item, torch.Tensor):
                item = item.detach().cpu().numpy()
            clip = np.asarray(item, dtype=np.float32)
            if clip.ndim != 1:
                raise AudioError(f"expected mono audio of shape (samples,), got shape {clip.shape}")
            if clip.size == 0:
                raise AudioError("an audio clip is empty (0 samples)")
            if not np.isfinite(clip).all():
                raise AudioError("audio contains NaN or infinite samples")
            clips.append(clip)
        if not clips:
            raise AudioError("no audio was given")
        return clips

    def to_dict(self) -> dict:
        return {
            "feature_extractor_type": "KyutaiSpeechToTextFeatureExtractor", "feature_size": self.feature_size,
            "sampling_rate": self.sampling_rate, "padding_value": self.padding_value,
            "chunk_length_s": self.chunk_length_s, "overlap": self.overlap,
            "audio_delay_seconds": self.audio_delay_seconds,
            "audio_silence_prefix_seconds": self.audio_silence_prefix_seconds,
            "padding_side": "right", "return_attention_mask": True,
        }

    @classmethod
    def from_dict(cls, raw: dict) -> "KyutaiSpeechToTextFeatureExtractor":
        return cls(**raw)

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, **hub_kwargs) -> "KyutaiSpeechToTextFeatureExtractor":
        from .hub import resolve_checkpoint

        path = resolve_checkpoint(source, **hub_kwargs) / "preprocessor_config.json"
        if not path.is_file():
            raise CheckpointError(f"{path} is missing: the checkpoint folder needs its preprocessor_config.json")
        return cls.from_dict(json.loads(path.read_text()))

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "preprocessor_config.json").write_text(json.dumps(self.to_dict(), indent=2))
