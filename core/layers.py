"""Stateless building blocks shared by the codec's transformer and the text decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import native

KERNEL_ROWS = 4  # the most rows Surtitle's row product kernel takes (core/row_products.cpp)


class RMSNorm(nn.Module):
    """RMS normalisation computed in float32 whatever the model dtype (the checkpoints' eps is 1e-8)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one fused kernel (bit-identical to x * rsqrt(mean(x^2) + eps) * w here): fewer ops per step
        return F.rms_norm(x.float(), self.weight.shape, self.weight.float(), self.eps).type_as(x)


class LayerScale(nn.Module):
    """Per-channel residual scale of the codec transformer (`*_layer_scale.scale`)."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class GatedMLP(nn.Module):
    """Decoder FFN: fc1 gives [gate | value], out = fc2(silu(gate) * value)."""

    def __init__(self, hidden: int, ffn_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden, ffn_dim, bias=False)
        self.fc2 = nn.Linear(ffn_dim // 2, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.fc1(x).chunk(2, dim=-1)  # 2 x [B, S, ffn_dim / 2]
        return self.fc2(F.silu(gate) * value)


def few_row_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                   kernel: bool = False) -> torch.Tensor:
    """F.linear (x [..., in] -> [..., out]) in the form that is fast when x has few rows.

    A live frame gives the codec's transformer 2 rows and its last convolutions 1 or 2, so each of
    its products reads a weight matrix to use it on a couple of vectors. As x @ W^T (F.linear) MKL
    takes its small-matrix path, which on AVX2 CPUs (AMD Zen 3, 2 cores) reads weights at 4-7 GB/s;
    the same product as W @ x^T runs at 9-16 GB/s (the codec transformer's 100 MB: 24 -> 12 ms).
    The two equal each other to rounding (bit for bit from 64 rows up, on that machine).
    With `kernel` (the compiled int8 and int4 steps, which build Surtitle's kernels: see
    MimiEncoder.use_kernels) up to KERNEL_ROWS rows go to core/row_products.cpp instead, which
    streams W at the bus's rate: the codec transformer's 100 MB in 5.9 ms against MKL's 11.3, from
    memory (2-core Zen 3). It sums in another order, so results differ from MKL's in the last bits.
    """
    # rows must be contiguous: MKL reads W at half speed when x^T arrives as a plain [in, M] matrix
    flat = x.reshape(-1, x.shape[-1]).contiguous()  # [M, in]
    if kernel and flat.shape[0] <= KERNEL_ROWS and native.loaded() is not None and \
            flat.dtype == weight.dtype == torch.float32 and flat.device.type == "cpu":
        out = few_rows_linear(flat, weight.contiguous())  # [M, out]
    else:
        out = torch.mm(weight, flat.t()).t()  # [M, out], a transposed view of W @ x^T
    if bias is not None:
        out = out + bias
    return out.reshape(*x.shape[:-1], weight.shape[0])


@torch.library.custom_op("surtitle::few_rows_linear", mutates_args=())
def few_rows_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [M, in] float32 (M <= KERNEL_ROWS) times weight [out, in] -> [M, out]; opaque to the compiler."""
    return native.loaded().few_rows_linear(x, weight)


@few_rows_linear.register_fake
def _(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return x.new_empty(x.shape[0], weight.shape[0])


class FewRowLinear(nn.Linear):
    """nn.Linear (same parameters and checkpoint keys) that computes through few_row_linear."""

    row_kernel = False  # few_row_linear's `kernel`, set by MimiEncoder.use_kernels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return few_row_linear(x, self.weight, self.bias, self.row_kernel)


class GeluMLP(nn.Module):
    """Codec FFN: plain exact-erf GELU between two bias-free linears."""

    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.fc1 = FewRowLinear(hidden, inner, bias=False)
        self.fc2 = FewRowLinear(inner, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Rotary:
    """Rotary position embedding, half-split ("rotate_half") convention of the -trfs weights.

    The converter permuted the q/k rows of Kyutai's interleaved-pair weights so that this form is
    exact (model-spec-transformers §2.3). Angles are computed in float32 from absolute positions,
    which keep growing for the whole stream: nothing here is tied to a maximum length.
    """

    def __init__(self, head_dim: int, theta: float):
        self.head_dim = head_dim
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device="cpu").float() / head_dim))

    def cos_sin(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """positions [B, S] (int) -> cos, sin [B, 1, S, head_dim] ready to broadcast over heads."""
        if self.inv_freq.device != positions.device:
            self.inv_freq = self.inv_freq.to(positions.device)
        # traced, the angles go through an opaque op (see rope_table); eager, the same arithmetic directly
        angles = rope_table if torch.compiler.is_compiling() else rope_angles
        cos, sin = angles(positions, self.inv_freq)
        return cos.to(dtype), sin.to(dtype)


def rope_angles(positions: torch.Tensor, inv_freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """positions [B, S], inv_freq [D/2] -> cos, sin [B, 1, S, D] float32."""
    freqs = positions.float()[..., None] * inv_freq  # [B, S, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)[:, None]  # [B, 1, S, D]
    return emb.cos(), emb.sin()


# rope_angles as an op opaque to torch.compile, so that a compiled step computes the angles once:
# inlined, inductor evaluated cos and sin inside each attention loop that reads a rotated query,
# once per key slot. Eager steps call rope_angles itself (the op's dispatch costs ~25 us a call).
rope_table = torch.library.custom_op("surtitle::rope_table", rope_angles, mutates_args=())


@rope_table.register_fake
def _(positions: torch.Tensor, inv_freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (positions.shape[0], 1, positions.shape[1], 2 * inv_freq.shape[0])
    return positions.new_empty(shape, dtype=torch.float32), positions.new_empty(shape, dtype=torch.float32)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin
