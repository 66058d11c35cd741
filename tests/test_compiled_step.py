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
from core import compiled_step, generation, native
from core.compiled_step import compiler_found
from core.generation import FrameStepper
from core.mimi import Codebook
from core.streaming import StreamingTranscriber
from tests.markers import needs_int4
from tests.signals import noise

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
    announced = []
    # the tiny model steps in milliseconds: it keeps up uncompiled, so "auto" compiles nothing
    fast = StreamingTranscriber.from_pretrained(folder, compile="auto", on_compile=lambda: announced.append(1))
    assert not fast.compiled and announced == []
    assert 0 < fast._stepper.eager_frame_s < generation.KEEP_UP_SHARE * FRAME / 24000
    assert stream_tokens(fast, clip, pushes) == expected
    # the frames it timed leave no trace in the state it hands over
    timed = FrameStepper(eager.model, 1, compile="auto")
    assert timed.steps == 0 and timed.eager_frame_s is not None
    assert stepper_tokens(timed, clip) == stepper_tokens(FrameStepper(eager.model, 1), clip)
    # a budget no step can meet: "auto" compiles, says so once, and streams the same tokens
    monkeypatch.setattr(generation, "KEEP_UP_SHARE", 0.0)
    slow = StreamingTranscriber.from_pretrained(folder, compile="auto", on_compile=lambda: announced.append(1))
    assert slow.compiled and announced == [1]
    assert stream_tokens(slow, clip, pushes) == expected


def test_compile_takes_true_false_or_auto(tiny_checkpoint):
    model = StreamingTranscriber.from_pretrained(tiny_checkpoint("gqa")).model
    with pytest.raises(ValueError, match="compile must be True, False or 'auto'"):
        FrameStepper(model, 1, compile="yes")


@pytest.mark.parametrize("mode", ["int8", pytest.param("int4", marks=needs_int4)])
def test_compiled_quantized_stream_runs_without_recompiling(tiny_checkpoint, fresh_dynamo, mode):
    folder = tiny_checkpoint("gqa")
    graphs = counters["stats"]["unique_graphs"]
    stream = StreamingTranscriber.from_pretrained(folder, quantize=mode, compile=True)
    assert counters["stats"]["unique_graphs"] - graphs == 2  # lone-frame and decoder-step graphs, built up front
    clip = noise(2.5, seed=42)
    first = stream_tokens(stream, clip, [FRAME] * 10 + [4 * FRAME])
    again = stream_tokens(stream, clip, [FRAME] * 10 + [4 * FRAME])  # reset(), same audio
    assert counters["stats"]["unique_graphs"] - graphs == 2  # streaming compiled nothing more
    assert again == first
    # compiled, the ring is int8 with its scales, whether or not the CPU has native bfloat16
    assert stream._stepper.cache.keys[0].dtype == torch.int8 and stream._stepper.cache.scales(0) is not None
    if native.unavailable_reason() is None:  # and the kernels search the codebooks' int8 copies
        assert all(b.search is not None for b in stream.model.codec_model.modules() if isinstance(b, Codebook))
    eager = StreamingTranscriber.from_pretrained(folder, quantize=mode)
    reference = stream_tokens(eager, clip, [FRAME] * 10 + [4 * FRAME])
    # fused kernels round differently and quantization amplifies it: close, not identical
    assert np.mean(np.array(first) == np.array(reference)) > 0.8


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
