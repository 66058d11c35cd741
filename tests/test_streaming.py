"""StreamingTranscriber: any chunking gives offline tokens; batches, resets, bounded state."""

import tracemalloc

import numpy as np
import pytest
import torch

from core import AudioError, KyutaiSpeechToTextProcessor, StreamingTranscriber
from core.words import WordSegmenter
from tests.markers import needs_int4
from tests.oracle import VARIANTS, oracle_generate
from tests.signals import noise
from tests.step_clock import StepClock


def random_chunks(audio: np.ndarray, rng: np.random.Generator):
    """Chunks of random sizes, with single samples and empty chunks sprinkled in."""
    at = 0
    while at < len(audio):
        kind = rng.integers(0, 6)
        n = 0 if kind == 0 else 1 if kind == 1 else int(rng.integers(2, 6000))
        yield audio[at:at + n]
        at += n


@pytest.fixture(scope="module")
def engines(tiny_checkpoint):
    cache = {}

    def get(variant, batch_size=1):
        key = (variant, batch_size)
        if key not in cache:
            folder = tiny_checkpoint(variant)
            cache[key] = (StreamingTranscriber.from_pretrained(folder, batch_size=batch_size),
                          KyutaiSpeechToTextProcessor.from_pretrained(folder))
        return cache[key]

    return get


def offline_tokens(stream: StreamingTranscriber, processor, clip) -> list[int]:
    return stream.model.generate(**processor(clip))[0].tolist()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_random_chunking_equals_transformers_generate(engines, tiny_oracle, variant):
    """Streamed in random pushes (seeded), float32: the very ids transformers' generate gives the clip."""
    stream, _ = engines(variant)
    theirs, their_processor = tiny_oracle(variant)
    clip = noise(3.1, seed=11)
    stream.reset()
    pushes = 0
    for chunk in random_chunks(clip, np.random.default_rng(4)):
        stream.push(chunk)
        pushes += 1
    stream.flush()
    assert pushes > 20  # many pushes of odd sizes, not one
    assert stream.tokens[0] == oracle_generate(None, [clip], theirs, their_processor)[0].tolist()


def test_long_audio_past_every_window_equals_oracle(engines, tiny_checkpoint):
    stream, processor = engines("window")
    cfg = stream.model.config
    clip = noise(12.0, seed=2)  # 150 frames: 25x the decoder window, 60x the codec window
    assert len(clip) / cfg.frame_size > 10 * cfg.sliding_window
    stream.reset()
    for at in range(0, len(clip), 5000):
        stream.push(clip[at:at + 5000])
    stream.flush()
    assert stream.tokens[0] == oracle_generate(tiny_checkpoint("window"), [clip])[0].tolist()


def test_single_sample_pushes(engines):
    stream, processor = engines("base")
    clip = noise(0.6, seed=3)
    stream.reset()
    for sample in clip:
        assert stream.push(np.array([sample], dtype=np.float32)) is not None
    stream.flush()
    assert stream.tokens[0] == offline_tokens(stream, processor, clip)


@pytest.mark.parametrize("push", [3000, 48000], ids=["small-pushes", "one-push"])
def test_batch_of_streams_equals_streams_one_by_one(engines, push):
    # one push of 25 frames: a batch of 3 takes 10 frames per codec call where one stream takes 32
    single, _ = engines("gqa")
    batched, _ = engines("gqa", batch_size=3)
    clips = np.stack([noise(2.0, seed=s) for s in (1, 2, 3)])
    batched.reset()
    words = [[] for _ in range(3)]
    for at in range(0, clips.shape[1], push):
        for b, w in enumerate(batched.push(clips[:, at:at + push])):
            words[b] += w
    for b, w in enumerate(batched.flush()):
        words[b] += w
    for b in range(3):
        single.reset()
        alone = single.push(clips[b]) + single.flush()
        assert batched.tokens[b] == single.tokens[0]
        assert words[b] == alone


def test_words_match_segmenting_the_offline_tokens(engines):
    stream, processor = engines("base")
    clip = noise(4.0, seed=8)
    stream.reset()
    words = []
    for at in range(0, len(clip), 1234):
        words += stream.push(clip[at:at + 1234])
    words += stream.flush()
    tokens = offline_tokens(stream, processor, clip)
    seg = WordSegmenter(stream.tokenizer, 12.5, stream.delay_s)  # base: no silence prefix
    seg.end_audio(len(clip) / stream.sample_rate)  # every word ends within the audio
    expected = []
    for index, tok in enumerate(tokens[1:], start=1):
        expected += seg.feed(index, tok)
    expected += seg.flush(len(tokens))
    assert words == expected and len(words) > 3
    assert all(0.0 <= w.start <= w.end for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_reset_and_push_after_flush_start_new_streams(engines):
    stream, processor = engines("base")
    clip = noise(1.5, seed=21)
    stream.reset()
    stream.push(clip)
    stream.flush()
    first = stream.tokens[0]
    stream.push(clip)  # after flush: a fresh stream
    stream.flush()
    assert stream.tokens[0] == first
    stream.push(noise(0.7, seed=1))
    stream.reset()
    stream.push(clip)
    stream.flush()
    assert stream.tokens[0] == first


def test_flush_without_audio_still_runs_the_schedule(engines):
    stream, processor = engines("base")
    stream.reset()
    assert isinstance(stream.flush(), list)
    # the same as a clip of zero samples padded by the processor: prefix + suffix only
    suffix = int((stream.delay_s + 1.0) * 24000)
    assert len(stream.tokens[0]) == 1 + suffix // 1920


@pytest.mark.parametrize("bad, message", [
    (np.array([0.0, np.nan], dtype=np.float32), "NaN"),
    (np.array([np.inf], dtype=np.float32), "NaN or infinite"),
    (np.zeros(10, dtype=np.int16), "float"),
    (np.zeros((2, 10), dtype=np.float32), "shape"),
])
def test_bad_pushes_are_refused_without_losing_the_stream(engines, bad, message):
    stream, processor = engines("base")
    clip = noise(1.0, seed=5)
    stream.reset()
    stream.push(clip[:12000])
    with pytest.raises(AudioError, match=message):
        stream.push(bad)
    stream.push(clip[12000:])
    stream.flush()
    assert stream.tokens[0] == offline_tokens(stream, processor, clip)


def _state_tensors(stream):
    stepper = stream._stepper
    tensors = list(stepper.codec_state.conv_history) + [stepper.codec_state.fresh]
    for cache in (stepper.codec_state.kv, stepper.cache):
        tensors += cache.keys + cache.values + [cache.slot_step, cache.stream_start]
    return tensors


@pytest.mark.slow
def test_state_is_fixed_and_memory_flat_over_a_long_stream(tiny_checkpoint):
    stream = StreamingTranscriber.from_pretrained(tiny_checkpoint("window"), keep_tokens=False)
    rng = np.random.default_rng(0)
    minute = (rng.standard_normal(24000 * 60) * 0.1).astype(np.float32)
    stream.push(minute[:24000 * 10])  # warm up: every ring is full after 10 s
    before = [(t.data_ptr(), tuple(t.shape)) for t in _state_tensors(stream)]
    tracemalloc.start()
    stream.push(minute)
    base, _ = tracemalloc.get_traced_memory()
    for _ in range(4):  # four more minutes of audio
        stream.push(minute)
    grown, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    after = [(t.data_ptr(), tuple(t.shape)) for t in _state_tensors(stream)]
    assert after == before  # the same buffers, the same sizes: nothing was reallocated or grown
    assert grown - base < 64 * 1024, f"Python heap grew by {grown - base} bytes over 4 minutes of audio"
    assert stream.steps > 5 * 60 * 12.5


@pytest.mark.parametrize("mode", [dict(quantize="int8"), pytest.param(dict(quantize="int4"), marks=needs_int4),
                                  dict(dtype="bfloat16"), dict(dtype="float16")], ids=["int8", "int4", "bfloat16", "float16"])
def test_every_mode_streams_like_its_own_offline_run(tiny_checkpoint, mode):
    folder = tiny_checkpoint("gqa")
    stream = StreamingTranscriber.from_pretrained(folder, **mode)
    processor = KyutaiSpeechToTextProcessor.from_pretrained(folder)
    assert stream.model.quantization == mode.get("quantize")
    assert stream.model.dtype == getattr(torch, mode.get("dtype", "float32"))
    clip = noise(2.5, seed=13)
    for chunk in random_chunks(clip, np.random.default_rng(2)):
        stream.push(chunk)
    stream.flush()
    assert stream.tokens[0] == offline_tokens(stream, processor, clip)


# how far each mode's logits may move from float32, and how often its top-1 may differ
@pytest.mark.parametrize("mode, max_move, top1", [("int8", 0.05, 0.9), pytest.param("int4", 0.25, 0.6, marks=needs_int4)])
def test_quantized_logits_stay_close_to_float32(tiny_checkpoint, mode, max_move, top1):
    from core import KyutaiSpeechToTextForConditionalGeneration as Model

    folder = tiny_checkpoint("base")
    full, small = Model.from_pretrained(folder), Model.from_pretrained(folder, quantize=mode)
    cfg = full.config
    torch.manual_seed(0)
    ids = torch.randint(0, cfg.codec_config.codebook_size, (1, 40, 1 + cfg.num_codebooks))
    ids[..., 0] = torch.randint(0, cfg.vocab_size, (1, 40))
    with torch.no_grad():
        a, b = full(input_ids=ids).logits, small(input_ids=ids).logits
    assert (a - b).abs().max() < max_move * a.abs().max()
    assert (a.argmax(-1) == b.argmax(-1)).float().mean() > top1
    assert {p.dtype for p in small.codec_model.parameters()} == {torch.float32}


def test_unknown_quantization_is_refused(tiny_checkpoint):
    from core import ConfigError

    with pytest.raises(ConfigError, match="int3"):
        StreamingTranscriber.from_pretrained(tiny_checkpoint("base"), quantize="int3")


def test_auto_quantization_is_int8_on_the_cpu(tiny_checkpoint):
    stream = StreamingTranscriber.from_pretrained(tiny_checkpoint("base"), quantize="auto")
    assert stream.model.quantization == "int8"
    assert StreamingTranscriber.from_pretrained(tiny_checkpoint("base"), quantize="none").model.quantization is None


def test_timed_live_frames_attend_over_a_full_ring_and_leave_no_trace(engines, monkeypatch):
    stream, processor = engines("window")  # a short window: the clip below outlasts it
    clip = noise(2.0, seed=47)
    expected = offline_tokens(stream, processor, clip)
    cache = stream._stepper.cache
    seen = []
    advance = cache.advance

    def watched(length, active=None):  # what each step attends over: its mask's visible slots
        slots, positions, mask = advance(length, active)
        seen.append(int(mask.sum()))
        return slots, positions, mask

    cache.advance = watched
    # the untimed first frame takes 20 ms, the five timed ones 5, 1, 3, 2 and 10 ms
    clock = StepClock(monkeypatch, 0.020, 0.005, 0.001, 0.003, 0.002, 0.010)
    try:
        seconds = stream.live_frame_seconds()
    finally:
        del cache.advance
    assert clock.calls == 6
    assert seconds == pytest.approx(0.003)  # the median of the timed frames only (their mean: 4.2 ms)
    # start, one untimed frame, then five timed ones, each over a window's worth of slots
    assert seen[:2] == [1, 2] and seen[2:] == [cache.window] * 5
    assert 0 < stream.live_budget_s == pytest.approx(0.8 * 0.08)
    stream.push(clip)
    stream.flush()
    assert stream.tokens[0] == expected
