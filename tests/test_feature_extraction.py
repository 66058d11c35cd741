"""Feature extractor and processor: the same arrays as transformers, clear errors otherwise."""

import numpy as np
import pytest
import torch

from core import AudioError, KyutaiSpeechToTextFeatureExtractor, KyutaiSpeechToTextProcessor


def clip(n, seed=0):
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


@pytest.mark.parametrize("delay, prefix", [(0.5, 0.0), (2.5, 1.0), (0.3, 0.15), (0.07, 0.013)])
@pytest.mark.parametrize("inputs", [
    [clip(1000)], [clip(37_123, 1), clip(5, 2), clip(24_000, 3)],
])
def test_matches_transformers(delay, prefix, inputs):
    from transformers import KyutaiSpeechToTextFeatureExtractor as Theirs

    ours = KyutaiSpeechToTextFeatureExtractor(audio_delay_seconds=delay, audio_silence_prefix_seconds=prefix)
    theirs = Theirs(audio_delay_seconds=delay, audio_silence_prefix_seconds=prefix)
    audio = inputs[0] if len(inputs) == 1 else inputs
    got = ours(audio, sampling_rate=24000, return_tensors="pt")
    want = theirs(audio, sampling_rate=24000, return_tensors="pt")
    assert set(got) == set(want) == {"input_values", "padding_mask"}
    assert torch.equal(got["input_values"], want["input_values"])
    assert torch.equal(got["padding_mask"].long(), want["padding_mask"].long())
    assert got.input_values.shape[1] == 1 and got.input_values.dtype == torch.float32


def test_wrong_sampling_rate_is_an_error():
    with pytest.raises(AudioError, match="16000 Hz"):
        KyutaiSpeechToTextFeatureExtractor()(clip(100), sampling_rate=16000)


@pytest.mark.parametrize("bad, message", [
    (np.zeros(0, np.float32), "empty"),
    (np.array([0.1, np.nan], np.float32), "NaN"),
    (np.zeros((2, 3, 4), np.float32), "mono"),
])
def test_bad_audio_is_refused(bad, message):
    with pytest.raises(AudioError, match=message):
        KyutaiSpeechToTextFeatureExtractor()([bad] if bad.ndim == 3 else bad)


def test_batch_feature_moves_and_keeps_attribute_access():
    batch = KyutaiSpeechToTextFeatureExtractor()([clip(10), clip(20)], return_tensors="pt")
    assert batch.to("cpu") is batch
    assert batch.input_values.shape == (2, 1, 20 + 24000)
    assert batch["padding_mask"].sum(-1).tolist() == [10, 20]


def test_processor_from_checkpoint(tiny_checkpoint):
    folder = tiny_checkpoint("window")
    processor = KyutaiSpeechToTextProcessor.from_pretrained(folder)
    fe = processor.feature_extractor
    assert (fe.audio_delay_seconds, fe.audio_silence_prefix_seconds) == (0.3, 0.15)
    out = processor(clip(4800))
    assert isinstance(out["input_values"], torch.Tensor)
    assert out["input_values"].shape[-1] == int(0.15 * 24000) + 4800 + int(1.3 * 24000)
