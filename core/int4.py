"""int4 decoder weights: groups of 32 values with one fp16 scale, and the kernel that multiplies them.

A decoder step reads every weight once, so on a CPU whose memory bus sets the pace the step time
follows the bytes: int4 with its scales reads 0.5625 bytes a weight against int8's 1 (the 1b
decoder's linears: 0.47 against 0.84 GB). No ready-made kernel for it beats fbgemm's int8 in a step
on an AVX2 CPU (docs/speed.md), so core/int4_kernel.cpp is ours: activations quantized to int8
per group of 32, products summed exactly in int32 with AVX2, split across torch's threads. It is
one of Surtitle's CPU kernels (core.native), built the first time int4 is asked for on a machine
(about a minute; later starts load it from torch's extension cache), and needs a C++ compiler,
ninja, and an x86 CPU with AVX2, FMA and F16C.

The price is precision: rounding each weight to one of 16 levels of its group moves a product about
5 times as far as int8 does (relative error 0.086 against 0.018 on random Gaussian weights), so
int4 is a mode to ask for where int8 cannot keep up, not the default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from . import native
from .errors import ConfigError
from .quantized_linear import QuantizedLinear

if TYPE_CHECKING:
    from .quantize import BackgroundPacker

GROUP = 32  # values that share a scale
PAIR = 2 * GROUP  # values that share 32 packed bytes; inputs are padded to a multiple of this


def unavailable_reason() -> str | None:
    """Why int4 cannot run on this machine, or None if it can."""
    reason = native.unavailable_reason()
    return f"int4 cannot run here: {reason} (or use int8)" if reason else None


def kernel():
    """The built kernels (core.native), with int4's advice if they cannot be built."""
    try:
        return native.kernels()  # checks unavailable_reason() itself, once per process
    except ConfigError as exc:
        raise ConfigError(f"int4 cannot run here: {exc} (or use int8)") from exc


def quantize_groups(w: torch.Tensor, rows_at_once: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """w [N, K] float (K a multiple of 64) -> packed [N, K / 2] uint8, scales [N, K / 32] float16.

    Each group's value of largest magnitude maps to -8 exactly (its scale keeps that value's sign),
    so the 16 levels span the group; the others round to the nearest level, within [-8, 7]. Rows
    are quantized `rows_at_once` at a time: whole-matrix temporaries of the 1b's largest weight
    (92 MB in float32) had lifted the peak memory of loading from 1.2 to 1.4 times the weights.
    """
    n, k = w.shape
    packed = torch.empty(n, k // 2, dtype=torch.uint8)
    scales = torch.empty(n, k // GROUP, dtype=torch.float16)
    for start in range(0, n, rows_at_once):
        block = w[start:start + rows_at_once]
        rows = block.shape[0]
        groups = block.reshape(rows, k // GROUP, GROUP)
        peak = groups.gather(-1, groups.abs().argmax(-1, keepdim=True))  # [rows, K/32, 1], signed
        scale = (peak / -8).to(torch.float16)
        step = scale.float()
        levels = torch.where(step != 0, groups / step.where(step != 0, 1.0), 0.0).round_().clamp_(-8, 7)
        stored = (levels + 8).to(torch.uint8).view(rows, k // PAIR, 2, GROUP)  # [rows, K/64, 2, 32], in [0, 15]
        # byte j of a pair: value j of its first group (low nibble), then of its second
        torch.bitwise_or(stored[:, :, 0], stored[:, :, 1] << 4, out=packed[start:start + rows].view(rows, k // PAIR, GROUP))
        scales[start:start + rows] = scale.view(rows, k // GROUP)
    return packed, scales


def dequantize_groups(packed: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The float weights that packed and scales stand for: [N, K]."""
    n = packed.shape[0]
    pairs = packed.view(n, -1, GROUP)
    stored = torch.stack((pairs & 0x0F, pairs >> 4), dim=2).reshape(n, -1, GROUP)  # [N, K/32, 32]
    return ((stored.float() - 8) * scales.float()[..., None]).reshape(n, -1)


class Int4Linear(QuantizedLinear):
    """A bias-free linear with int4 weights in groups of 32 (CPU, AVX2).

    Stacked like Int8Linear; each part is quantized as it arrives, so loading never holds more than
    one layer in float32. Inputs whose size is not a multiple of 64 are padded with zeros (tiny
    test models; the released ones need none).
    """

    kind = f"int4 groups of {GROUP}"

    def __init__(self, in_features: int, out_features: int, parts: tuple[int, ...] | None = None):
        super().__init__(in_features, out_features, parts)
        self.padded = -(-in_features // PAIR) * PAIR
        self.packed: torch.Tensor | None = None  # [out, padded / 2] uint8
        self.scales: torch.Tensor | None = None  # [out, padded / 32] float16

    def set_weight(self, weight: torch.Tensor, part: int = 0, packer: "BackgroundPacker | None" = None) -> None:
        """Quantize one part's float rows (on `packer`'s thread if given); complete once every part is in."""
        w = self._float_part(weight, part)
        if packer is None:
            self._quantize(w, part)
        else:  # one worker thread: a module's parts are still quantized one after the other
            packer.submit(self._quantize, w, part)

    def _quantize(self, w: torch.Tensor, part: int) -> None:
        if self.padded != self.in_features:
            w = F.pad(w, (0, self.padded - self.in_features))
        stacked = self._add_part(part, *quantize_groups(w))
        if stacked is not None:
            self.packed, self.scales = stacked

    def product(self, flat: torch.Tensor) -> torch.Tensor:
        """flat [M, padded] float32 -> [M, out]."""
        return (native.loaded() or kernel()).int4_linear(flat, self.packed, self.scales)  # no lock once built

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).float()  # [M, in]
        if self.padded != self.in_features:
            flat = F.pad(flat, (0, self.padded - self.in_features))
        return self._run(flat).reshape(*shape[:-1], self.out_features).to(x.dtype)

    @property
    def packed_bytes(self) -> int:
        """Bytes of the packed weights: half a byte a value, two per group of 32 for its scale."""
        return self.out_features * (self.padded // 2 + 2 * self.padded // GROUP)
