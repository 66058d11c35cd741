"""int8 mode's building blocks: stacked projections, the narrower ring, the quantized codec."""

from __future__ import annotations

import torch

from core import KyutaiSpeechToTextForConditionalGeneration as Model
from core.attention import Attention
from core.quantize import Int8Linear, native_bfloat16


def _int8(weight: torch.Tensor) -> Int8Linear:
    layer = Int8Linear(weight.shape[1], weight.shape[0])
    layer.set_weight(weight)
    return layer


def test_stacked_int8_linear_gives_each_part_its_own_output():
    torch.manual_seed(0)
    parts = [_int8(torch.randn(n, 64)) for n in (48, 16, 16)]
    stacked = Int8Linear.stacked(parts)
    x = torch.randn(3, 5, 64)
    alone = torch.cat([p(x) for p in parts], dim=-1)
    assert stacked.out_features == 80
    assert torch.equal(stacked(x), alone)


def test_int8_model_stacks_qkv_and_narrows_the_ring(tiny_checkpoint):
    model = Model.from_pretrained(tiny_checkpoint("gqa"), quantize="int8")
    decoder_attn = [m for n, m in model.named_modules() if isinstance(m, Attention) and not n.startswith("codec_model.")]
    assert decoder_attn and all(isinstance(m.qkv_proj, Int8Linear) and not hasattr(m, "q_proj") for m in decoder_attn)
    cache = model.model.new_cache(1)
    assert cache.keys[0].dtype == (torch.bfloat16 if native_bfloat16() else torch.float32)
    assert Model.from_pretrained(tiny_checkpoint("gqa")).model.new_cache(1).keys[0].dtype == torch.float32
