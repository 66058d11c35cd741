"""Speed of the streaming engine on full-size shapes with random weights, next to transformers.

    python -m benchmarks.bench --shape 1b --seconds 20 --modes float32,bfloat16,int8 [--transformers]

Streams N seconds through `StreamingTranscriber` in 80 ms pushes (as a live microphone would) and
prints, per mode and batch size: ms per 80 ms frame (codec and decoder apart), the real-time factor
(frame time / 80 ms; below 1 keeps up), how step time at the end compares with the start, and
peak memory. Timing starts after `--warmup` seconds streamed untimed (default: the decoder's
attention window, 60 s for the 1b), so every timed step attends over a full key/value ring, as in
any session past its first minute. `--pool` serves the batch as a StreamPool instead (many independent live streams, one
masked step per 80 ms, replayed as a CUDA graph on a GPU): the largest batch whose step stays under
80 ms is how many live streams one process serves. With `--transformers` (and transformers installed) the same weights run through
transformers' `generate` in the same process and their ids are checked against ours. On a CPU each
run also prints its memory floor: the bytes a frame must read at the bandwidth measured just after
it (benchmarks/memory_floor.py), the best time any kernel could reach on this machine today.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np
import torch

from benchmarks.memory_floor import frame_floor, read_bandwidth_gbs
from benchmarks.random_model import build, stand_in_tokenizer
from core.checkpoint import module_key
from core.cuda_graphs import graphs_wanted
from core.feature_extraction import KyutaiSpeechToTextFeatureExtractor
from core.quantize import compiled_kv_dtype, prepare_model
from core.streaming import StreamingTranscriber

FRAME_MS = 80.0
DELAY_S = {"1b": 0.5, "2.6b": 2.5}
PREFIX_S = {"1b": 0.0, "2.6b": 1.0}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def test_audio(seconds: float, batch: int, seed: int = 0) -> np.ndarray:
    """Noise with a slow envelope: the codec sees changing input, as with speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 24000)
    envelope = 0.05 + 0.1 * (1 + np.sin(np.arange(n) / 24000 * 2 * np.pi * 0.7)) / 2
    return (rng.standard_normal((batch, n)) * envelope).astype(np.float32)


def features(shape: str) -> KyutaiSpeechToTextFeatureExtractor:
    """The feature extractor of the released checkpoint of that shape (its delay and silence prefix)."""
    return KyutaiSpeechToTextFeatureExtractor(audio_delay_seconds=DELAY_S[shape],
                                              audio_silence_prefix_seconds=PREFIX_S[shape])


def summary(total_ms: np.ndarray, codec_ms: np.ndarray, device: torch.device, block_s: float) -> dict:
    """Per-frame times (ms) -> the figures every run reports; codec_ms is NaN where not timed apart."""
    tenth = max(1, len(total_ms) // 10)
    return {
        "block_s": block_s,
        "frames": len(total_ms),
        "ms_per_frame": float(np.mean(total_ms)),
        "ms_per_frame_median": float(np.median(total_ms)),
        "ms_per_frame_p90": float(np.percentile(total_ms, 90)),
        "codec_ms": float(np.mean(codec_ms)),
        "decoder_ms": float(np.mean(total_ms - codec_ms)),
        "rtf": float(np.mean(total_ms) / FRAME_MS),
        "first_tenth_ms": float(np.mean(total_ms[:tenth])),
        "last_tenth_ms": float(np.mean(total_ms[-tenth:])),
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
    }


def time_stream(model, shape: str, seconds: float, batch: int, block_s: float = 0.08, warmup_s: float = 1.0,
                compile: bool = False) -> dict:
    """Push `seconds` of audio in blocks of `block_s` (0.08 = live, frame by frame; 5 = a file).

    With `compile`, the step is compiled (core.compiled_step) during the warm-up pushes, which
    are not timed; the codec is then not timed apart (a timing wrapper cannot be compiled).
    """
    fe = features(shape)
    stream = StreamingTranscriber(model, stand_in_tokenizer(model.config.vocab_size - 1), fe,
                                  batch_size=batch, keep_tokens=False, compile=compile)
    device = model.device
    codec = model.codec_model
    codec_s: list[float] = []
    encode_frames = codec.encode_frames

    def timed_encode(audio, *args, **kwargs):
        t0 = time.perf_counter()
        out = encode_frames(audio, *args, **kwargs)
        sync(device)
        codec_s.extend([(time.perf_counter() - t0) / out.shape[1]] * out.shape[1])
        return out

    # the codec is timed apart by wrapping it, which a captured CUDA graph cannot contain (it syncs)
    split = not graphs_wanted(device) and not compile
    if split:
        codec.encode_frames = timed_encode  # instance attribute: shadows the method for this run only
    try:
        audio = test_audio(seconds + warmup_s, batch)
        warmup = int(warmup_s * 24000)
        block = int(block_s * 24000)
        t_warm = time.perf_counter()
        stream.push(audio[:, :warmup] if batch > 1 else audio[0, :warmup])  # BOS step, prefix, first frames
        if compile:  # both compiled graphs: a lone frame's, and the decoder's for frames that come in blocks
            stream.push(audio[:, warmup:warmup + 1920] if batch > 1 else audio[0, warmup:warmup + 1920])
            warmup += 1920
        warm_s = time.perf_counter() - t_warm
        frame_s, before = [], len(codec_s)
        for at in range(warmup, audio.shape[1] - block + 1, block):
            t0 = time.perf_counter()
            stream.push(audio[:, at:at + block] if batch > 1 else audio[0, at:at + block])
            sync(device)
            frame_s.extend([(time.perf_counter() - t0) / (block / 1920)] * max(1, block // 1920))
    finally:
        if split:
            del codec.encode_frames
    total = np.array(frame_s) * 1000
    codec_ms = np.array(codec_s[before:before + len(total)]) * 1000 if split else np.full_like(total, np.nan)
    floor = {}
    if device.type == "cpu":  # measured now, right after the run: this VM's bandwidth drifts
        gbs = read_bandwidth_gbs()
        per_call = min(max(1, block // model.config.frame_size), codec.frames_per_call(batch))
        floor = {"read_gbs": gbs, **frame_floor(model, stream._stepper.cache, per_call, gbs)}
    return {**summary(total, codec_ms, device, block_s), "warmup_s": warm_s, **floor}


def time_pool(model, shape: str, seconds: float, slots: int, warmup_s: float = 1.0) -> dict:
    """Serving: `slots` streams in a StreamPool, each given 80 ms per step; times one batched step.

    The pool's step is the masked single-frame step (a CUDA graph on a GPU), so this is the figure
    for "how many live streams can one process serve": real time while ms_per_step stays under 80.
    """
    from core.stream_pool import StreamPool

    fe = features(shape)
    pool = StreamPool(model, stand_in_tokenizer(model.config.vocab_size - 1), fe, slots, keep_tokens=False)
    for _ in range(slots):
        pool.open()
    audio = test_audio(seconds + warmup_s, slots)
    frame, device = model.config.frame_size, model.device
    step_s = []
    for at in range(0, audio.shape[1] - frame + 1, frame):
        for slot in range(slots):
            pool.push(slot, audio[slot, at:at + frame])
        t0 = time.perf_counter()
        while pool.has_work():  # the BOS step, then the silence prefix, then this frame
            pool.step()
        sync(device)
        if at >= warmup_s * 24000:
            step_s.append(time.perf_counter() - t0)
    ms = np.array(step_s) * 1000
    return {"engine": "pool", **summary(ms, np.full_like(ms, np.nan), device, FRAME_MS / 1000),
            "cuda_graph": pool.uses_cuda_graph}


def transformers_model(ours):
    """transformers' model of the same shape, holding the same weights (float32, CPU)."""
    from transformers import KyutaiSpeechToTextConfig, KyutaiSpeechToTextForConditionalGeneration

    raw = ours.config.to_dict()
    theirs = KyutaiSpeechToTextForConditionalGeneration(KyutaiSpeechToTextConfig(**{
        k: v for k, v in raw.items() if k not in ("architectures", "model_type", "frame_size")})).eval()
    mine = ours.state_dict()
    with torch.no_grad():
        for name, tensor in theirs.state_dict().items():
            key = module_key(name)
            if key in mine:
                tensor.copy_(mine[key])
    theirs.generation_config.pad_token_id = 3
    return theirs


def time_transformers(theirs, shape: str, seconds: float, ours_f32=None) -> dict:
    fe = features(shape)
    inputs = fe(test_audio(seconds, 1)[0], return_tensors="pt")
    out = {}
    for window in (1, None):
        if window is None:
            if hasattr(theirs.generation_config, "audio_window_size"):
                del theirs.generation_config.audio_window_size
        else:
            theirs.generation_config.audio_window_size = window
        t0 = time.perf_counter()
        with torch.no_grad():
            ids = theirs.generate(input_values=inputs["input_values"], do_sample=False)
        steps = ids.shape[1] - 1
        out[f"window_{window}_ms_per_frame"] = (time.perf_counter() - t0) * 1000 / steps
        if window is None and ours_f32 is not None:
            mine = ours_f32.generate(input_values=inputs["input_values"])
            out["float32_ids_identical"] = bool(torch.equal(mine, ids))
            out["ids_compared"] = int(steps)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def logit_drift(reference, candidate, shape: str, seconds: float = 4.0, batch: int = 1, kv_dtype=None) -> dict:
    """How far a mode's logits move from float32 on the same stepped inputs (with `kv_dtype`, over
    a key/value ring of that type: a compiled step's, core.quantize.compiled_kv_dtype).

    With batch > 1 the candidate steps the stream as row 0 of a batch whose other rows step other
    inputs, so the figure also shows whatever the other streams do to it (they should do nothing).
    """
    fe = features(shape)
    audio = torch.from_numpy(fe(test_audio(seconds, 1, seed=7)[0])["input_values"][0])
    codes = reference.codec_model.encode(audio[:, : audio.shape[-1] // 1920 * 1920], reference.config.num_codebooks)
    cfg = reference.config
    ids = torch.cat([torch.full((1, 1, 1 + cfg.num_codebooks), cfg.audio_bos_token_id),
                     torch.cat([torch.randint(4, cfg.vocab_size - 1, (1, codes.shape[-1], 1), generator=torch.Generator().manual_seed(7)),
                                codes.transpose(1, 2)], dim=2)], dim=1)
    ids[0, 0, 0] = cfg.bos_token_id
    others = ids[:, torch.randperm(ids.shape[1], generator=torch.Generator().manual_seed(8))].expand(batch - 1, -1, -1)
    ids_batch = torch.cat([ids, others])  # [batch, T, 1 + K]: row 0 the measured stream, the rest shuffled steps
    caches = reference.model.new_cache(1), candidate.model.new_cache(batch, dtype=kv_dtype)
    diffs, agree = [], []
    with torch.inference_mode():
        for t in range(ids.shape[1]):
            a = reference.step_logits(ids[:, t:t + 1], caches[0])
            b = candidate.step_logits(ids_batch[:, t:t + 1].to(candidate.device), caches[1])[:1].to(a.device)
            diffs.append(float((a - b).abs().max()))
            agree.append(bool(a.argmax() == b.argmax()))
    return {"max_abs_logit_diff": max(diffs), "top1_agreement": float(np.mean(agree)), "steps": len(agree)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="1b", choices=["1b", "2.6b"])
    ap.add_argument("--seconds", type=float, default=20.0, help="audio streamed per measurement")
    ap.add_argument("--modes", default="float32,bfloat16,int8")
    ap.add_argument("--batch", default="1", help="comma-separated batch sizes (streams stepped together)")
    ap.add_argument("--block", type=float, default=0.08,
                    help="seconds pushed at a time: 0.08 = live, frame by frame; 5 = how files are transcribed")
    ap.add_argument("--pool", action="store_true",
                    help="serve the batch as a StreamPool (masked step, CUDA graphs on a GPU) instead of lockstep streams")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the engine's choice)")
    ap.add_argument("--transformers", action="store_true", help="also run transformers on the same weights")
    ap.add_argument("--transformers-seconds", type=float, default=8.0)
    ap.add_argument("--compile", action="store_true",
                    help="after each mode, run it again with the CPU step compiled (needs a C++ compiler)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds of audio streamed untimed first (default: the decoder's attention window, so that "
                         "every timed step attends over a full ring, as in any session past its first minute)")
    ap.add_argument("--inductor-attention", action="store_true",
                    help="compiled steps attend over the int8 ring with inductor's loops, not our kernel (A/B)")
    ap.add_argument("--json", help="write every figure to this file")
    args = ap.parse_args(argv)

    from core.runtime import configure_threads

    threads = configure_threads(args.threads)
    if args.inductor_attention:  # attention looks the kernels up through this name only; int4 still uses them
        import types

        import core.attention

        core.attention.native = types.SimpleNamespace(loaded=lambda: None)
    device = torch.device(args.device)
    print(f"shape {args.shape}, torch {torch.__version__}, {threads} thread(s), device {device}", flush=True)
    t0 = time.perf_counter()
    base = build(args.shape)
    print(f"built random float32 weights in {time.perf_counter() - t0:.1f} s; RSS {peak_rss_mb():.0f} MB", flush=True)
    warmup_s = args.warmup if args.warmup is not None else base.config.sliding_window * FRAME_MS / 1000
    results = {"shape": args.shape, "threads": threads, "device": str(device), "warmup_audio_s": warmup_s,
               "runs": [], "transformers": None}

    if args.transformers:
        theirs = transformers_model(base)
        results["transformers"] = time_transformers(theirs, args.shape, args.transformers_seconds, ours_f32=base)
        del theirs
        print("transformers:", json.dumps(results["transformers"]), flush=True)

    for mode in args.modes.split(","):
        model = prepare_model(base, mode, device)
        drift = logit_drift(base, model, args.shape) if mode != "float32" or device.type != "cpu" else None
        for batch in [int(b) for b in args.batch.split(",")]:
            for compiled in ([False, True] if args.compile and not args.pool else [False]):
                timed = (time_pool(model, args.shape, args.seconds, batch, warmup_s) if args.pool
                         else time_stream(model, args.shape, args.seconds, batch, args.block, warmup_s, compiled))
                # compiled: the eager step over the compiled step's ring (fused kernels' rounding aside)
                if drift is not None and compiled:
                    run_drift = logit_drift(base, model, args.shape, kv_dtype=compiled_kv_dtype(model))
                elif drift is not None and batch > 1:  # one stream among `batch`
                    run_drift = logit_drift(base, model, args.shape, batch=batch)
                else:
                    run_drift = drift
                run = {"mode": mode + ("+compile" if compiled else ""), "batch": batch, **timed, "drift": run_drift}
                results["runs"].append(run)
                print(json.dumps(run), flush=True)
        if model is not base:
            del model

    print_table(results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


def _ms(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"  # NaN: not measured apart (the pool times whole steps)


def print_table(results: dict) -> None:
    hf = results["transformers"] or {}
    ref = hf.get("window_1_ms_per_frame")
    block = results["runs"][0]["block_s"] if results["runs"] else 0.08
    print(f"\n{results['shape']} on {results['device']}, {results['threads']} thread(s), pushes of {block} s "
          f"after {results['warmup_audio_s']:.0f} s untimed; ms per 80 ms frame")
    print(f"{'engine':<24}{'batch':>6}{'frame':>9}{'codec':>8}{'decoder':>9}{'RTF':>7}{'start→end':>14}"
          f"{'peak MB':>9}{'top-1':>8}{'vs trf':>8}{'floor':>8}{'GB/s':>6}")
    if hf:
        print(f"{'transformers (window 1)':<24}{1:>6}{ref:>9.1f}{'':>8}{'':>9}{ref / FRAME_MS:>7.2f}{'':>14}{'':>9}{'':>8}{'1.0x':>8}")
        none = hf["window_None_ms_per_frame"]
        print(f"{'transformers (whole clip)':<24}{1:>6}{none:>9.1f}{'':>8}{'':>9}{none / FRAME_MS:>7.2f}")
    for r in results["runs"]:
        agree = f"{r['drift']['top1_agreement']:.3f}" if r["drift"] else "-"
        speedup = f"{ref / (r['ms_per_frame'] / r['batch']):.1f}x" if ref else "-"
        label = ("pool " if r.get("engine") == "pool" else "surtitle ") + r["mode"]
        print(f"{label:<24}{r['batch']:>6}{r['ms_per_frame']:>9.1f}{_ms(r['codec_ms']):>8}"
              f"{_ms(r['decoder_ms']):>9}{r['rtf']:>7.2f}{r['first_tenth_ms']:>7.1f}→{r['last_tenth_ms']:<6.1f}"
              f"{r['peak_rss_mb']:>9.0f}{agree:>8}{speedup:>8}{_ms(r.get('floor_ms', np.nan)):>8}"
              f"{_ms(r.get('read_gbs', np.nan)):>6}")
    if any("floor_ms" in r for r in results["runs"]):
        print("floor: the bytes a frame must read (decoder weights, the whole key/value ring, the codec's "
              "weights\n  per codec call) at the read bandwidth measured right after that run "
              "(benchmarks/memory_floor.py)")
    if hf:
        print(f"float32 ids identical to transformers over {hf['ids_compared']} steps: {hf['float32_ids_identical']}")


if __name__ == "__main__":
    sys.exit(main())
