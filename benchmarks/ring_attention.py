"""A decoder step's attention over a full key/value ring, three ways, interleaved in one run.

    python -m benchmarks.ring_attention [--shape 1b] [--rounds 5]

One query step of every decoder layer over its whole ring (the 1b: 16 layers, 16 heads of 128,
750 slots; 6 MB of bfloat16 keys and values a layer), timed as:
- "kernel": Surtitle's kernel (core/ring_attention.cpp, built on first use) over the bfloat16 ring;
- "kernel, int8 ring": the same kernel over the ring stored as int8 with a scale per slot and head
  (core.kv_cache.quantize_rows: half the bytes);
- "inductor loops": widening_attention's torch form, compiled, over the same ring (what a compiled
  step ran before the kernel);
- "SDPA, float32 ring": what an uncompiled step runs on a CPU without native bfloat16.
Each round times every form once, so a memory bus whose speed drifts affects all alike. Also
prints how far the kernel's output lies from float32 SDPA over the same (bfloat16) values.
"""

from __future__ import annotations

import argparse
import time
import types

import torch
import torch.nn.functional as F

import core.attention
from benchmarks.random_model import shape_config
from core import native
from core.kv_cache import quantize_rows
from core.runtime import configure_threads


def per_step_ms(fn, rings, q, mask, calls: int = 10) -> float:
    """Median ms of one step: fn over every layer's ring in turn (each ring read from memory, not cache)."""
    for k, v in rings[:2]:
        fn(q, k, v, mask)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        for k, v in rings:
            fn(q, k, v, mask)
        times.append(time.perf_counter() - t0)
    return sorted(times)[calls // 2] * 1000


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="1b", choices=["1b", "2.6b"])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    threads = configure_threads(None)
    cfg = shape_config(args.shape)
    heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
    dim, slots = cfg.hidden_size // heads, cfg.sliding_window
    g = torch.Generator().manual_seed(0)
    rings = [tuple(torch.randn(1, kv_heads, slots, dim, generator=g).to(torch.bfloat16) for _ in range(2))
             for _ in range(cfg.num_hidden_layers)]
    wide = [(k.float(), v.float()) for k, v in rings]
    narrow = [(quantize_rows(k.float()), quantize_rows(v.float())) for k, v in rings]  # ((int8, scales), (int8, scales))
    q = torch.randn(1, heads, 1, dim, generator=g)
    mask = torch.ones(1, 1, 1, slots, dtype=torch.bool)

    kernel = native.kernels().ring_attention
    real = core.attention.native
    core.attention.native = types.SimpleNamespace(loaded=lambda: None)  # traced without the kernel
    loops = torch.compile(core.attention.widening_attention, dynamic=False)
    loops(q, *rings[0], mask)
    core.attention.native = real

    def sdpa(q, k, v, mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=heads != kv_heads)

    def kernel_int8(q, k, v, mask):
        return kernel(q, k[0], v[0], mask, k[1], v[1])

    forms = {"kernel": (kernel, rings), "kernel, int8 ring": (kernel_int8, narrow), "inductor loops": (loops, rings),
             "SDPA, float32 ring": (sdpa, wide)}
    figures: dict[str, list[float]] = {name: [] for name in forms}
    for _ in range(args.rounds):
        for name, (fn, data) in forms.items():
            figures[name].append(per_step_ms(fn, data, q, mask))
    ring_mb = sum(k.numel() + v.numel() for k, v in rings) * 2 / 1e6
    ring_bytes = {"kernel, int8 ring": 0.5 + 4 / dim / 2, "SDPA, float32 ring": 2.0}  # against bfloat16
    print(f"{args.shape}: {cfg.num_hidden_layers} layers x {heads} heads of {dim} over {slots} slots "
          f"({ring_mb:.0f} MB of bfloat16 ring), {threads} thread(s); ms per step, one figure per round")
    for name, values in figures.items():
        best = min(values)
        print(f"{name:20} " + " ".join(f"{v:6.1f}" for v in values) + f"   best {best:5.1f} ms"
              f" = {ring_mb * ring_bytes.get(name, 1.0) / best:4.1f} GB/s")
    expected = sdpa(q, *wide[0], mask)
    print(f"kernel vs float32 SDPA over the same values: max abs diff "
          f"{(kernel(q, *rings[0], mask) - expected).abs().max().item():.2e}; over the int8 ring "
          f"{(kernel_int8(q, *narrow[0], mask) - expected).abs().max().item():.2e} (output's largest "
          f"{expected.abs().max().item():.2f})")


if __name__ == "__main__":
    main()
