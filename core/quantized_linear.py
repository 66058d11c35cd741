"""What every quantized decoder linear shares (core.quantize's Int8Linear, core.int4's Int4Linear).

Apart from both, so that each builds on it without importing the other.
"""

from __future__ import annotations

import torch
from torch import nn

from .compiled_step import quantized_linear, register_quantized_linear


class QuantizedLinear(nn.Module):
    """What Int8Linear and Int4Linear share: a bias-free linear that may stack several linears
    sharing their input (`parts`: their output sizes, e.g. q, k, v), whose parts arrive one at a
    time, and a product that a compiled step reaches through one opaque op (core.compiled_step)."""

    kind = ""  # how extra_repr names the weights

    def __init__(self, in_features: int, out_features: int, parts: tuple[int, ...] | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.parts = parts or (out_features,)
        assert sum(self.parts) == out_features, "parts must add up to the output size"
        self._pending: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # part -> its two quantized tensors
        self._number = register_quantized_linear(self)  # how a compiled step finds this module's weights

    def _float_part(self, weight: torch.Tensor, part: int) -> torch.Tensor:
        w = weight.detach().float().cpu()
        assert w.shape == (self.parts[part], self.in_features), "weight does not fit this part"
        return w

    def _add_part(self, part: int, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Keep one part's tensors; once every part is in, both stacked in part order (else None)."""
        self._pending[part] = (first, second)
        if len(self._pending) < len(self.parts):
            return None
        stacked = tuple(torch.cat([self._pending[i][j] for i in range(len(self.parts))]) for j in (0, 1))
        self._pending.clear()
        return stacked

    def _run(self, flat: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():  # traced: the weights are found by this module's number
            return quantized_linear(flat, self._number, self.out_features)
        return self.product(flat)

    def product(self, flat: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        stacked = f", {len(self.parts)} stacked" if len(self.parts) > 1 else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, {self.kind}{stacked}"
