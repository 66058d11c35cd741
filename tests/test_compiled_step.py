"""The CPU step compiled with torch.compile: same results as eager, no recompiles, a safe fallback."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch._dynamo
import torch._functorch.config
import torch._inductor.config as inductor_config
from torch._dynamo.utils import counters

from core import KyutaiSpeechToTextProcessor
from core import compiled_step, native
from core.compiled_step import compiler_found
from core.generation import FrameStepper
from core.mimi import Codebook
from core.streaming import StreamingTranscriber
from tests.markers import needs_int4
from tests.signals import noise
from tests.step_clock import StepClock

pytestmark = pytest.mark.skipif(not compiler_found(), reason="torch.compile needs a C++ compiler (g++)")

FRAME = 1920


def stream_tokens(stream: StreamingTranscriber, clip: np.ndarray, pushes: list[int]) -> list[int]:
    stream.reset()
    at = 0
    for n in pushes:
        stream.push(clip[at:at + n])
        at += n
    stream.push(clip[at:])
    stream.flush()
    return stream.tokens[0]


@pytest.fixture(scope="module")
def fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def test_compiled_float32_stream_equals_eager_and_offline(tiny_checkpoint, fresh_dynamo):
    folder = tiny_checkpoint("gqa")
    eager = StreamingTranscriber.from_pretrained(folder)
    compiled = StreamingTranscriber.from_pretrained(folder, compile=True)
    processor = KyutaiSpeechToTextProcessor.from_pretrained(folder)
    clip = noise(3.0, seed=41)
    # frame by frame (the live graph), then blocks of several frames (eager codec, compiled decoder)
    pushes = [FRAME] * 12 + [5 * FRAME, 3 * FRAME + 700, 1300]
    tokens = stream_tokens(compiled, clip, pushes)
    assert tokens == stream_tokens(eager, clip, pushes)
    assert tokens == eager.model.generate(**processor(clip))[0].tolist()
    assert compiled._stepper._compiled_frame.compiled and compiled._stepper._compiled_decode.compiled


def stepper_tokens(stepper: FrameStepper, clip: np.ndarray) -> list[int]:
    frames = torch.from_numpy(clip[: len(clip) // FRAME * FRAME])[None]
    return [int(stepper.start()[0])] + stepper.step(frames)[0].tolist()


def test_auto_compiles_only_a_step_that_would_fall_behind(tiny_checkpoint, fresh_dynamo, monkeypatch):
    folder = tiny_checkpoint("gqa")
    eager = StreamingTranscriber.from_pretrained(folder)
    clip = noise(2.0, seed=43)
    pushes = [FRAME] * 6 + [4 * FRAME]
    expected = stream_tokens(eager, clip, pushes)
    budget = 0.8 * FRAME / 24_000  # the live budget: 80 % of a frame's 80 ms
    announced = []
    # a step just inside the budget keeps up uncompiled: "auto" compiles nothing
    clock = StepClock(monkeypatch, 0.9 * budget)
    fast = StreamingTranscriber.from_pretrained(folder, compile="auto", on_compile=lambda: announced.append(1))
    assert not fast.compiled and announced == []
    assert fast._stepper.eager_frame_s == pytest.approx(0.9 * budget) and clock.calls > 1
    assert stream_tokens(fast, clip, pushes) == expected
    # the frames it timed leave no trace in the state it hands over
    timed = FrameStepper(eager.model, 1, compile="auto")
    assert timed.steps == 0 and timed.eager_frame_s is not None
    assert stepper_tokens(timed, clip) == stepper_tokens(FrameStepper(eager.model, 1), clip)
    # one just past it would fall behind: "auto" compiles, says so once, and streams the same tokens
    clock.step_s = (1.1 * budget,)
    slow = StreamingTranscriber.from_pretrained(folder, compile="auto", on_compile=lambda: announced.append(1))
    assert slow.compiled and announced == [1]
    assert slow._stepper.eager_frame_s == pytest.approx(1.1 * budget)
    assert stream_tokens(slow, clip, pushes) == expected


def test_compile_takes_true_false_or_auto(tiny_checkpoint):
    model = StreamingTranscriber.from_pretrained(tiny_checkpoint("gqa")).model
    with pytest.raises(ValueError, match="compile must be True, False or 'auto'"):
        FrameStepper(model, 1, compile="yes")


class LogitTap:
    """Test hook on a model's decoder step: each step's logits [B, V] are copied into `last`.

    The copy is in place, so a compiled step makes it too (it is traced with the step); read `last`
    between steps.
    """

    def __init__(self, model):
        self.last = torch.zeros(1, model.config.vocab_size)
        plain = model.step_logits

        def step_logits(ids, cache, active=None):
            logits = plain(ids, cache, active)
            self.last.copy_(logits)
            return logits

        model.step_logits = step_logits


def forced_logits(stepper: FrameStepper, tap: LogitTap, clip: np.ndarray, pushes: list[int],
                  fed: list[int]) -> torch.Tensor:
    """Logits [steps, V] of every step of `clip` (pushed `pushes` frames at a time), teacher-forced:
    step i is fed `fed[i]` as its previous token, whatever the stepper chose at step i - 1."""
    rows = []

    def forcing(call):
        def forced(*args):
            stepper.last_token.fill_(fed[len(rows)])
            out = call(*args)
            rows.append(tap.last[0].clone())
            return out
        return forced

    # every decoder step goes through one of these two: _decode_codes (start, and each frame of a
    # block; compiled or not) or, compiled, the lone-frame graph (codec and decoder in one)
    lone_frame = stepper._compiled_frame
    stepper._decode_codes = forcing(stepper._decode_codes)
    if lone_frame is not None:
        stepper._compiled_frame = forcing(lone_frame)
    try:
        stepper.reset()
        stepper.start()
        audio, at = torch.from_numpy(clip)[None], 0
        for n in pushes:
            stepper.step(audio[:, at:at + n * FRAME])
            at += n * FRAME
    finally:
        del stepper._decode_codes
        stepper._compiled_frame = lone_frame
        stepper.reset()
    return torch.stack(rows)


@pytest.fixture(scope="module")
def compiled_quantized(tiny_checkpoint, fresh_dynamo):
    """Factory: mode -> (compiled StreamingTranscriber on "gqa", its LogitTap, graphs its build compiled)."""
    from core.feature_extraction import KyutaiSpeechToTextFeatureExtractor
    from core.modeling import KyutaiSpeechToTextForConditionalGeneration
    from core.tokenizer import TextTokenizer

    built = {}

    def get(mode):
        if mode not in built:
            folder = tiny_checkpoint("gqa")
            model = KyutaiSpeechToTextForConditionalGeneration.from_pretrained(folder, quantize=mode)
            tap = LogitTap(model)  # before the step is compiled: the graphs then include the copy
            graphs = counters["stats"]["unique_graphs"]
            stream = StreamingTranscriber(model, TextTokenizer.from_file(folder / "tokenizer.json"),
                                          KyutaiSpeechToTextFeatureExtractor.from_pretrained(folder), compile=True)
            built[mode] = (stream, tap, counters["stats"]["unique_graphs"] - graphs)
        return built[mode]

    return get


@pytest.mark.parametrize("mode", ["int8", pytest.param("int4", marks=needs_int4)])
def test_compiled_quantized_stream_runs_without_recompiling(compiled_quantized, mode):
    graphs = counters["stats"]["unique_graphs"]
    stream, _, built_graphs = compiled_quantized(mode)
    assert built_graphs == 2  # lone-frame and decoder-step graphs, built up front
    clip = noise(2.5, seed=42)
    first = stream_tokens(stream, clip, [FRAME] * 10 + [4 * FRAME])
    again = stream_tokens(stream, clip, [FRAME] * 10 + [4 * FRAME])  # reset(), same audio
    assert counters["stats"]["unique_graphs"] - graphs == built_graphs  # streaming compiled nothing more
    assert again == first
    # compiled, the ring is int8 with its scales, whether or not the CPU has native bfloat16
    assert stream._stepper.cache.keys[0].dtype == torch.int8 and stream._stepper.cache.scales(0) is not None
    if native.unavailable_reason() is None:  # and the kernels search the codebooks' int8 copies
        assert all(b.search is not None for b in stream.model.codec_model.modules() if isinstance(b, Codebook))


# Bounds on the per-step logits of the compiled quantized step against the eager one, both fed the
# same tokens (teacher forcing), measured on 8 clips of 51 steps each with "gqa" (two seeds) in int8
# and int4, "base" in int8 and "window" in int4 (logits' spread ~4.8, top-1 margins' median ~2.3):
# - against eager on the compiled step's own int8 ring: the same function, up to fused rounding.
#   The median step differs by <= 1e-5; about one step in 400 by more than 1e-3 (at most 0.15), where
#   that rounding tips a key or value over to its next int8 value.
SAME_RING_MEDIAN = 1e-4
SAME_RING_MAX = 0.5
# - against eager as it streams (a bfloat16 ring): the compiled step's int8 ring moves every logit,
#   by at most 0.79 (int8) and 0.52 (int4). So wherever eager's top-1 leads by more than twice this
#   bound, the compiled step picks the same token.
STREAMED_MAX = 1.5


@pytest.mark.parametrize("mode", ["int8", pytest.param("int4", marks=needs_int4)])
def test_compiled_quantized_step_logits_stay_within_bounds_of_eager(tiny_checkpoint, compiled_quantized, mode):
    from core.modeling import KyutaiSpeechToTextForConditionalGeneration
    from core.quantize import compiled_kv_dtype

    stream, tap, _ = compiled_quantized(mode)
    compiled = stream._stepper
    model = KyutaiSpeechToTextForConditionalGeneration.from_pretrained(tiny_checkpoint("gqa"), quantize=mode)
    eager_tap = LogitTap(model)
    streamed = FrameStepper(model, 1)  # eager, as a stream runs it
    same_ring = FrameStepper(model, 1)  # eager over the ring the compiled step keeps
    same_ring.cache = model.model.new_cache(1, dtype=compiled_kv_dtype(model))
    assert compiled.compiled and same_ring.cache.keys[0].dtype == compiled.cache.keys[0].dtype == torch.int8
    assert streamed.cache.keys[0].dtype.is_floating_point  # bfloat16 in int8 and int4 modes
    clip = noise(4.0, seed=42)
    pushes = [1] * 24 + [3] * 8 + [2] * 1  # lone frames (the live graph), then blocks (the decoder graph)
    tokens = stepper_tokens(streamed, clip)  # what eager transcribes: the tokens every run is fed
    fed = [model.config.bos_token_id] + tokens[:-1]
    assert sum(pushes) + 1 == len(tokens)

    ours = forced_logits(compiled, tap, clip, pushes, fed)
    reference = forced_logits(same_ring, eager_tap, clip, pushes, fed)
    as_streamed = forced_logits(streamed, eager_tap, clip, pushes, fed)
    assert ours.shape == reference.shape == as_streamed.shape == (len(tokens), model.config.vocab_size)
    assert as_streamed.argmax(-1).tolist() == tokens  # forcing eager with its own tokens changes nothing
    step_diff = (ours - reference).abs().amax(-1)  # [steps]: each step's largest logit difference
    assert step_diff.median() < SAME_RING_MEDIAN, f"the median step moved by {step_diff.median():.2e}"
    assert step_diff.max() < SAME_RING_MAX, f"step {step_diff.argmax()} moved by {step_diff.max():.3f}"
    streamed_diff = (ours - as_streamed).abs().amax(-1)
    assert streamed_diff.max() < STREAMED_MAX, f"step {streamed_diff.argmax()} moved by {streamed_diff.max():.3f}"


def test_two_compiled_streams_interleaved_each_hear_their_own_audio(tiny_checkpoint, fresh_dynamo):
    # warm calls skip guard evaluation: a second stepper (same code, other model and buffers)
    # must still run its own graph, not the first one's
    folders = [tiny_checkpoint("gqa", seed=0), tiny_checkpoint("gqa", seed=3)]
    compiled = [StreamingTranscriber.from_pretrained(f, compile=True) for f in folders]
    clips = [noise(2.0, seed=43), noise(2.0, seed=44)]
    for stream in compiled:
        stream.reset()
    for at in range(0, len(clips[0]) - FRAME + 1, FRAME):  # frame by frame, alternating streams
        for stream, clip in zip(compiled, clips):
            stream.push(clip[at:at + FRAME])
    for stream in compiled:
        stream.flush()
    for folder, stream, clip in zip(folders, compiled, clips):
        eager = StreamingTranscriber.from_pretrained(folder)
        assert stream.tokens[0] == stream_tokens(eager, clip, [FRAME] * (len(clip) // FRAME))
    assert compiled[0].tokens[0] != compiled[1].tokens[0]  # the two models do differ


@pytest.mark.parametrize("cxx", ["/nonexistent/c++", "false"], ids=["no-compiler", "compiler-fails"])
def test_a_failed_compile_falls_back_to_eager(tiny_checkpoint, caplog, monkeypatch, cxx):
    torch._dynamo.reset()
    monkeypatch.setattr(compiled_step, "_told_no_compiler", False)  # it says so once per process
    folder = tiny_checkpoint("gqa")
    clip = noise(1.5, seed=43)
    # no cache: a kernel cached by an earlier test would spare the compiler
    with inductor_config.patch({"fx_graph_cache": False, "cpp.cxx": (cxx,)}), \
            torch._functorch.config.patch(enable_autograd_cache=False), \
            caplog.at_level(logging.WARNING, logger="core.compiled_step"):
        compiled = StreamingTranscriber.from_pretrained(folder, compile=True)  # compiles (or not) here
        tokens = stream_tokens(compiled, clip, [FRAME] * 6)
    assert not compiled._stepper._compiled_frame.compiled
    assert any("running it uncompiled" in r.getMessage() for r in caplog.records)
    assert tokens == stream_tokens(StreamingTranscriber.from_pretrained(folder), clip, [FRAME] * 6)
    torch._dynamo.reset()
