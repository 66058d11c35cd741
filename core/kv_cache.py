"""A fixed-size ring of keys and values for sliding-window attention over an endless stream.

All streams of a batch step together, so they share one clock: step g writes slot g % capacity in
every layer. Each slot remembers the global step it holds (-1 = never written); each stream
remembers the global step where it last started, so one stream can be reset while the others go on,
and its positions (for RoPE) restart at 0. Query step q sees the key of step k iff the key belongs
to the query's stream (k >= start), is not in its future (q - k >= 0) and lies in the window
(q - k < window). Capacity is window + chunk - 1 so that writing a chunk of new keys before
attending never evicts a key that one of the chunk's queries still needs.
"""

from __future__ import annotations

import torch


class RingKVCache:
    def __init__(self, *, layers: int, batch: int, kv_heads: int, head_dim: int, window: int,
                 max_chunk: int, dtype: torch.dtype, device: torch.device | str):
        self.window = window
        self.max_chunk = max_chunk
        self.capacity = window + max_chunk - 1
        shape = (batch, kv_heads, self.capacity, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.slot_step = torch.full((self.capacity,), -1, dtype=torch.long, device=device)
        self.stream_start = torch.zeros(batch, dtype=torch.long, device=device)
        self.step = 0  # global step of the next write

    @property
    def batch_size(self) -> int:
        return self.stream_start.shape[0]

    def reset(self, streams: torch.Tensor | None = None) -> None:
        """Forget everything (streams=None) or only the given streams (bool mask or indices)."""
        if streams is None:
            self.slot_step.fill_(-1)
            self.stream_start.zero_()
            self.step = 0
            for t in self.keys + self.values:  # not needed for correctness; keeps stale data out of sight
                t.zero_()
        else:
            self.stream_start[streams] = self.step

    def advance(self, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Claim slots for `length` new steps.

        Returns slots [S], positions [B, S] (per-stream RoPE positions) and mask [B, 1, S, capacity].
        """
        assert 0 < length <= self.max_chunk, "chunk larger than the ring was sized for"
        device = self.slot_step.device
        steps = torch.arange(self.step, self.step + length, device=device)  # [S]
        slots = steps % self.capacity
        self.slot_step[slots] = steps
        self.step += length
        positions = steps[None, :] - self.stream_start[:, None]  # [B, S]
        delta = steps[:, None] - self.slot_step[None, :]  # [S, C]
        visible = (delta >= 0) & (delta < self.window)
        mine = self.slot_step[None, :] >= self.stream_start[:, None]  # [B, C]
        mask = visible[None] & mine[:, None, :]  # [B, S, C]
        return slots, positions, mask[:, None]

    def write(self, layer: int, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """k, v [B, H_kv, S, D] go into `slots`; returns the whole ring of that layer."""
        keys, values = self.keys[layer], self.values[layer]
        keys.index_copy_(2, slots, k.to(keys.dtype))
        values.index_copy_(2, slots, v.to(values.dtype))
        return keys, values


def sliding_causal_mask(positions: torch.Tensor, window: int) -> torch.Tensor:
    """Mask for attention within one chunk without a cache: positions [B, S] -> [B, 1, S, S]."""
    delta = positions[:, :, None] - positions[:, None, :]
    return ((delta >= 0) & (delta < window))[:, None]
