"""From a hub repo id or a local folder to a ready model: resolve, read safetensors, check, assign.

The model is built on the meta device (no memory), every tensor it expects is read straight from
the safetensors files (single file or sharded with an index), checked against the config's shape,
cast (codec always float32, decoder in the chosen dtype) and assigned. Peak memory therefore stays
near the size of the loaded weights. The codec's decoder half is stored in the checkpoint but is
never read.
"""

from __future__ import annotations

import json
import logging
import os
import re
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import torch

from .config import KyutaiSpeechToTextConfig
from .errors import CheckpointError, ConfigError, DeviceError
from .heap import ReleaseEvery
from .hub import resolve_checkpoint
from .safetensors_file import SafetensorsFile

log = logging.getLogger(__name__)

# checkpoint name -> our module name (files written by transformers keep Mimi's flat layout; the
# newer nested spelling is accepted too)
_RENAMES = [
    (re.compile(r"\.self_attn\.([qkvo])_proj\.linear\."), r".self_attn.\1_proj."),
    (re.compile(r"^codec_model\.encoder\.encoder_seanet\."), "codec_model.encoder."),
    (re.compile(r"^codec_model\.encoder\.encoder_transformer\."), "codec_model.encoder_transformer."),
    (re.compile(r"^codec_model\.encoder\.downsample\."), "codec_model.downsample."),
]
# stored in the checkpoint, not needed to transcribe
_UNUSED = re.compile(
    r"^codec_model\.(decoder|decoder_transformer|upsample)\.|^codec_model\.quantizer\..*\.output_proj\."
    r"|\.codebook\.initialized$|^extra_heads\."
)


def module_key(checkpoint_key: str) -> str:
    for pattern, repl in _RENAMES:
        checkpoint_key = pattern.sub(repl, checkpoint_key)
    return checkpoint_key


def weight_files(folder: Path) -> dict[str, SafetensorsFile]:
    """{checkpoint tensor name: its file} for single-file and sharded layouts; every header is read
    (and checked) once, here, before any tensor is loaded."""
    index = folder / "model.safetensors.index.json"
    single = folder / "model.safetensors"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{index} is not a valid safetensors index ({exc})") from None
        shards = {}
        for fn in sorted(set(weight_map.values())):
            if not (folder / fn).is_file():
                raise CheckpointError(f"{folder / fn} is listed in {index.name} but missing: the download is incomplete")
            shards[fn] = SafetensorsFile(folder / fn)
        return {name: shards[fn] for name, fn in weight_map.items()}
    if single.is_file():
        f = SafetensorsFile(single)
        return {name: f for name in f.keys()}
    raise CheckpointError(f"{folder} has no model.safetensors (nor model.safetensors.index.json)")


def resolve_device(device_map: Any) -> torch.device:
    """The one device the model runs on; DeviceError names the device asked for and what is wrong."""
    if device_map in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device_map, dict):  # {"": device} is the single-device form transformers accepts
        if set(device_map) != {""}:
            raise ValueError("only single-device maps are supported, e.g. device_map='cuda' or {'': 'cuda'}")
        device_map = device_map[""]
    if isinstance(device_map, int):
        device_map = f"cuda:{device_map}"
    try:
        device = torch.device(device_map)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"unknown device {device_map!r}; use cpu, cuda, cuda:N or mps") from exc
    name = str(device_map)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(f"device {name!r} was asked for but PyTorch sees no CUDA GPU; use --device cpu")
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {name!r} was asked for but PyTorch sees {count} CUDA GPU"
                              f"{'s' if count > 1 else ''} (cuda:0 to cuda:{count - 1})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {name!r} (Apple's Metal GPU) was asked for but this PyTorch or computer "
                          "has none; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device {name!r} is not supported; use cpu, cuda, cuda:N or mps")
    return device


def resolve_dtype(dtype: Any, device: torch.device) -> torch.dtype:
    """Decoder dtype. Default and "auto": float32 on CPU (CPU bf16 is slower here), bfloat16 on GPUs."""
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        named = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                 "float16": torch.float16, "fp16": torch.float16}
        if dtype not in named:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(named)}")
        return named[dtype]
    return dtype


def load_model(cls, source: str | os.PathLike, *, device_map: Any = None, dtype: Any = None,
               quantize: str | None = None, progress: Callable[[int, int], None] | None = None, **hub_kwargs):
    from .quantize import QUANTIZED, BackgroundPacker, resolve_mode, swap_in_quantized

    folder = resolve_checkpoint(source, **hub_kwargs)
    try:
        config = KyutaiSpeechToTextConfig.from_json_file(folder / "config.json")
    except ConfigError as exc:  # name the file itself where the message says only "config.json"
        raise ConfigError(f"{folder / 'config.json'}: {str(exc).removeprefix('config.json: ')}") from None
    device = resolve_device(device_map)
    quantize = resolve_mode(quantize, device)
    quantized = quantize in QUANTIZED
    decoder_dtype = torch.float32 if quantized else resolve_dtype(dtype, device)
    with torch.device("meta"):
        model = cls(config)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    state = {}
    release = ReleaseEvery(64 * 2**20)
    with BackgroundPacker() if quantized else nullcontext() as packer:
        setters = swap_in_quantized(model, quantize, packer) if quantized else {}
        for name, tensor in read_tensors(expected, folder, device, decoder_dtype, progress):
            owner = name.rpartition(".")[0]
            if owner in setters:
                setters[owner](tensor)  # quantized as it arrives: float32 never piles up
            else:
                state[name] = tensor
            release.add(tensor.nbytes)  # the read's and conversion's freed buffers go back to the OS
    model.load_state_dict(state, strict=True, assign=True)
    model.to(device)  # buffers that were not in the checkpoint (offsets, rotary tables)
    model.codec_model.prepare()
    model.name_or_path = str(source)
    model.quantization = quantize
    return model.eval()


def read_tensors(expected: dict[str, tuple], folder: Path, device: torch.device, decoder_dtype: torch.dtype,
                 progress: Callable[[int, int], None] | None = None):
    """Yield (module name, tensor) for every expected tensor, checked and cast, one at a time."""
    files = weight_files(folder)
    by_module = {}
    unexpected = []
    for ckpt_name in files:
        name = module_key(ckpt_name)
        if name in expected:
            by_module[name] = ckpt_name
        elif not _UNUSED.search(ckpt_name):
            unexpected.append(ckpt_name)
    missing = sorted(set(expected) - set(by_module))
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise CheckpointError(f"{folder} lacks tensor {', '.join(missing[:3])}{more}: the checkpoint is incomplete "
                              f"or does not match its config.json")
    if unexpected:
        more = f" and {len(unexpected) - 3} more" if len(unexpected) > 3 else ""
        raise CheckpointError(f"{folder} holds unexpected tensor {', '.join(sorted(unexpected)[:3])}{more}: "
                              f"is this a KyutaiSpeechToText -trfs checkpoint?")
    grouped: dict[SafetensorsFile, list[str]] = {}
    for name, ckpt_name in by_module.items():
        grouped.setdefault(files[ckpt_name], []).append(name)
    done, total = 0, len(by_module)
    for f, names in grouped.items():
        try:
            for name in names:
                ckpt_name = by_module[name]
                shape = f.shape(ckpt_name)
                if shape != expected[name]:
                    raise CheckpointError(f"tensor {ckpt_name} in {f.path.name} has shape {list(shape)} but "
                                          f"config.json implies {list(expected[name])}: config and weights disagree")
                target = torch.float32 if name.startswith("codec_model.") else decoder_dtype
                tensor = f.read(ckpt_name).to(device=device, dtype=target)
                done += 1
                if progress is not None:
                    progress(done, total)
                yield name, tensor
        finally:
            f.close()
