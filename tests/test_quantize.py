"""int8 mode's building blocks (stacked projections, the narrower ring, the quantized codec); int4's are in test_int4."""

from __future__ import annotations

import pytest
import torch

from core import KyutaiSpeechToTextForConditionalGeneration as Model
from core.attention import Attention
from core.int4 import Int4Linear
from core.quantize import BackgroundPacker, Int8Linear, prepare_model
from core.runtime import native_bfloat16
from tests.markers import needs_int4


def _int8(weight: torch.Tensor) -> Int8Linear:
    layer = Int8Linear(weight.shape[1], weight.shape[0])
    layer.set_weight(weight)
    return layer


@pytest.mark.parametrize("linear", [Int8Linear, pytest.param(Int4Linear, marks=needs_int4)], ids=["int8", "int4"])
def test_stacked_quantized_linear_gives_each_part_its_own_output(linear):
    torch.manual_seed(0)
    weights = [torch.randn(n, 64) for n in (48, 16, 16)]
    stacked = linear(64, 80, parts=(48, 16, 16))
    for part in (2, 0, 1):  # in any order, as a checkpoint may list them
        stacked.set_weight(weights[part], part=part)
    x = torch.randn(3, 5, 64)
    alone = []
    for w in weights:
        single = linear(64, w.shape[0])
        single.set_weight(w)
        alone.append(single(x))
    assert torch.equal(stacked(x), torch.cat(alone, dim=-1))


def test_int8_weights_are_per_channel():
    torch.manual_seed(1)
    weight = torch.randn(32, 64) * torch.logspace(-3, 1, 32)[:, None]  # rows of very different sizes
    x = torch.randn(4, 64)
    linear = _int8(weight)
    exact, approx = x @ weight.T, torch.cat([linear(row[None]) for row in x])  # one row at a time, as live
    # per-channel scales keep every row's error relative to that row, small rows included
    assert ((approx - exact).abs().amax(0) / exact.abs().amax(0)).max() < 0.05


def test_int8_rows_in_a_batch_do_not_depend_on_each_other():
    torch.manual_seed(2)
    weight = torch.randn(48, 256) / 16
    linear = _int8(weight)
    quiet, loud, other = torch.randn(3, 256)
    loud = loud * 50  # fbgemm alone would give the whole batch a scale fit for this row
    alone = linear(quiet[None])
    with_loud, with_other = linear(torch.stack([quiet, loud])), linear(torch.stack([other, quiet, other]))
    assert torch.equal(with_loud[0], with_other[1])  # the same output in any batch
    exact = quiet @ weight.T
    error = lambda y: (y - exact).norm() / exact.norm()  # noqa: E731
    assert error(with_loud[0]) < 1.5 * error(alone[0]) < 0.05  # as precise as the row alone


def test_int8_model_stacks_qkv_and_narrows_the_ring(tiny_checkpoint):
    model = Model.from_pretrained(tiny_checkpoint("gqa"), quantize="int8")
    decoder_attn = [m for n, m in model.named_modules() if isinstance(m, Attention) and not n.startswith("codec_model.")]
    assert decoder_attn and all(isinstance(m.qkv_proj, Int8Linear) and not hasattr(m, "q_proj") for m in decoder_attn)
    cache = model.model.new_cache(1)
    assert cache.keys[0].dtype == (torch.bfloat16 if native_bfloat16() else torch.float32)
    assert Model.from_pretrained(tiny_checkpoint("gqa")).model.new_cache(1).keys[0].dtype == torch.float32


def test_loading_packs_on_a_second_thread_to_the_same_model(tiny_checkpoint):
    loaded = Model.from_pretrained(tiny_checkpoint("gqa"), quantize="int8")  # packs in the background
    inline = prepare_model(Model.from_pretrained(tiny_checkpoint("gqa")), "int8")  # packs as it goes
    assert all(m._packed is not None for m in loaded.modules() if isinstance(m, Int8Linear))
    ids = torch.randint(0, 20, (2, 1, 1 + loaded.config.num_codebooks))  # small enough for text and codes
    with torch.inference_mode():
        a = loaded.step_logits(ids, loaded.model.new_cache(2))
        b = inline.step_logits(ids, inline.model.new_cache(2))
    assert torch.equal(a, b)


def test_background_packer_keeps_at_most_pending_packs_waiting():
    done = []
    with BackgroundPacker(pending=1) as packer:
        for i in range(5):
            packer.submit(done.append, i)
            assert done[:i] == list(range(i))  # the previous pack finished before this one was queued
    assert done == list(range(5))  # leaving waits for the last


def test_background_packer_raises_a_failed_pack_on_leaving():
    def fail():
        raise RuntimeError("pack failed")

    with pytest.raises(RuntimeError, match="pack failed"):
        with BackgroundPacker() as packer:
            packer.submit(fail)
