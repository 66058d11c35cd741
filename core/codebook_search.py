"""The residual quantizer's nearest-centroid search for a live frame, through Surtitle's kernel.

A live frame searches each of the codec's 32 codebooks (2048 float32 centroids of 256 values:
67 MB in all) with a single row, so the search costs what reading the books costs. The kernel
(core/codebook_search.cpp) reads an int8 copy instead, a quarter of the bytes, to bound every
centroid's distance, then measures exactly (in double) only the few centroids that can still be
the nearest. Its answer is the nearest centroid, not an approximation of it: the bounds are proven
in the kernel's header. It differs from the float32 product `Codebook.nearest` computes only where
two centroids are as near as float32 rounding can tell apart, where the exact answer is the better one.

It serves the compiled int8 and int4 steps, the fast modes, which build the kernels anyway
(core.generation.FrameStepper); a float32 step keeps the reference's search, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import native
from .kv_cache import quantize_rows

ROWS = 4  # the most rows one kernel call searches; more (a file's frames) read the float32 books with MKL


@dataclass(frozen=True)
class SearchTable:
    """A codebook's int8 copy: each centroid's row of int8 values with its scale."""

    values: torch.Tensor  # [N, padded dim] int8, zero past dim
    scales: torch.Tensor  # [N] float32
    l1: torch.Tensor  # [N] float32: sum of |values| per row
    norms: torch.Tensor  # [N] float32: |c|^2, summed in double

    @classmethod
    def build(cls, centroids: torch.Tensor) -> "SearchTable":
        """centroids [N, dim] float32 -> the table (dim padded to a multiple of 16)."""
        c = centroids.float()
        n, dim = c.shape
        stored, scales = quantize_rows(c)  # the int8 ring's rounding: each row's largest value maps to 127
        values = torch.zeros(n, -(-dim // 16) * 16, dtype=torch.int8)
        values[:, :dim] = stored
        return cls(values=values, scales=scales.contiguous(),
                   l1=values.float().abs().sum(dim=1).contiguous(),
                   norms=c.double().pow(2).sum(dim=1).float().contiguous())


def wanted(rows: int) -> bool:
    """Whether a search of `rows` rows should go to the kernel (which must then be loaded)."""
    return rows <= ROWS and native.loaded() is not None


@torch.library.custom_op("surtitle::nearest_centroids", mutates_args=())
def nearest_centroids(x: torch.Tensor, values: torch.Tensor, scales: torch.Tensor, l1: torch.Tensor,
                      norms: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """x [M, dim] float32 (M <= ROWS) -> index of each row's nearest centroid [M]; opaque to the compiler."""
    return native.loaded().nearest_centroids(x, values, scales, l1, norms, centroids)


@nearest_centroids.register_fake
def _(x, values, scales, l1, norms, centroids):
    return x.new_empty(x.shape[0], dtype=torch.long)
