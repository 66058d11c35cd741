"""The codec's products in the form it uses (W @ x^T) against the plain form (x @ W^T), same run.

    python -m benchmarks.codec_forms [--rounds 4]

Builds the full-size Mimi encoder with random weights and times one live frame (1920 samples per
call) and a file's block (32 frames per call) with each form, interleaved round by round so that a
machine whose speed drifts affects both alike. The plain form is what F.linear and a batched matmul
over the codebook table give; on an AVX2 CPU where MKL's few-row kernels are slow the difference
is large, elsewhere it should be small. Also checks both forms give the same codes.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import core.conv
import core.layers
from benchmarks.random_model import random_state
from core.config import MimiConfig
from core.mimi import Codebook, MimiEncoder
from core.runtime import configure_threads


def plain_nearest(book: Codebook, x: torch.Tensor) -> torch.Tensor:
    """The search as a batched matmul with the table's transposed view (the layout before this form)."""
    x = x.float()
    norm = x.pow(2).sum(-1, keepdim=True)
    augmented = torch.cat([x.mul(-2), norm, torch.ones_like(norm)], dim=-1)[None]  # [1, M, dim + 2]
    table = book._plain_table  # [N, dim + 2], contiguous
    return augmented.matmul(table[None].mT).clamp_min_(0).sqrt_()[0].argmin(dim=-1)


class Forms:
    """Switches the codec's products between the form it uses and the plain one."""

    def __init__(self, codec: MimiEncoder):
        self.books = [m for m in codec.modules() if isinstance(m, Codebook)]
        for book in self.books:
            book._plain_table = book._augmented_t.t().contiguous()
        self.few_rows = core.layers.few_row_linear

    def use(self, plain: bool) -> None:
        linear = (lambda x, w, b=None: F.linear(x, w, b)) if plain else self.few_rows
        core.layers.few_row_linear = core.conv.few_row_linear = linear
        for book in self.books:
            if plain:
                book.nearest = lambda x, book=book: plain_nearest(book, x)
            elif "nearest" in vars(book):
                del book.nearest


def ms_per_frame(codec: MimiEncoder, frames: int, calls: int) -> float:
    state = codec.new_state(1)
    audio = torch.randn(1, codec.config.frame_size * frames, generator=torch.Generator().manual_seed(0)) * 0.1
    for _ in range(3):
        codec.encode_frames(audio, state, codec.config.num_quantizers)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        codec.encode_frames(audio, state, codec.config.num_quantizers)
        times.append(time.perf_counter() - t0)
    return sorted(times)[calls // 2] * 1000 / frames


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
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    with torch.device("meta"):
        codec = MimiEncoder(MimiConfig())
    codec.load_state_dict(random_state(codec), assign=True)
    codec.to("cpu").quantizer.refresh()
    codec.eval()
    forms = Forms(codec)
    codes = {}
    for plain in (True, False):
        forms.use(plain)
        codes[plain] = live_codes(codec)
    same = float((codes[True] == codes[False]).float().mean())
    figures = {True: {1: [], 32: []}, False: {1: [], 32: []}}
    for _ in range(args.rounds):
        for plain in (True, False):
            forms.use(plain)
            figures[plain][1].append(ms_per_frame(codec, 1, 25))
            figures[plain][32].append(ms_per_frame(codec, 32, 5))
    forms.use(False)
    print(f"Mimi encoder, {threads} thread(s); median ms per frame, one figure per round")
    for frames, label in ((1, "live frame (1 per call)"), (32, "file block (32 per call)")):
        plain = " ".join(f"{v:.1f}" for v in figures[True][frames])
        used = " ".join(f"{v:.1f}" for v in figures[False][frames])
        print(f"{label:26} x @ W^T: {plain:24} W @ x^T (used): {used}")
    print(f"codes equal between the forms over 40 live frames: {same:.4f}")


if __name__ == "__main__":
    main()
