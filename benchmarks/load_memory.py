"""Peak memory while loading a full-size checkpoint, next to the size of the loaded weights.

    python -m benchmarks.load_memory --shape 1b [--quantize int8] [--dir /tmp/stt-1b-random]

Writes a random-weight checkpoint in the hub's -trfs layout and dtypes (decoder blocks bf16,
embedding, head and codec float32) once, then loads it in a fresh subprocess and reports that
process's peak RSS (which also counts the safetensors pages it mapped) against the bytes of the
tensors it ends up holding.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path


CHILD = r"""
import json, sys, torch
from core import KyutaiSpeechToTextForConditionalGeneration as M
from core.quantized_linear import QuantizedLinear

def hwm_kb():  # this process's peak RSS (ru_maxrss would carry the parent's over exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

base = hwm_kb()
m = M.from_pretrained(sys.argv[1], quantize=None if sys.argv[2] == "none" else sys.argv[2])
tensors = list(m.parameters()) + list(m.buffers())
held = sum(t.numel() * t.element_size() for t in tensors)
packed = sum(mod.packed_bytes for mod in m.modules() if isinstance(mod, QuantizedLinear))
peak = hwm_kb()
print(json.dumps({"baseline_rss_mb": base / 1024, "peak_rss_mb": peak / 1024, "float_tensors_mb": held / 2**20, "weights_mb": (held + packed) / 2**20}))
"""


def write_checkpoint(shape: str, folder: Path) -> None:
    from safetensors.torch import save_file

    from benchmarks.random_model import build

    model = build(shape)
    folder.mkdir(parents=True, exist_ok=True)
    model.config.replace(torch_dtype="bfloat16").save_pretrained(folder)
    state = {}
    for name, tensor in model.state_dict().items():
        # the hub spells the decoder's projections `.q_proj.linear.` (the codec's are plain)
        key = re.sub(r"\.self_attn\.([qkvo])_proj\.", r".self_attn.\1_proj.linear.", name) \
            if name.startswith("model.layers.") else name
        as_hub = tensor.bfloat16() if name.startswith("model.layers.") or name == "model.norm.weight" else tensor
        state[key] = as_hub.contiguous()
    save_file(state, folder / "model.safetensors")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="1b", choices=["1b", "2.6b"])
    ap.add_argument("--dir", default=None)
    ap.add_argument("--quantize", default="none", choices=["none", "int8", "int4"])
    args = ap.parse_args(argv)
    folder = Path(args.dir or f"/tmp/surtitle-{args.shape}-random")
    if not (folder / "model.safetensors").is_file():
        print(f"writing a random {args.shape} checkpoint to {folder} ...", flush=True)
        write_checkpoint(args.shape, folder)
    size_mb = (folder / "model.safetensors").stat().st_size / 2**20
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), args.quantize], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(shape=args.shape, quantize=args.quantize, file_mb=size_mb)
    loaded = result["peak_rss_mb"] - result["baseline_rss_mb"]
    print(json.dumps(result))
    print(f"{args.shape} ({args.quantize}): file {size_mb:.0f} MB; weights held {result['weights_mb']:.0f} MB; "
          f"peak RSS above start {loaded:.0f} MB = {loaded / result['weights_mb']:.2f}x the weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
