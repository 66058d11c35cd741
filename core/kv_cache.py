"""A fixed-size ring of keys and values for sliding-window attention over an endless stream.

Each batch row (one stream slot) keeps its own clock, because rows do not always step together:
a step may leave some rows out (`active`), and each row can be reset alone. Row b writes its next
step `next_step[b]` into slot `next_step[b] % capacity`; each slot remembers the row-step it holds
(`slot_step`, -1 = never written), and each row remembers the row-step where its current stream
started (`stream_start`), so a reset is one assignment and the stream's positions (for RoPE) restart
at 0. Query step q sees the key of step k iff the key belongs to the query's stream (k >= start), is
not in its future (q - k >= 0) and lies in the window (q - k < window).

Capacity is window + chunk - 1 so that writing a chunk of new keys before attending never evicts a
key that one of the chunk's queries still needs: the chunk's first query q needs keys back to
q - window + 1, and the ring then holds exactly q - window + 1 .. q + chunk - 1.

A row left out of a step still goes through the same kernels (shapes never depend on who is
active, so the step can be replayed as a CUDA graph), but what it would write is replaced by what
its slot already holds: its ring, positions and clock come out bit for bit unchanged.

A ring of dtype int8 (a compiled int8 or int4 CPU step, core.quantize.compiled_kv_dtype) stores
each slot's key and value of each head as int8 with a float32 scale (`scales(layer)`), half the
bytes of bfloat16 for a step that reads the whole ring.
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
        self.key_scales = self.value_scales = None  # [B, H_kv, C] float32 per layer, for an int8 ring
        if dtype == torch.int8:
            self.key_scales = [torch.zeros(shape[:3], device=device) for _ in range(layers)]
            self.value_scales = [torch.zeros(shape[:3], device=device) for _ in range(layers)]
        self.slot_step = torch.full((batch, self.capacity), -1, dtype=torch.long, device=device)
        self.stream_start = torch.zeros(batch, dtype=torch.long, device=device)
        self.next_step = torch.zeros(batch, dtype=torch.long, device=device)  # per row: step of its next write
        self._rows = torch.arange(batch, device=device)
        # set by advance() for the layers' writes of that step: which rows really write (None = all)
        self._writing: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.stream_start.shape[0]

    def reset(self, streams: torch.Tensor | None = None) -> None:
        """Forget everything (streams=None) or only the given streams (bool mask [B] or indices)."""
        if streams is None:
            self.slot_step.fill_(-1)
            self.stream_start.zero_()
            self.next_step.zero_()
            for t in self.keys + self.values + (self.key_scales or []) + (self.value_scales or []):
                t.zero_()  # not needed for correctness; keeps stale data out of sight
        else:
            # in place and without a host sync: a captured CUDA graph keeps reading these tensors
            mask = stream_mask(streams, self.batch_size, self.next_step.device)
            self.stream_start.copy_(torch.where(mask, self.next_step, self.stream_start))

    def look_full(self) -> None:
        """Make every row's ring look a whole window deep (of zero keys and values), without stepping.

        For timing only: a step attends over every slot that its stream has filled, so a step
        timed in a stream's first seconds would be cheaper than any step past its first window
        (a minute of the 1b). The next steps attend over the whole ring; reset() afterwards.
        """
        self.slot_step.copy_(torch.arange(self.capacity, device=self.slot_step.device).expand_as(self.slot_step))
        self.stream_start.zero_()
        self.next_step.fill_(self.capacity)

    def advance(self, length: int, active: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Claim slots for `length` new steps of every row, or only of the rows where `active` [B] is True.

        Returns slots [B, S] (per row), positions [B, S] (per-stream RoPE positions) and mask
        [B, 1, S, capacity]. Rows left out attend everywhere (their output is thrown away; a row
        with nothing to attend to would give NaN) and keep their clock.
        """
        assert 0 < length <= self.max_chunk, "chunk larger than the ring was sized for"
        steps = self.next_step[:, None] + torch.arange(length, device=self.next_step.device)  # [B, S]
        slots = steps % self.capacity
        if active is None:
            self.slot_step.scatter_(1, slots, steps)
            self.next_step += length
        else:
            kept = self.slot_step.gather(1, slots)  # [B, S]
            self.slot_step.scatter_(1, slots, torch.where(active[:, None], steps, kept))
            self.next_step += active * length
        self._writing = active
        positions = steps - self.stream_start[:, None]  # [B, S]
        delta = steps[:, :, None] - self.slot_step[:, None, :]  # [B, S, C]
        mine = (self.slot_step >= self.stream_start[:, None])[:, None, :]  # [B, 1, C]
        mask = (delta >= 0) & (delta < self.window) & mine  # [B, S, C]
        if active is not None:
            mask = mask | ~active[:, None, None]
        return slots, positions, mask[:, None]

    def write(self, layer: int, slots: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """k, v [B, H_kv, S, D] go into each row's `slots` [B, S]; returns the whole ring of that layer."""
        rows = self._rows[:, None]  # [B, 1]: with slots [B, S], indexes ring[b, :, slots[b, s], :]
        if self.key_scales is None:
            self._put(self.keys[layer], rows, slots, k.to(self.keys[layer].dtype))
            self._put(self.values[layer], rows, slots, v.to(self.values[layer].dtype))
        else:
            for ring, scales, x in ((self.keys, self.key_scales, k), (self.values, self.value_scales, v)):
                stored, scale = quantize_rows(x)  # [B, H_kv, S, D] int8, [B, H_kv, S]
                self._put(ring[layer], rows, slots, stored)
                self._put(scales[layer], rows, slots, scale)
        return self.keys[layer], self.values[layer]

    def scales(self, layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """An int8 ring's key and value scales [B, H_kv, C] for `layer` (None for a float ring)."""
        if self.key_scales is None:
            return None
        return self.key_scales[layer], self.value_scales[layer]

    def _put(self, ring: torch.Tensor, rows: torch.Tensor, slots: torch.Tensor, new: torch.Tensor) -> None:
        """new [B, H_kv, S, ...] into ring [B, H_kv, C, ...] at each row's slots."""
        new = new.transpose(1, 2)  # [B, S, H_kv, ...], the layout that indexing yields
        if self._writing is not None:  # rows left out write back what their slots hold
            keep = ~self._writing.view(-1, *([1] * (new.dim() - 1)))
            new = torch.where(keep, ring[rows, :, slots], new)
        # index_put_ writes only the new entries (scatter_ on the CPU copied the whole ring each time)
        ring[rows, :, slots] = new


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [..., D] float -> int8 [..., D] and float32 scales [...]: each row's largest magnitude maps to 127."""
    x = x.float()
    scale = x.abs().amax(dim=-1) / 127
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (x / safe[..., None]).round_().clamp_(-127, 127).to(torch.int8), scale


def dequantize_rows(stored: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """quantize_rows undone: int8 [..., D] and scales [...] -> float32 [..., D]."""
    return stored.float() * scale[..., None]


def stream_mask(streams: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """Streams given as a bool mask [B] or as indices -> bool mask [B] on `device`."""
    streams = torch.as_tensor(streams, device=device)
    if streams.dtype == torch.bool:
        return streams
    return torch.zeros(batch, dtype=torch.bool, device=device).index_fill_(0, streams.reshape(-1).long(), True)


def sliding_causal_mask(positions: torch.Tensor, window: int) -> torch.Tensor:
    """Mask for attention within one chunk without a cache: positions [B, S] -> [B, 1, S, S]."""
    delta = positions[:, :, None] - positions[:, None, :]
    return ((delta >= 0) & (delta < window))[:, None]
