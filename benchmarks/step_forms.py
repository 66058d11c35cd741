"""The compiled CPU step's narrow forms against the wider ones they replaced, interleaved in one run.

    python -m benchmarks.step_forms [--shape 1b] [--quantize int4] [--rounds 8]

Builds the full-size shape with random weights in int8 or int4, and one compiled live stream per
variant, each over a full key/value ring (60 s streamed untimed for the 1b), then times lone
80 ms frames, 40 per variant per round, the variants taking turns so that a memory bus whose speed
drifts affects all alike. The variants:

- "used": what a compiled int8 or int4 step runs: an int8 key/value ring (core.kv_cache), the
  codebook search over int8 copies of the books (core.codebook_search) and the codec's float32
  products of a few rows through core/row_products.cpp;
- "bfloat16 ring": the ring as it was before, twice the bytes;
- "float32 codebook search": the search as a float32 product over the 67 MB of books;
- "MKL's few-row products": the codec's products through MKL (core.layers.few_row_linear).

Figures are medians of each round's 40 frames; also prints how often each variant's tokens agree
with "used" (the same audio, random weights: flat logits that flip on any rounding).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import core.generation
from benchmarks.bench import features, test_audio
from benchmarks.random_model import build, stand_in_tokenizer
from core.mimi import Codebook
from core.quantize import prepare_model
from core.runtime import configure_threads
from core.streaming import StreamingTranscriber

VARIANTS = ("used", "bfloat16 ring", "float32 codebook search", "MKL's few-row products")
FRAME = 1920


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="1b", choices=["1b", "2.6b"])
    parser.add_argument("--quantize", default="int4", choices=["int8", "int4"])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--frames", type=int, default=40, help="lone frames per variant per round")
    args = parser.parse_args()
    threads = configure_threads(None)
    model = prepare_model(build(args.shape), args.quantize)
    tokenizer, fe = stand_in_tokenizer(model.config.vocab_size - 1), features(args.shape)
    streams: dict[str, StreamingTranscriber] = {}
    used_ring = core.generation.compiled_kv_dtype
    for name in VARIANTS:
        if name == "bfloat16 ring":  # the stepper asks this name which ring a compiled step keeps
            core.generation.compiled_kv_dtype = lambda m: torch.bfloat16
        streams[name] = StreamingTranscriber(model, tokenizer, fe, compile=True)
        core.generation.compiled_kv_dtype = used_ring
    books = [m for m in model.codec_model.modules() if isinstance(m, Codebook)]
    tables = [b.search for b in books]
    row_modules = [m for m in model.codec_model.modules() if getattr(m, "row_kernel", False)]

    def use(name: str) -> None:  # the codec belongs to the model: every stream sees the change
        for book, table in zip(books, tables):
            book.search = None if name == "float32 codebook search" else table
        for module in row_modules:
            module.row_kernel = name != "MKL's few-row products"

    window_s = model.config.sliding_window * FRAME / 24000
    audio = test_audio(window_s + 2 + args.rounds * args.frames * FRAME / 24000, 1)[0]
    start = int((window_s + 2) * 24000) // FRAME * FRAME
    for name, stream in streams.items():  # fill each ring; each variant's graphs compile here too
        use(name)
        stream.push(audio[:start])
    at = dict.fromkeys(streams, start)
    figures: dict[str, list[float]] = {name: [] for name in streams}
    for _ in range(args.rounds):
        for name, stream in streams.items():
            use(name)
            times = []
            for _ in range(args.frames):
                t0 = time.perf_counter()
                stream.push(audio[at[name]:at[name] + FRAME])
                times.append(time.perf_counter() - t0)
                at[name] += FRAME
            figures[name].append(statistics.median(times) * 1000)
    use("used")
    ring = streams["used"]._stepper.cache
    print(f"{args.shape} {args.quantize} + compile, {threads} thread(s), lone frames over a full ring "
          f"({ring.capacity} slots); median ms per frame, one figure per round")
    reference = streams["used"].tokens[0]
    for name, values in figures.items():
        tokens = streams[name].tokens[0]
        agree = sum(a == b for a, b in zip(tokens, reference)) / min(len(tokens), len(reference))
        print(f"{name:26} " + " ".join(f"{v:5.1f}" for v in values) +
              f"   median {statistics.median(values):5.1f}   tokens as used {agree:.3f}")


if __name__ == "__main__":
    main()
