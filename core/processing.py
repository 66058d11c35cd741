"""Processor: the feature extractor and the tokenizer behind one object, as documented."""

from __future__ import annotations

import os
from typing import Any

import torch

from .feature_extraction import BatchFeature, KyutaiSpeechToTextFeatureExtractor
from .tokenizer import TextTokenizer


class KyutaiSpeechToTextProcessor:
    def __init__(self, feature_extractor: KyutaiSpeechToTextFeatureExtractor, tokenizer: TextTokenizer):
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, **hub_kwargs) -> "KyutaiSpeechToTextProcessor":
        from .hub import resolve_checkpoint

        folder = resolve_checkpoint(source, **hub_kwargs)
        return cls(KyutaiSpeechToTextFeatureExtractor.from_pretrained(folder),
                   TextTokenizer.from_file(folder / "tokenizer.json"))

    def __call__(self, audio: Any = None, *, sampling_rate: int | None = None, return_tensors: str | None = "pt",
                 padding: bool | str = True, **kwargs) -> BatchFeature:
        if audio is None:
            raise ValueError("the processor needs audio: processor(audio_array or [arrays], ...)")
        rate = sampling_rate if sampling_rate is not None else self.feature_extractor.sampling_rate
        return self.feature_extractor(audio, sampling_rate=rate, return_tensors=return_tensors, padding=padding, **kwargs)

    def batch_decode(self, sequences, skip_special_tokens: bool = True, **unused) -> list[str]:
        if isinstance(sequences, torch.Tensor):
            sequences = sequences.tolist()
        return self.tokenizer.batch_decode(sequences, skip_special_tokens)

    def decode(self, ids, skip_special_tokens: bool = True, **unused) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return self.tokenizer.decode(ids, skip_special_tokens)
