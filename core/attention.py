"""Multi-head attention with rotary positions, over a ring cache or within one chunk."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import layers, native
from .kv_cache import RingKVCache, dequantize_rows
from .layers import FewRowLinear, rotate
from .runtime import native_bfloat16


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, kv_heads: int, head_dim: int, linear: type[nn.Linear] = nn.Linear):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.q_proj = linear(hidden, heads * head_dim, bias=False)
        self.k_proj = linear(hidden, kv_heads * head_dim, bias=False)
        self.v_proj = linear(hidden, kv_heads * head_dim, bias=False)
        self.o_proj = linear(heads * head_dim, hidden, bias=False)
        self.qkv_proj: nn.Module | None = None  # q, k and v in one matmul, once stack_qkv() is called
        self._fused_qkv: torch.Tensor | None = None  # [q + 2 kv, hidden], once fuse_qkv() is called
        self.row_kernel = False  # few_row_linear's `kernel` for the fused product (MimiEncoder.use_kernels)

    def fuse_qkv(self) -> None:
        """Lay q, k and v's weights one above the other, so that one product computes all three.

        The three parameters become views into the stacked tensor: checkpoint names, state_dict and
        memory stay as they were. For the codec's live frame (2 rows) one 3 MB product in place of
        three 1 MB ones saves a call's fixed cost twice per layer.
        """
        projections = (self.q_proj, self.k_proj, self.v_proj)
        assert all(p.bias is None for p in projections), "only bias-free projections are fused"
        fused = torch.cat([p.weight.detach() for p in projections])
        start = 0
        for p in projections:
            p.weight = nn.Parameter(fused[start:start + p.out_features], requires_grad=False)
            start += p.out_features
        self._fused_qkv = fused

    def _apply(self, fn, recurse=True):
        # .to(device) moves each parameter on its own, which would leave the stacked tensor behind
        super()._apply(fn, recurse)
        if self._fused_qkv is not None:
            self.fuse_qkv()
        return self

    def stack_qkv(self, stacked: nn.Module) -> None:
        """Use `stacked` (q, k, v weights one above the other) in place of the three projections."""
        del self.q_proj, self.k_proj, self.v_proj
        self.qkv_proj = stacked

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                cache: RingKVCache | None = None, layer: int = 0, slots: torch.Tensor | None = None,
                return_weights: bool = False):
        b, s, _ = x.shape
        kv = self.kv_heads * self.head_dim
        if self.qkv_proj is not None:
            q, k, v = self.qkv_proj(x).split((self.heads * self.head_dim, kv, kv), dim=-1)
        elif self._fused_qkv is not None:
            if isinstance(self.q_proj, FewRowLinear):
                qkv = layers.few_row_linear(x, self._fused_qkv, kernel=self.row_kernel)
            else:
                qkv = F.linear(x, self._fused_qkv)
            q, k, v = qkv.split((self.heads * self.head_dim, kv, kv), dim=-1)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = q.reshape(b, s, self.heads, self.head_dim).transpose(1, 2)  # [B, H, S, D]
        k = k.reshape(b, s, self.kv_heads, self.head_dim).transpose(1, 2)  # [B, Hkv, S, D]
        v = v.reshape(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        if self.heads == self.kv_heads:  # one rotation for both: fewer small ops per step
            q, k = rotate(torch.cat((q, k), dim=1), cos, sin).split(self.heads, dim=1)
        else:
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        scales = None
        if cache is not None:
            k, v = cache.write(layer, slots, k, v)  # the layer's whole ring: [B, Hkv, C, D]
            scales = cache.scales(layer)  # an int8 ring's [B, Hkv, C] key and value scales
        dtype = q.dtype
        weights = None
        if return_weights:
            if scales is not None:
                k, v = dequantize_rows(k, scales[0]), dequantize_rows(v, scales[1])
            out, weights = self._eager(q.to(k.dtype), k, v, mask)
        elif scales is not None or (k.dtype != dtype and k.device.type == "cpu" and not native_bfloat16()):
            out = widening_attention(q, k, v, mask, scales)
        else:  # a ring stored narrower than the activations (int8 mode) sets the kernel's type
            out = F.scaled_dot_product_attention(q.to(k.dtype), k, v, attn_mask=mask,
                                                 enable_gqa=self.kv_heads != self.heads)
        out = out.transpose(1, 2).reshape(b, s, self.heads * self.head_dim).to(dtype)  # [B, S, H*D]
        return self.o_proj(out), weights

    def _eager(self, q, k, v, mask):
        """Plain softmax attention, used only when the caller asks for the attention weights."""
        rep = self.heads // self.kv_heads
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(-1, -2)) * self.head_dim**-0.5
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.float().softmax(-1).to(q.dtype)  # [B, H, S, K]
        return weights @ v, weights


def widening_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                       scales: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Attention in float32 over keys and values stored narrower: bfloat16 on a CPU without native
    bfloat16, or int8 with `scales` (key and value scales [B, Hkv, C], core.kv_cache).

    q [B, H, S, D] float32, k and v [B, Hkv, C, D], mask [B, 1, S, C] -> [B, H, S, D] float32.
    A query step over such a ring goes to Surtitle's kernel (core/ring_attention.cpp) once it is
    built (core.native): it reads the ring once, widening as it reads, and skips empty slots.
    Without it the step is written as products and sums, which torch.compile fuses into loops that
    also widen as they read, at a third of the memory bus (16 layers of the 1b's full 750-slot
    bfloat16 ring: 19 ms a frame against 8-13 ms with the kernel, on 2 AMD Zen 3 cores). Run
    uncompiled that form is correct, only not fast: the compiled int8 and int4 steps keep such rings.
    """
    b, h, s, d = q.shape
    kv_heads = k.shape[1]
    if s != 1:
        wide_k, wide_v = (k.float(), v.float()) if scales is None else \
            (dequantize_rows(k, scales[0]), dequantize_rows(v, scales[1]))
        return F.scaled_dot_product_attention(q, wide_k, wide_v, attn_mask=mask, enable_gqa=kv_heads != h)
    if native.loaded() is not None and d % 8 == 0:
        if scales is not None:
            return ring_attention_int8(q, k, v, mask, *scales)
        if k.dtype == torch.bfloat16:
            return ring_attention(q, k, v, mask)
    q = q.view(b, kv_heads, h // kv_heads, 1, d)  # query heads grouped by the key/value head they share
    wide_k = k[:, :, None].float() if scales is None else dequantize_rows(k, scales[0])[:, :, None]
    wide_v = v[:, :, None].float() if scales is None else dequantize_rows(v, scales[1])[:, :, None]
    scores = (q * wide_k).sum(-1) * d**-0.5  # [B, Hkv, H/Hkv, C]
    scores = scores.masked_fill(~mask[:, :, 0, None], float("-inf"))
    weights = scores.softmax(-1)
    out = (weights[..., None] * wide_v).sum(-2)  # [B, Hkv, H/Hkv, D]
    return out.view(b, h, 1, d)


@torch.library.custom_op("surtitle::ring_attention", mutates_args=())
def ring_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """q [B, H, 1, D] float32 over a bfloat16 ring k, v [B, Hkv, C, D] -> [B, H, 1, D]; opaque to the compiler."""
    return native.loaded().ring_attention(q, k.contiguous(), v.contiguous(), mask)  # the kernel copies q if it must


@ring_attention.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(q, memory_format=torch.contiguous_format)


@torch.library.custom_op("surtitle::ring_attention_int8", mutates_args=())
def ring_attention_int8(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                        key_scales: torch.Tensor, value_scales: torch.Tensor) -> torch.Tensor:
    """ring_attention over an int8 ring with its scales [B, Hkv, C]; opaque to the compiler."""
    return native.loaded().ring_attention(q, k.contiguous(), v.contiguous(), mask, key_scales.contiguous(),
                                          value_scales.contiguous())


@ring_attention_int8.register_fake
def _(q, k, v, mask, key_scales, value_scales):
    return torch.empty_like(q, memory_format=torch.contiguous_format)
