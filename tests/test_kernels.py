"""The hand-picked forms of the hot products give the same numbers as the plain forms, eager and compiled."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core import native
from core.attention import Attention, widening_attention
from core.compiled_step import compiler_found
from core.config import MimiConfig
from core.kv_cache import dequantize_rows, quantize_rows
from core.layers import KERNEL_ROWS, FewRowLinear, Rotary, few_row_linear
from core.mimi import Codebook
from tests.markers import needs_native

needs_compiler = pytest.mark.skipif(not compiler_found(), reason="torch.compile needs a C++ compiler (g++)")


@pytest.mark.parametrize("rows", [1, 2, 3, 17, 64])
@pytest.mark.parametrize("bias", [False, True])
def test_few_row_linear_equals_linear(rows, bias):
    g = torch.Generator().manual_seed(rows)
    x = torch.randn(1, rows, 96, generator=g)
    w = torch.randn(40, 96, generator=g)
    b = torch.randn(40, generator=g) if bias else None
    out = few_row_linear(x, w, b)
    assert out.shape == (1, rows, 40)
    torch.testing.assert_close(out, F.linear(x, w, b), rtol=1e-5, atol=1e-5)


def test_few_row_linear_takes_rows_laid_out_any_way():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(96, 2, generator=g).t()[None]  # [1, 2, 96] whose rows are not contiguous (a GELU keeps such strides)
    w = torch.randn(40, 96, generator=g)
    torch.testing.assert_close(few_row_linear(x, w), F.linear(x, w), rtol=1e-5, atol=1e-5)


def attention(kv_heads: int) -> Attention:
    torch.manual_seed(kv_heads)
    return Attention(32, 4, kv_heads, 8, FewRowLinear).eval()


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_fused_qkv_gives_the_same_attention_and_keeps_the_checkpoint_keys(kv_heads):
    attn = attention(kv_heads)
    keys = list(attn.state_dict())
    x = torch.randn(1, 3, 32, generator=torch.Generator().manual_seed(0))
    cos, sin = Rotary(8, 10000.0).cos_sin(torch.arange(3)[None], torch.float32)
    mask = torch.ones(1, 1, 3, 3, dtype=torch.bool).tril()
    with torch.no_grad():
        expected, _ = attn(x, cos, sin, mask)
        attn.fuse_qkv()
        fused, _ = attn(x, cos, sin, mask)
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-6)
    assert list(attn.state_dict()) == keys
    # the parameters are views of the one stacked tensor: loading a checkpoint afterwards updates it
    attn.load_state_dict({k: torch.zeros_like(v) for k, v in attn.state_dict().items()})
    assert attn._fused_qkv.abs().sum() == 0


def test_fused_qkv_follows_the_parameters_when_the_module_moves():
    attn = attention(4)
    attn.fuse_qkv()
    attn.to(torch.float64)
    fused = attn._fused_qkv
    assert fused.dtype == torch.float64
    assert attn.q_proj.weight.data_ptr() == fused.data_ptr()
    assert attn.v_proj.weight.data_ptr() == fused[-attn.v_proj.out_features:].data_ptr()


@needs_native
@pytest.mark.parametrize("rows", [1, 2, 3, 4, 6])  # 6: more than the kernel takes, MKL's
@pytest.mark.parametrize("inner", [512, 37])  # 37: a tail past the last 16 values
def test_the_row_kernel_equals_linear(rows, inner):
    native.kernels()
    g = torch.Generator().manual_seed(rows + inner)
    x, w, bias = torch.randn(1, rows, inner, generator=g), torch.randn(96, inner, generator=g), torch.randn(96, generator=g)
    expected = (x.double() @ w.double().t() + bias.double()).float()
    got = few_row_linear(x, w, bias, kernel=True)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert torch.equal(got, few_row_linear(x, w, bias)) == (rows > KERNEL_ROWS)  # the kernel sums in its own order


@needs_native
def test_the_row_kernel_refuses_what_it_cannot_take():
    w = torch.randn(8, 16)
    with pytest.raises(RuntimeError, match="1 to 4 rows"):
        native.kernels().few_rows_linear(torch.randn(5, 16), w)
    with pytest.raises(RuntimeError, match="contiguous float32"):
        native.kernels().few_rows_linear(torch.randn(2, 16), w.t().contiguous().t())
    with pytest.raises(RuntimeError, match="do not fit"):
        native.kernels().few_rows_linear(torch.randn(2, 15), w)


@needs_native
@needs_compiler
def test_a_compiled_few_row_linear_calls_the_row_kernel(monkeypatch):
    torch._dynamo.reset()
    kernels, calls = native.kernels(), []

    class Counting:  # the kernels as they are, counting the row products asked of them
        def __getattr__(self, name):
            return getattr(kernels, name)

        def few_rows_linear(self, x, w):
            calls.append(x.shape[0])
            return kernels.few_rows_linear(x, w)

    monkeypatch.setattr(native, "_module", Counting())
    linear = FewRowLinear(64, 32)
    linear.row_kernel = True
    x = torch.randn(2, 64)
    compiled = torch.compile(linear, dynamic=False)
    with torch.inference_mode():  # as every step runs
        torch.testing.assert_close(compiled(x), F.linear(x, linear.weight, linear.bias), rtol=1e-5, atol=1e-5)
    assert calls and set(calls) == {2}
    torch._dynamo.reset()


def test_few_row_linear_keeps_the_checkpoint_keys_of_a_linear():
    layer = FewRowLinear(8, 4, bias=False)
    assert isinstance(layer, torch.nn.Linear) and list(layer.state_dict()) == ["weight"]
    torch.testing.assert_close(layer(torch.ones(2, 8)), F.linear(torch.ones(2, 8), layer.weight))


@pytest.mark.parametrize("rows", [1, 2, 40])
def test_codebook_search_finds_the_nearest_centroid(rows):
    cfg = MimiConfig(codebook_size=300, codebook_dim=24)
    book = Codebook(cfg)
    g = torch.Generator().manual_seed(rows)
    book.embed_sum.copy_(torch.randn(300, 24, generator=g) * 2)
    book.cluster_usage.copy_(torch.rand(300, generator=g) + 0.5)
    book.refresh()
    x = torch.randn(rows, 24, generator=g) * 2
    centroids = book.embed_sum / book.cluster_usage[:, None]
    torch.testing.assert_close(book.centroids, centroids)
    assert torch.equal(book.nearest(x), torch.cdist(x, centroids).argmin(dim=-1))


def ring(kv_heads: int, slots: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values of 2 streams, stored in bfloat16 as a compiled int8 step stores them."""
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, kv_heads, slots, dim, generator=g).to(torch.bfloat16) for _ in range(2))


def partly_filled(slots: int) -> torch.Tensor:
    mask = torch.ones(2, 1, 1, slots, dtype=torch.bool)
    mask[0, ..., slots // 2:] = False  # one stream has filled only part of its ring
    mask[1, ..., :3] = False
    return mask


@pytest.fixture(params=["loops", pytest.param("kernel", marks=needs_native)])
def attention_path(request, monkeypatch):
    """widening_attention as written in torch ops, or through Surtitle's ring kernel (core.native)."""
    monkeypatch.setattr(native, "_module", native.kernels() if request.param == "kernel" else None)
    return request.param


@pytest.mark.parametrize("heads, kv_heads, dim", [(4, 4, 16), (4, 2, 16), (2, 2, 24), (2, 1, 72)])
def test_widening_attention_equals_float32_sdpa_over_the_same_ring(attention_path, heads, kv_heads, dim):
    # dims 24 and 72: a key's last 8 values and a last block of values narrower than 64
    k, v = ring(kv_heads, 12, dim, seed=heads + kv_heads)
    q = torch.randn(2, heads, 1, dim, generator=torch.Generator().manual_seed(1))
    mask = partly_filled(12)
    expected = F.scaled_dot_product_attention(q, k.float(), v.float(), attn_mask=mask, enable_gqa=heads != kv_heads)
    torch.testing.assert_close(widening_attention(q, k, v, mask), expected, rtol=1e-5, atol=1e-6)


def int8_ring(kv_heads: int, slots: int, dim: int, seed: int):
    """The same keys and values as ring(), stored as a compiled int8 or int4 step stores them."""
    (k, ks), (v, vs) = (quantize_rows(t.float()) for t in ring(kv_heads, slots, dim, seed))
    return k, v, (ks, vs)


def test_quantized_rows_come_back_within_half_a_step():
    x = torch.randn(3, 5, 40, generator=torch.Generator().manual_seed(2)) * torch.logspace(-3, 1, 5)[:, None]
    x[1, 2] = 0  # an empty slot: scale 0, values 0
    stored, scale = quantize_rows(x)
    assert stored.dtype == torch.int8 and scale.shape == (3, 5)
    assert (stored.abs() <= 127).all() and (stored.abs().amax(-1)[scale > 0] == 127).all()
    assert ((dequantize_rows(stored, scale) - x).abs() <= scale[..., None] / 2 * 1.0001).all()


@pytest.mark.parametrize("heads, kv_heads, dim", [(4, 4, 16), (4, 2, 16), (2, 1, 72)])
def test_widening_attention_over_an_int8_ring_equals_sdpa_over_its_values(attention_path, heads, kv_heads, dim):
    k, v, scales = int8_ring(kv_heads, 12, dim, seed=heads + dim)
    q = torch.randn(2, heads, 1, dim, generator=torch.Generator().manual_seed(1))
    mask = partly_filled(12)
    wide_k, wide_v = dequantize_rows(k, scales[0]), dequantize_rows(v, scales[1])
    expected = F.scaled_dot_product_attention(q, wide_k, wide_v, attn_mask=mask, enable_gqa=heads != kv_heads)
    torch.testing.assert_close(widening_attention(q, k, v, mask, scales), expected, rtol=1e-5, atol=1e-6)
    several = torch.randn(2, heads, 3, dim, generator=torch.Generator().manual_seed(3))  # a chunk of queries
    torch.testing.assert_close(widening_attention(several, k, v, mask.expand(-1, -1, 3, -1), scales),
                               F.scaled_dot_product_attention(several, wide_k, wide_v, attn_mask=mask,
                                                              enable_gqa=heads != kv_heads), rtol=1e-5, atol=1e-6)


@needs_native
def test_the_ring_kernel_ignores_the_scales_of_masked_slots():
    k, v, (ks, vs) = int8_ring(2, 12, 16, seed=4)
    q = torch.randn(2, 2, 1, 16, generator=torch.Generator().manual_seed(5))
    mask = partly_filled(12)
    expected = native.kernels().ring_attention(q, k, v, mask, ks, vs)
    ks, vs = ks.clone(), vs.clone()
    ks[0, :, 6:] = float("nan")  # slots the first stream has not filled yet
    vs[1, :, :3] = float("inf")
    assert torch.equal(native.kernels().ring_attention(q, k, v, mask, ks, vs), expected)
    with pytest.raises(RuntimeError, match="scales"):
        native.kernels().ring_attention(q, k, v, mask)


@needs_native
def test_the_ring_kernel_reads_only_the_slots_the_mask_keeps():
    k, v = ring(2, 12, 16, seed=8)
    q = torch.randn(2, 2, 1, 16, generator=torch.Generator().manual_seed(9))
    mask = partly_filled(12)
    poisoned_k, poisoned_v = k.clone(), v.clone()
    poisoned_k[0, :, 6:] = float("nan")  # slots the first stream has not filled yet
    poisoned_v[1, :, :3] = float("inf")
    out = native.kernels().ring_attention(q, poisoned_k, poisoned_v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k.float(), v.float(), attn_mask=mask),
                               rtol=1e-5, atol=1e-6)


@needs_native
def test_the_ring_kernel_refuses_what_it_cannot_read():
    k, v = ring(2, 12, 16, seed=8)
    q = torch.randn(2, 2, 1, 16)
    with pytest.raises(RuntimeError, match="bfloat16 or int8"):
        native.kernels().ring_attention(q, k.float(), v.float(), partly_filled(12))
    with pytest.raises(RuntimeError, match="do not fit"):
        native.kernels().ring_attention(torch.randn(2, 3, 1, 16), k, v, partly_filled(12))


def test_widening_attention_over_several_queries_equals_sdpa(attention_path):
    k, v = ring(2, 10, 8, seed=3)
    q = torch.randn(2, 2, 3, 8, generator=torch.Generator().manual_seed(2))
    mask = torch.rand(2, 1, 3, 10, generator=torch.Generator().manual_seed(4)) > 0.3
    mask[..., 0] = True
    expected = F.scaled_dot_product_attention(q, k.float(), v.float(), attn_mask=mask)
    torch.testing.assert_close(widening_attention(q, k, v, mask), expected, rtol=1e-5, atol=1e-6)


@needs_compiler
def test_widening_attention_compiled_equals_sdpa(attention_path):
    torch._dynamo.reset()  # the other path's graph would be reused: the module's presence is traced
    k, v = ring(2, 20, 16, seed=5)
    q = torch.randn(2, 4, 1, 16, generator=torch.Generator().manual_seed(6))
    mask = partly_filled(20)
    expected = F.scaled_dot_product_attention(q, k.float(), v.float(), attn_mask=mask, enable_gqa=True)
    if attention_path == "kernel":  # only the kernel skips masked slots: proof that the compiled step calls it
        v = v.clone()
        v[0, :, 10:] = float("inf")
    compiled = torch.compile(widening_attention, dynamic=False)
    torch.testing.assert_close(compiled(q, k, v, mask), expected, rtol=1e-5, atol=1e-6)


def test_rotary_angles_are_those_of_the_half_split_convention():
    rotary = Rotary(8, 10000.0)
    positions = torch.tensor([[0, 5, 1234]])
    cos, sin = rotary.cos_sin(positions, torch.float32)
    inv_freq = 1.0 / 10000.0 ** (torch.arange(0, 8, 2).double() / 8)
    angles = positions[0, :, None].double() * inv_freq  # [S, 4]
    expected = torch.cat((angles, angles), dim=-1)[None, None]  # each frequency twice: halves, not pairs
    assert cos.shape == sin.shape == (1, 1, 3, 8)
    torch.testing.assert_close(cos.double(), expected.cos(), rtol=0, atol=1e-4)  # float32 angles
    torch.testing.assert_close(sin.double(), expected.sin(), rtol=0, atol=1e-4)
