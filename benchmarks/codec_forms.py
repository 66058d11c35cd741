"""The codec's hand-picked forms against the plainer ones they replaced, each undone alone, same run.

    python -m benchmarks.codec_forms [--rounds 4]

Builds the full-size Mimi encoder with random weights and times one live frame (1920 samples per
call) and a file's block (32 frames per call) with the forms the codec uses and with each form
undone on its own, interleaved round by round so that a machine whose speed drifts affects all
alike. The forms:

- products as W @ x^T rather than x @ W^T (what F.linear and a batched matmul over the codebook
  table give): MKL's few-row kernels read weights at a third of the bus on AVX2 CPUs;
- the rows of x made contiguous first: MKL reads W at half speed when x^T comes as a plain matrix;
- q, k and v stacked into one product per layer;
- the narrow strided convs run by oneDNN rather than as a matmul over unfolded windows;
- a live frame's codebook search through Surtitle's kernel over int8 copies of the books
  (core.codebook_search; when the kernels can be built here) rather than the float32 product;
- a live frame's float32 products through Surtitle's row kernel (core/row_products.cpp) rather
  than MKL's few-row path (the forms above are MKL's: they undo the kernel as well).

With --evict MB (default: the int4 1b decoder's 470 MB) each timed call first reads that much
other memory, as a live step does between two frames, so the codec's weights come from memory
and not from a cache they would never be found in. Also checks that every variant gives the same
codes, and times the forms in use compiled with torch.compile, one graph per live frame, as the
compiled live step runs the codec (skipped without a C++ compiler or with --no-compiled).
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch
import torch.nn.functional as F

import core.conv
import core.layers
from benchmarks.random_model import random_state
from core import native
from core.config import MimiConfig
from core.compiled_step import CompiledStep, compiler_found
from core.conv import CausalConv1d
from core.mimi import Codebook, MimiEncoder
from core.runtime import configure_threads


def plain_nearest(book: Codebook, x: torch.Tensor) -> torch.Tensor:
    """The search as a batched matmul with the table's transposed view (the layout before this form)."""
    x = x.float()
    norm = x.pow(2).sum(-1, keepdim=True)
    augmented = torch.cat([x.mul(-2), norm, torch.ones_like(norm)], dim=-1)[None]  # [1, M, dim + 2]
    table = book._plain_table  # [N, dim + 2], contiguous
    return augmented.matmul(table[None].mT).clamp_min_(0).sqrt_()[0].argmin(dim=-1)


def uncopied_rows_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                         kernel: bool = False) -> torch.Tensor:
    """few_row_linear without making the rows contiguous first."""
    flat = x.reshape(-1, x.shape[-1])
    out = torch.mm(weight, flat.t()).t()
    if bias is not None:
        out = out + bias
    return out.reshape(*x.shape[:-1], weight.shape[0])


class Forms:
    """Undoes one of the codec's forms at a time (or none), and puts it back."""

    names = ("used", "MKL's few-row products", "x @ W^T", "rows as they come", "q, k, v apart",
             "all strided convs unfolded", "float32 codebook search")

    def __init__(self, codec: MimiEncoder):
        self.books = [m for m in codec.modules() if isinstance(m, Codebook)]
        for book in self.books:
            book._plain_table = book._augmented_t.t().contiguous()
        self.tables = [book.search for book in self.books]
        self.row_modules = [m for m in codec.modules() if hasattr(m, "row_kernel")]
        self.kernels = any(m.row_kernel for m in self.row_modules)
        self.attentions = [layer.self_attn for layer in codec.encoder_transformer.layers]
        self.fused = [a._fused_qkv for a in self.attentions]
        self.convs = [m for m in codec.modules() if isinstance(m, CausalConv1d)]
        self.as_matmul = [c.as_matmul for c in self.convs]
        self.few_rows = core.layers.few_row_linear

    def use(self, name: str) -> None:
        linear: Callable = self.few_rows
        if name == "x @ W^T":
            linear = lambda x, w, b=None, kernel=False: F.linear(x, w, b)  # noqa: E731
        elif name == "rows as they come":
            linear = uncopied_rows_linear
        core.layers.few_row_linear = core.conv.few_row_linear = linear
        for book in self.books:
            if name == "x @ W^T":
                book.nearest = lambda x, book=book: plain_nearest(book, x)
            elif "nearest" in vars(book):
                del book.nearest
        searched_with_kernel = name not in ("x @ W^T", "float32 codebook search")
        for book, table in zip(self.books, self.tables):
            book.search = table if searched_with_kernel else None
        for module in self.row_modules:  # the other forms are MKL's: they undo the kernel too
            module.row_kernel = self.kernels and name in ("used", "float32 codebook search")
        for attn, fused in zip(self.attentions, self.fused):
            attn._fused_qkv = None if name == "q, k, v apart" else fused
        for conv, used in zip(self.convs, self.as_matmul):
            unfold = conv.conv.dilation[0] == 1 and conv.stride > 1
            conv.as_matmul = used or (unfold and name == "all strided convs unfolded")


def ms_per_frame(codec: MimiEncoder, frames: int, calls: int, other: torch.Tensor) -> float:
    state = codec.new_state(1)
    audio = torch.randn(1, codec.config.frame_size * frames, generator=torch.Generator().manual_seed(0)) * 0.1
    for _ in range(3):
        codec.encode_frames(audio, state, codec.config.num_quantizers)
    times = []
    for _ in range(calls):
        other.sum()  # what a step reads between two frames (--evict)
        t0 = time.perf_counter()
        codec.encode_frames(audio, state, codec.config.num_quantizers)
        times.append(time.perf_counter() - t0)
    return sorted(times)[calls // 2] * 1000 / frames


def compiled_live(codec: MimiEncoder, other: torch.Tensor, calls: int = 25) -> tuple[float, torch.Tensor] | None:
    """A live frame through the codec compiled as the compiled step compiles it (the forms in use):
    (median ms per frame, its codes for live_codes' audio), or None without a C++ compiler."""
    if not compiler_found():
        return None
    state, fs, books = codec.new_state(1), codec.config.frame_size, codec.config.num_quantizers
    frame = torch.zeros(1, fs)  # one fixed buffer, as FrameStepper feeds its graph: no recompiles
    step = CompiledStep(lambda f: codec.encode_frames(f, state, books), "codec")
    audio = torch.randn(1, fs * 40, generator=torch.Generator().manual_seed(1)) * 0.1
    codes = []
    for i in range(0, audio.shape[1], fs):
        frame.copy_(audio[:, i:i + fs])
        codes.append(step(frame).clone())
    times = []
    for _ in range(calls):
        other.sum()
        t0 = time.perf_counter()
        step(frame)
        times.append(time.perf_counter() - t0)
    return sorted(times)[calls // 2] * 1000, torch.cat(codes, dim=1)


def live_codes(codec: MimiEncoder, frames: int = 40) -> torch.Tensor:
    state, fs = codec.new_state(1), codec.config.frame_size
    audio = torch.randn(1, fs * frames, generator=torch.Generator().manual_seed(1)) * 0.1
    return torch.cat([codec.encode_frames(audio[:, i:i + fs], state, codec.config.num_quantizers)
                      for i in range(0, audio.shape[1], fs)], dim=1)


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--variants", default=None,
                        help="comma-separated variants to time beside 'used' (default: all)")
    parser.add_argument("--no-compiled", action="store_true",
                        help="skip timing the codec compiled (torch.compile, as the compiled live step)")
    parser.add_argument("--evict", type=float, default=470.0, help="MB read before each timed call (0: none)")
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    with torch.device("meta"):
        codec = MimiEncoder(MimiConfig())
    codec.load_state_dict(random_state(codec), assign=True)
    codec.to("cpu").prepare()
    codec.eval()
    if native.try_kernels("the codec's live frame runs"):
        codec.use_kernels()
    other = torch.ones(max(1, int(args.evict * 2**20 / 4)))
    forms = Forms(codec)
    names = Forms.names
    if args.variants:
        asked = [v.strip() for v in args.variants.split(",")]
        unknown = [v for v in asked if v not in Forms.names]
        if unknown:
            parser.error(f"unknown variant(s) {unknown}; known: {', '.join(Forms.names)}")
        names = ("used", *[v for v in asked if v != "used"])
    codes = {}
    for name in names:
        forms.use(name)
        codes[name] = live_codes(codec)
    figures: dict[str, dict[int, list[float]]] = {name: {1: [], 32: []} for name in names}
    for _ in range(args.rounds):
        for name in names:
            forms.use(name)
            figures[name][1].append(ms_per_frame(codec, 1, 25, other))
            figures[name][32].append(ms_per_frame(codec, 32, 4, other))
    forms.use("used")
    print(f"Mimi encoder, {threads} thread(s), {args.evict:.0f} MB read between calls; "
          "median ms per frame, one figure per round")
    print(f"{'variant':28} {'live frame (1 per call)':32} {'file block (32 per call)':32} codes as used")
    for name in names:
        live = " ".join(f"{v:5.1f}" for v in figures[name][1])
        block = " ".join(f"{v:5.1f}" for v in figures[name][32])
        same = float((codes[name] == codes["used"]).float().mean())
        print(f"{name:28} {live:32} {block:32} {same:.4f}")
    compiled = compiled_live(codec, other) if not args.no_compiled else None
    if compiled is not None:
        ms, compiled_codes = compiled
        same = float((compiled_codes == codes["used"]).float().mean())
        print(f"{'used, compiled':28} {ms:5.1f} (as a compiled live step runs it: one graph per frame){'':4} {same:.4f}")


if __name__ == "__main__":
    main()
