"""Per-stream exec mask and reset, the graph-ready masked step, and StreamPool.

Every check compares against a stream run alone (StreamingTranscriber, itself equal to `generate`
and the transformers oracle in test_streaming.py), so a masked or reset row that leaked into, or
took from, another row shows up as a different token.
"""

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from core import (AudioError, KyutaiSpeechToTextConfig, KyutaiSpeechToTextFeatureExtractor,
                  KyutaiSpeechToTextForConditionalGeneration, KyutaiSpeechToTextProcessor, StreamError,
                  StreamingTranscriber, StreamPool, TextTokenizer)
from core.cuda_graphs import GraphedStep, graphs_wanted
from core.generation import FrameStepper
from tests.signals import noise

FS = 1920


@pytest.fixture(scope="module")
def parts(tiny_checkpoint):
    """(model, tokenizer, feature extractor, processor) of a variant, loaded once."""
    loaded = {}

    def get(variant):
        if variant not in loaded:
            folder = tiny_checkpoint(variant)
            loaded[variant] = (KyutaiSpeechToTextForConditionalGeneration.from_pretrained(folder),
                               TextTokenizer.from_file(folder / "tokenizer.json"),
                               KyutaiSpeechToTextFeatureExtractor.from_pretrained(folder),
                               KyutaiSpeechToTextProcessor.from_pretrained(folder))
        return loaded[variant]

    return get


def alone(parts, clip):
    """(tokens, words) of `clip` streamed alone through StreamingTranscriber."""
    model, tokenizer, features, _ = parts
    stream = StreamingTranscriber(model, tokenizer, features)
    words = stream.push(clip) + stream.flush()
    return stream.tokens[0], words


def state_rows(stepper: FrameStepper, row: int) -> list[torch.Tensor]:
    """Copies of every state tensor's row `row`: codec histories and ring, decoder ring, tokens, clocks."""
    codec = stepper.codec_state
    tensors = list(codec.conv_history) + [codec.fresh, stepper.last_token, stepper.step_index]
    for cache in (codec.kv, stepper.cache):
        tensors += cache.keys + cache.values + [cache.slot_step, cache.stream_start, cache.next_step]
        tensors += (cache.key_scales or []) + (cache.value_scales or [])
    return [t[row].clone() for t in tensors]


# -- the masked step ------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["window", "gqa"])
def test_masked_steps_give_generate_tokens(parts, variant):
    """All rows active, frame by frame, through GraphedStep (eager on CPU): the tokens of `generate`."""
    model, _, _, processor = parts(variant)
    clips = [noise(2.3, seed=1), noise(2.3, seed=2)]
    inputs = processor(clips)
    expected = model.generate(**inputs)  # [2, 1 + N]
    audio = inputs["input_values"][:, 0]  # [2, L]
    stepper = FrameStepper(model, 2)
    step = GraphedStep(stepper.step_masked, model.device)
    assert not step.uses_graph
    active = torch.ones(2, dtype=torch.bool)
    frame = torch.zeros(2, FS)
    got = [step(frame, active).clone()]  # the BOS step hears nothing
    for t in range(expected.shape[1] - 2):
        got.append(step(audio[:, t * FS:(t + 1) * FS], active).clone())
    assert torch.equal(torch.stack(got, dim=1), expected[:, 1:])


def test_per_frame_lockstep_gives_generate_tokens(parts):
    """The GPU way of start()/step(): one masked step per frame (eager here), same tokens as the CPU way."""
    model, _, _, processor = parts("gqa")
    inputs = processor([noise(2.3, seed=5), noise(2.3, seed=6)])
    expected = model.generate(**inputs)  # [2, 1 + N], CPU way: codec over many frames per call
    audio = inputs["input_values"][:, 0]
    stepper = FrameStepper(model, 2, per_frame=True)
    first = stepper.start()
    rest = stepper.step(audio[:, :(expected.shape[1] - 2) * FS])  # several frames in one call
    assert torch.equal(torch.cat([first[:, None], rest], dim=1), expected[:, 1:])
    assert stepper.steps == expected.shape[1] - 1


@pytest.mark.parametrize("ring", [None, torch.int8], ids=["model's ring", "int8 ring"])
def test_inactive_rows_are_untouched_bit_for_bit(parts, ring):
    model, *_ = parts("window")
    stepper = FrameStepper(model, 3)
    if ring is not None:  # the ring of a compiled int8 or int4 step, with its scales
        stepper.cache = model.model.new_cache(3, dtype=ring)
    frames = torch.from_numpy(noise(1.0, seed=3)[:3 * FS].reshape(3, FS).copy())
    every = torch.ones(3, dtype=torch.bool)
    for _ in range(12):  # past both windows of this variant: the rings have wrapped
        stepper.step_masked(frames, every)
    before = [state_rows(stepper, b) for b in range(3)]
    token = stepper.step_masked(frames.flip(0), torch.tensor([True, False, True]))
    assert token[1] == before[1][len(stepper.codec_state.conv_history) + 1]  # its last token again
    assert all(torch.equal(a, b) for a, b in zip(before[1], state_rows(stepper, 1)))
    for b in (0, 2):
        assert not all(torch.equal(x, y) for x, y in zip(before[b], state_rows(stepper, b)))


def test_reset_of_one_stream_leaves_the_others_going(parts):
    model, *_ = parts("window")
    clip = torch.from_numpy(noise(2.0, seed=4))
    n = len(clip) // FS
    stepper = FrameStepper(model, 2)
    active = torch.ones(2, dtype=torch.bool)
    frames = lambda t: clip[t * FS:(t + 1) * FS].expand(2, FS)  # noqa: E731  both rows hear the same
    ref = [stepper.step_masked(frames(0), active).clone()]
    ref += [stepper.step_masked(frames(t), active).clone() for t in range(n)]
    ref = torch.stack(ref, dim=1)  # [2, 1 + n]
    assert torch.equal(ref[0], ref[1])
    stepper.reset()
    got = [[], []]
    for t in range(-1, 9):  # BOS, then frames 0..8
        got[0].append(int(stepper.step_masked(frames(max(t, 0)), active)[0]))
    stepper.reset(torch.tensor([False, True]))  # row 1 starts over; row 0 goes on
    for t in range(9, n):
        at_row1 = t - 10  # row 1: BOS at t = 9, then its frames 0, 1, ...
        pair = torch.stack([clip[t * FS:(t + 1) * FS], clip[max(at_row1, 0) * FS:(max(at_row1, 0) + 1) * FS]])
        out = stepper.step_masked(pair, active)
        got[0].append(int(out[0]))
        got[1].append(int(out[1]))
    assert got[0] == ref[0].tolist()
    assert got[1] == ref[1, :len(got[1])].tolist()


# -- no host sync, fixed kernels ------------------------------------------------------------------


def test_masked_step_never_reads_a_tensor_on_the_host(tiny_checkpoint):
    """On the meta device any .item(), bool(), .tolist() or data-dependent shape raises."""
    config = KyutaiSpeechToTextConfig.from_json_file(tiny_checkpoint("gqa") / "config.json")
    model = KyutaiSpeechToTextForConditionalGeneration(config).to("meta").eval()
    stepper = FrameStepper(model, 3)
    frame = torch.empty(3, FS, device="meta")
    active = torch.empty(3, dtype=torch.bool, device="meta")
    for _ in range(3):
        tokens = stepper.step_masked(frame, active)
    assert tokens.shape == (3,) and tokens.device.type == "meta"
    stepper.reset(torch.tensor([1]))  # what StreamPool.open() does between steps
    stepper.step_masked(frame, active)


def test_meta_check_catches_a_host_read():
    """The check above can fail: the code this issue replaced (conv.py's replicate padding) did this."""
    fresh = torch.empty(3, dtype=torch.bool, device="meta")
    with pytest.raises(RuntimeError):
        bool(fresh.any())
    with pytest.raises(NotImplementedError):
        torch.empty(3, 4, device="meta")[fresh]


class _OpLog(TorchDispatchMode):
    """Records (op, input shapes) of every aten call and which of them read tensor values on the host.

    A host read: .item()/bool() (`_local_scalar_dense`), ops whose output shape depends on values
    (nonzero, masked_select, unique), and indexing or index-assignment with a bool mask.
    """

    VALUE_SHAPED = {"_local_scalar_dense", "nonzero", "masked_select", "is_nonzero", "unique", "_unique2"}

    def __init__(self):
        super().__init__()
        self.calls, self.host_reads = [], []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        flat = [t for a in args for t in (a if isinstance(a, (list, tuple)) else [a]) if isinstance(t, torch.Tensor)]
        name = func.__name__.split(".")[0]
        self.calls.append((name, tuple((tuple(t.shape), t.dtype) for t in flat)))
        bool_index = name.startswith("index") and any(t.dtype == torch.bool for t in flat[1:])
        if name in self.VALUE_SHAPED or bool_index:
            self.host_reads.append(name)
        return func(*args, **(kwargs or {}))


def test_masked_step_runs_the_same_kernels_whatever_the_state(parts):
    """What a CUDA graph replays: the same ops on the same shapes, whoever is active or at BOS."""
    model, *_ = parts("window")
    stepper = FrameStepper(model, 3)
    frames = torch.from_numpy(noise(1.0, seed=5)[:3 * FS].reshape(3, FS).copy())
    rng = np.random.default_rng(0)
    logs = []
    for t in range(14):
        active = torch.from_numpy(rng.random(3) < 0.7)
        if t == 6:
            stepper.reset(torch.tensor([2]))  # one row back at its BOS step
        with _OpLog() as log:
            stepper.step_masked(frames, active)
        logs.append(log)
    assert all(not log.host_reads for log in logs)
    assert all(log.calls == logs[1].calls for log in logs[1:])  # the first step may set up lazy tables
    with _OpLog() as log:  # and the log does see host reads when there are some
        x = torch.ones(3)
        x[torch.tensor([True, False, True])] = x[torch.tensor([False, True, True])]
        x.sum().item()
    assert log.host_reads == ["index", "index_put_", "_local_scalar_dense"]


def test_cuda_graph_switch(monkeypatch):
    monkeypatch.delenv("SURTITLE_NO_CUDA_GRAPH", raising=False)
    assert graphs_wanted(torch.device("cuda")) and not graphs_wanted(torch.device("cpu"))
    assert not graphs_wanted(torch.device("cuda"), enabled=False)
    monkeypatch.setenv("SURTITLE_NO_CUDA_GRAPH", "1")
    assert not graphs_wanted(torch.device("cuda"))


# -- the pool -------------------------------------------------------------------------------------


def drive(pool: StreamPool, plan: dict, ticks: int = 400):
    """Run a scripted session. plan: name -> (open_tick, clip, samples per tick, close_after_tick or None).

    Returns per name: (slot, tokens, words, finished).
    """
    result, cursor, slot_of = {}, {}, {}
    for tick in range(ticks):
        for name, (open_at, clip, pace, close_at) in plan.items():
            if tick == open_at:
                slot_of[name] = pool.open()
                cursor[name] = 0
                result[name] = [slot_of[name], None, [], False]
            if name not in cursor or cursor[name] is None:
                continue
            if close_at is not None and tick == close_at:
                result[name][1] = pool.tokens(slot_of[name])
                pool.close(slot_of[name])
                cursor[name] = None
                continue
            at = cursor[name]
            pool.push(slot_of[name], clip[at:at + pace])
            cursor[name] = at + pace
            if cursor[name] >= len(clip):
                pool.flush(slot_of[name])
                cursor[name] = None
        owner = {slot_of[n]: n for n in slot_of if not result[n][3] and result[n][1] is None}
        for update in pool.step():
            name = owner[update.slot]
            result[name][2] += update.words
            if update.finished:
                result[name][1] = pool.tokens(update.slot)
                result[name][3] = True
        if tick > max(p[0] for p in plan.values()) and not pool.has_work() and all(c is None for c in cursor.values()):
            break
    return result


def test_pool_gives_every_slot_its_own_streams_tokens(parts):
    """Staggered opens, different paces, a slot closed mid-stream and reused: each stream = alone."""
    model, tokenizer, features, processor = parts("window")  # prefix 0.15 s; both rings wrap
    pool = StreamPool(model, tokenizer, features, slots=3)
    clips = {"fast": noise(2.4, 11), "slow": noise(1.7, 12), "cut": noise(3.0, 13), "late": noise(1.3, 14),
             "reuse": noise(1.1, 15)}
    plan = {
        "fast": (0, clips["fast"], 2500, None),  # more than a frame per step: builds a backlog
        "slow": (3, clips["slow"], 700, None),  # under a frame per step: often masked out
        "cut": (1, clips["cut"], 1920, 15),  # closed mid-stream at tick 15
        "late": (16, clips["late"], 1920, None),  # takes the slot "cut" left
        "reuse": (60, clips["reuse"], 5000, None),  # a slot freed by a finished stream
    }
    result = drive(pool, plan)
    assert result["late"][0] == result["cut"][0]
    for name in ("fast", "slow", "late", "reuse"):
        tokens, words = alone(parts("window"), clips[name])
        slot, got_tokens, got_words, finished = result[name]
        assert finished, name
        assert got_tokens == tokens, name
        assert got_words == words, name
        assert got_tokens == model.generate(**processor(clips[name]))[0].tolist(), name
    cut = result["cut"][1]
    assert 5 < len(cut) < len(alone(parts("window"), clips["cut"])[0])
    assert cut == alone(parts("window"), clips["cut"])[0][:len(cut)]  # closed early: a prefix of its own run
    assert pool.free_slots == 3


def test_pool_with_a_silence_prefix_and_words(parts):
    """gqa: 0.24 s prefix, GQA; words and their times equal the stream alone, per slot."""
    model, tokenizer, features, _ = parts("gqa")
    pool = StreamPool(model, tokenizer, features, slots=2)
    clips = {"a": noise(2.0, 21), "b": noise(2.6, 22)}
    result = drive(pool, {"a": (0, clips["a"], 1500, None), "b": (7, clips["b"], 3100, None)})
    for name, clip in clips.items():
        tokens, words = alone(parts("gqa"), clip)
        assert result[name][1] == tokens and result[name][2] == words


def test_int8_pool_streams_do_not_hear_their_slot_mates(tiny_checkpoint):
    """int8 quantizes each stream's activations alone: a loud slot-mate changes nothing of a stream."""
    folder = tiny_checkpoint("gqa")
    model = KyutaiSpeechToTextForConditionalGeneration.from_pretrained(folder, quantize="int8")
    tokenizer = TextTokenizer.from_file(folder / "tokenizer.json")
    features = KyutaiSpeechToTextFeatureExtractor.from_pretrained(folder)
    clip = noise(2.0, 31)
    runs = []
    for mate in (noise(2.0, 32) * 30, noise(2.4, 33)):  # loud, then quiet and longer
        pool = StreamPool(model, tokenizer, features, slots=3)
        runs.append(drive(pool, {"it": (0, clip, 1920, None), "mate": (0, mate, 1920, None)})["it"])
    assert runs[0][3] and runs[0][1] == runs[1][1] and runs[0][2] == runs[1][2]


def test_pool_refuses_misuse(parts):
    model, tokenizer, features, _ = parts("window")
    pool = StreamPool(model, tokenizer, features, slots=1)
    with pytest.raises(StreamError, match="not open"):
        pool.push(0, noise(0.1, 1))
    with pytest.raises(StreamError, match="no slot 3"):
        pool.push(3, noise(0.1, 1))
    slot = pool.open()
    with pytest.raises(StreamError, match="in use"):
        pool.open()
    with pytest.raises(AudioError, match="NaN"):
        pool.push(slot, np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(AudioError, match="shape"):
        pool.push(slot, np.zeros((2, 10), dtype=np.float32))
    pool.flush(slot)
    with pytest.raises(StreamError, match="flushed"):
        pool.push(slot, noise(0.1, 1))
    while pool.has_work():
        pool.step()
    assert pool.free_slots == 1 and pool.step() == []


def test_pool_refuses_a_client_running_ahead_and_loses_nothing(parts):
    """A push past max_buffered_s is refused whole; once steps catch up the stream goes on unchanged."""
    model, tokenizer, features, _ = parts("window")
    clip = noise(1.2, 31)
    pool = StreamPool(model, tokenizer, features, slots=1, max_buffered_s=0.5)
    slot = pool.open()
    half = len(clip) // 2  # 0.6 s: over the cap with the silence prefix already waiting
    pool.push(slot, clip[:4800])
    waiting = pool.buffered_seconds(slot)
    with pytest.raises(StreamError, match="of audio waiting"):
        pool.push(slot, clip[4800:half + 4800])
    assert pool.buffered_seconds(slot) == waiting  # nothing of the refused push went in
    at = 4800
    while at < len(clip):  # a client that retries after each step
        try:
            pool.push(slot, clip[at:at + 4800])
            at += 4800
        except StreamError:
            pass
        pool.step()
    pool.flush(slot)
    while pool.has_work():
        pool.step()
    assert pool.tokens(slot) == alone(parts("window"), clip)[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_pool_equals_eager_pool(tiny_checkpoint):
    folder = tiny_checkpoint("window")
    clips = {"a": noise(2.0, 31), "b": noise(1.5, 32)}
    plan = {"a": (0, clips["a"], 2000, None), "b": (4, clips["b"], 900, None)}
    runs = [drive(StreamPool.from_pretrained(folder, 2, device="cuda", dtype="float32", cuda_graphs=g), plan)
            for g in (True, False)]
    assert runs[0] == runs[1]
