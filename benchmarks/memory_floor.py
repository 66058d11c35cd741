"""The memory floor of a frame: the bytes one step must read, at the rate this machine reads now.

At batch 1 on a CPU a step computes little on each byte it fetches: every decoder weight is read
once, the key/value ring is read whole (attention looks at every slot), and a codec call reads
every codec weight and codebook (once per call, so a call over n frames pays 1/n of it per
frame). No kernel can beat streaming those bytes from memory, so bytes / bandwidth is the best
time a frame could take, and the gap between it and the measured time is what is left to win.
The bandwidth is measured in the same run, beside the timings, because a cloud VM's memory bus
is shared with its neighbours and its speed drifts from one hour to the next.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from core.codebook_search import ROWS
from core.mimi import Codebook
from core.quantized_linear import QuantizedLinear


def read_bandwidth_gbs(megabytes: int = 256, repeats: int = 7) -> float:
    """GB/s that a sum over `megabytes` of float32 reads, on torch's threads (median of `repeats`)."""
    data = torch.empty(megabytes * 2**20 // 4).normal_()  # [N]: far larger than any cache
    data.sum()  # the first pass faults the pages in
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        data.sum()
        times.append(time.perf_counter() - t0)
    return data.numel() * 4 / statistics.median(times) / 1e9


def decoder_bytes(model: nn.Module) -> int:
    """Bytes one decoder step reads: its linears' weights and the embedding rows it looks up."""
    total = 0
    for name, module in model.named_modules():
        if name.startswith("codec_model"):
            continue
        if isinstance(module, QuantizedLinear):
            total += module.packed_bytes
        elif isinstance(module, nn.Linear):
            total += module.weight.numel() * module.weight.element_size()
        elif isinstance(module, nn.Embedding):  # one row per codebook and the text id: a lookup, not a read
            total += module.weight.shape[1] * module.weight.element_size() * (1 + model.config.num_codebooks)
    return total


def codec_call_bytes(codec: nn.Module, frames: int = 1) -> int:
    """Bytes one codec call of `frames` frames reads: its weights and the codebook tables it searches
    (the int8 copies where Surtitle's kernel searches them, core.codebook_search)."""
    weights = sum(p.numel() * p.element_size() for p in codec.parameters())
    tables = 0
    for m in codec.modules():
        if isinstance(m, Codebook) and m._augmented_t is not None:
            if m.search is not None and frames <= ROWS:
                tables += sum(t.numel() * t.element_size() for t in (m.search.values, m.search.scales, m.search.norms))
            else:
                tables += m._augmented_t.numel() * m._augmented_t.element_size()
    return weights + tables


def ring_bytes(cache) -> int:
    """Bytes of a decoder key/value ring, scales included: attention reads all of it every step."""
    parts = cache.keys + cache.values + (cache.key_scales or []) + (cache.value_scales or [])
    return sum(t.numel() * t.element_size() for t in parts)


def frame_floor(model: nn.Module, cache, frames_per_codec_call: int, gbs: float) -> dict:
    """The bytes a frame reads and the time they take at `gbs`: {"read_mb", "floor_ms"}."""
    read = decoder_bytes(model) + ring_bytes(cache) + \
        codec_call_bytes(model.codec_model, frames_per_codec_call) / frames_per_codec_call
    return {"read_mb": read / 1e6, "floor_ms": read / (gbs * 1e9) * 1e3}
