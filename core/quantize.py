"""Precision modes of the decoder: float32, bfloat16, or int8 weights.

int8 stores every decoder linear (attention projections, FFN, text head) as int8 with one float
scale per output channel, packed for fbgemm's dynamic-quantized matmul: activations are quantized
per call, products accumulate in int32. A decoder step reads every weight once, so on a CPU the
step time follows the bytes read: int8 moves a quarter of float32's. The codec always stays float32.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .errors import ConfigError

MODES = ("float32", "bfloat16", "float16", "int8")


class Int8Linear(nn.Module):
    """A bias-free linear with per-output-channel int8 weights (CPU, fbgemm)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._packed = None

    def set_weight(self, weight: torch.Tensor) -> None:
        w = weight.detach().float().cpu()
        scales = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)
        zeros = torch.zeros(w.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notice; the kernels stay
            qweight = torch.quantize_per_channel(w, scales.double(), zeros, axis=0, dtype=torch.qint8)
            self._packed = torch.ops.quantized.linear_prepack(qweight, None)

    @classmethod
    def stacked(cls, parts: list["Int8Linear"]) -> "Int8Linear":
        """One Int8Linear whose output is the parts' outputs side by side (e.g. q, k, v).

        Rows keep their own int8 values and scales, and the activation is quantized once for all
        of them, so each part's slice of the output is what the part gives alone; one call reads the
        weights in one pass and spares the per-call overhead twice.
        """
        assert len({p.in_features for p in parts}) == 1, "stacked parts must share their input"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            weights = [torch.ops.quantized.linear_unpack(p._packed)[0] for p in parts]
            ints = torch.cat([w.int_repr() for w in weights])
            scales = torch.cat([w.q_per_channel_scales() for w in weights])
            qweight = torch._make_per_channel_quantized_tensor(ints, scales, torch.zeros_like(scales, dtype=torch.long), 0)
            fused = cls(parts[0].in_features, ints.shape[0])
            fused._packed = torch.ops.quantized.linear_prepack(qweight, None)
        return fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = torch.ops.quantized.linear_dynamic(x.reshape(-1, shape[-1]).float(), self._packed, True)
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-channel"


def resolve_mode(mode: str | None, device: torch.device) -> str | None:
    """"auto" = the fastest mode that keeps up: int8 on a CPU, none (bfloat16) on a GPU."""
    if mode in (None, "none"):
        return None
    if mode == "auto":
        cpu_int8 = device.type == "cpu" and bool({"fbgemm", "x86"} & set(torch.backends.quantized.supported_engines))
        return "int8" if cpu_int8 else None
    check_mode(mode, device)
    return mode


def check_mode(mode: str | None, device: torch.device) -> None:
    if mode not in (None, "int8"):
        raise ConfigError(f"unknown quantization {mode!r}; use 'int8', 'auto' or none")
    if mode == "int8":
        if device.type != "cpu":
            raise ConfigError("int8 quantization runs on the CPU; on a GPU use bfloat16 (the default there)")
        if "fbgemm" not in torch.backends.quantized.supported_engines and \
                "x86" not in torch.backends.quantized.supported_engines:
            raise ConfigError("this PyTorch build has no int8 CPU kernels (fbgemm); use float32 instead")


def quantizable(model: nn.Module) -> list[str]:
    """Names of the decoder linears that int8 mode replaces."""
    return [name for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and not name.startswith("codec_model.")]


def swap_in_int8(model: nn.Module) -> None:
    """Replace the decoder linears by empty Int8Linear modules (weights come with set_weight)."""
    for name in quantizable(model):
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, attr)
        setattr(parent, attr, Int8Linear(old.in_features, old.out_features))


def finish_int8(model: nn.Module) -> None:
    """After the int8 weights are in: stack each attention's q/k/v, and narrow the decoder's ring.

    Attention reads the whole key/value ring every step, so on a CPU with native bfloat16 the ring
    is kept in bfloat16 (half the bytes; the rest of the step stays float32).
    """
    from .attention import Attention

    for name, module in model.named_modules():
        if isinstance(module, Attention) and isinstance(module.q_proj, Int8Linear):
            module.stack_qkv(Int8Linear.stacked([module.q_proj, module.k_proj, module.v_proj]))
    if native_bfloat16():
        model.model.kv_dtype = torch.bfloat16


def native_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX); elsewhere it is emulated and slow."""
    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except AttributeError:  # an older or non-x86 build: stay with float32
        return False


def prepare_model(base: nn.Module, mode: str, device: torch.device | str = "cpu") -> nn.Module:
    """`base` (float32, CPU) in another mode, for benchmarks and comparisons.

    Built on the meta device and filled from base's tensors: the codec and anything not converted
    are shared with `base`, so a 2.6b model does not need twice its memory to be compared.
    """
    device = torch.device(device)
    if mode == "float32" and device.type == "cpu":
        return base
    if mode not in ("float32", "bfloat16", "float16", "int8"):
        raise ConfigError(f"unknown mode {mode!r}; use one of float32, bfloat16, float16, int8")
    with torch.device("meta"):
        model = type(base)(base.config)
    int8 = set(quantizable(model)) if mode == "int8" else set()
    if int8:
        check_mode("int8", device)
        swap_in_int8(model)
    dtype = {"int8": torch.float32, "float32": torch.float32, "bfloat16": torch.bfloat16,
             "float16": torch.float16}[mode]
    state = {}
    for name, tensor in base.state_dict().items():
        owner = name.rpartition(".")[0]
        if owner in int8:
            model.get_submodule(owner).set_weight(tensor)
        else:
            target = torch.float32 if name.startswith("codec_model.") else dtype
            state[name] = tensor.to(device=device, dtype=target)
    model.load_state_dict(state, strict=True, assign=True)
    model.to(device)
    model.codec_model.quantizer.refresh()
    if int8:
        finish_int8(model)
    model.quantization = "int8" if int8 else None
    return model.eval()
