"""int4 mode: the group quantizer, the AVX2 kernel against a float64 reference, and a model in int4."""

from __future__ import annotations

import pytest
import torch

from core import ConfigError
from core import KyutaiSpeechToTextForConditionalGeneration as Model
from core.attention import Attention
from core.int4 import GROUP, Int4Linear, dequantize_groups, quantize_groups
from core.quantize import check_mode
from tests.markers import needs_int4


def int4(weight: torch.Tensor) -> Int4Linear:
    layer = Int4Linear(weight.shape[1], weight.shape[0])
    layer.set_weight(weight)
    return layer


def reference(x: torch.Tensor, layer: Int4Linear) -> torch.Tensor:
    """What the kernel computes, in float64: x's groups of 32 rounded to int8 at their own scale,
    times the dequantized weights."""
    x = torch.nn.functional.pad(x.float(), (0, layer.padded - x.shape[-1]))
    groups = x.reshape(x.shape[0], -1, GROUP)
    peak = groups.abs().amax(-1, keepdim=True)
    inverse = torch.where(peak > 0, 127.0 / peak, 0.0)  # float32, as the kernel divides
    values = torch.round(groups * inverse)
    rounded = (values.double() * (peak.double() / 127)).reshape(x.shape)  # what int8 x stands for
    return rounded @ dequantize_groups(layer.packed, layer.scales).double().t()


def test_each_group_keeps_its_largest_value_and_rounds_the_rest_to_its_levels():
    torch.manual_seed(0)
    w = torch.randn(6, 128) * torch.logspace(-2, 1, 6)[:, None]  # rows of very different sizes
    packed, scales = quantize_groups(w)
    assert packed.shape == (6, 64) and packed.dtype == torch.uint8 and scales.shape == (6, 4)
    back = dequantize_groups(packed, scales)
    groups, approx = w.view(6, 4, GROUP), back.view(6, 4, GROUP)
    largest = groups.abs().argmax(-1, keepdim=True)
    # the extreme maps to -8 steps exactly (up to the scale's fp16 rounding)
    torch.testing.assert_close(approx.gather(-1, largest), groups.gather(-1, largest), rtol=1e-3, atol=0)
    step = scales.float().abs()[..., None]
    assert ((approx - groups).abs() <= step * 1.0001).all()  # within one step (+8 is clamped to 7)
    assert ((approx - groups).abs() <= step * 0.5001).float().mean() > 0.95  # nearly all within half a step


@needs_int4
@pytest.mark.parametrize("rows", [1, 2, 3, 5])
@pytest.mark.parametrize("in_features", [128, 2048, 100])
def test_kernel_equals_the_float64_reference(rows, in_features):
    g = torch.Generator().manual_seed(rows * in_features)
    layer = int4(torch.randn(72, in_features, generator=g) / in_features**0.5)
    x = torch.randn(rows, in_features, generator=g)
    x[0, :GROUP] = 0  # a silent group: its scale is 0 and it must add nothing
    out = layer(x)
    assert out.shape == (rows, 72) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), reference(x, layer), rtol=1e-4, atol=1e-5)


@needs_int4
def test_int4_stays_within_its_expected_error_of_float32():
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(512, 1024, generator=g) / 32
    x = torch.randn(4, 1024, generator=g)
    exact = x @ weight.t()
    error = (int4(weight)(x) - exact).norm() / exact.norm()
    assert 0.04 < error < 0.12  # 16 levels a group: about 5 times int8's error (0.086 on such weights)


@needs_int4
def test_rows_in_a_batch_get_what_they_get_alone():
    g = torch.Generator().manual_seed(4)
    layer = int4(torch.randn(40, 256, generator=g))
    quiet, loud, other = torch.randn(3, 256, generator=g)
    alone = layer(quiet[None])[0]
    assert torch.equal(layer(torch.stack([quiet, loud * 50]))[0], alone)
    assert torch.equal(layer(torch.stack([other, other, quiet]))[2], alone)


@needs_int4
def test_int4_model_stacks_its_projections_and_keeps_a_float32_codec(tiny_checkpoint):
    small = Model.from_pretrained(tiny_checkpoint("gqa"), quantize="int4")
    assert small.quantization == "int4"
    decoder_attn = [m for n, m in small.named_modules() if isinstance(m, Attention) and not n.startswith("codec_model.")]
    assert decoder_attn and all(isinstance(m.qkv_proj, Int4Linear) for m in decoder_attn)
    assert {p.dtype for p in small.codec_model.parameters()} == {torch.float32}


def test_int4_without_a_compiler_says_what_to_install(monkeypatch):
    import core.native

    monkeypatch.setattr(core.native, "_module", None)
    monkeypatch.setattr(core.native.shutil, "which", lambda name: None)
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("this CPU is refused for lacking AVX2 before the compiler is looked for")
    with pytest.raises(ConfigError, match="install g\\+\\+"):
        check_mode("int4", torch.device("cpu"))


def test_int4_is_refused_on_a_gpu():
    with pytest.raises(ConfigError, match="int4 quantization runs on the CPU"):
        check_mode("int4", torch.device("cuda"))
