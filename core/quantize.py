"""Precision modes of the decoder: float32, bfloat16, int8 or int4 weights (int4: core/int4.py).

int8 stores every decoder linear (attention projections, FFN, text head) as int8 with one float
scale per output channel, packed for fbgemm's dynamic-quantized matmul: activations are quantized
per call, products accumulate in int32; in a batch each stream's activations are quantized on their
own (see Int8Linear.forward), so no stream's precision depends on another's. A decoder step reads
every weight once, so on a CPU the step time follows the bytes read: int8 moves a quarter of
float32's. For the same reason each attention's q, k and v are one stacked matmul, and the
key/value ring, which attention reads whole every step, is kept in bfloat16 where the CPU has
native bfloat16. The codec always stays float32: int8 there saved 5 ms a frame but changed one
code in seven (measured on the random-weight 1b shape).
"""

from __future__ import annotations

import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Callable

import torch
from torch import nn

from .errors import ConfigError
from .quantized_linear import QuantizedLinear
from .runtime import native_bfloat16

MODES = ("float32", "bfloat16", "float16", "int8", "int4")
QUANTIZED = ("int8", "int4")  # modes whose decoder linears are replaced


class Int8Linear(QuantizedLinear):
    """A bias-free linear with per-output-channel int8 weights (CPU, fbgemm).

    Stacked, each part's rows keep their own int8 values and scales and the activation is
    quantized once for all, so each slice of the output is what that part gives alone, while one
    call reads all the weights in one pass. Parts are packed when the last one is in, so loading
    never holds more than one layer's rows in float32.
    """

    kind = "int8 per-channel"

    def __init__(self, in_features: int, out_features: int, parts: tuple[int, ...] | None = None):
        super().__init__(in_features, out_features, parts)
        self._packed = None

    def set_weight(self, weight: torch.Tensor, part: int = 0, packer: "BackgroundPacker | None" = None) -> None:
        """Quantize one part's float rows; once every part is in, pack them (on `packer`'s thread if given)."""
        w = self._float_part(weight, part)
        peak = torch.maximum(w.amax(dim=1), w.amin(dim=1).neg_())  # |w| max per row, with no |w| copy
        scales = (peak / 127.0).clamp(min=1e-12).double()
        zeros = torch.zeros(w.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notice; the kernels stay
            rows = torch.quantize_per_channel(w, scales, zeros, axis=0, dtype=torch.qint8).int_repr()
        stacked = self._add_part(part, rows, scales)
        if stacked is not None:
            if packer is None:
                self._pack(*stacked)
            else:
                packer.submit(self._pack, *stacked)

    def _pack(self, ints: torch.Tensor, scales: torch.Tensor) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qweight = torch._make_per_channel_quantized_tensor(ints, scales, torch.zeros(len(scales), dtype=torch.long), 0)
            self._packed = torch.ops.quantized.linear_prepack(qweight, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).float()  # [M, in]
        rows = flat.shape[0]
        if rows > 1:
            # fbgemm quantizes its whole input with one scale, so in a batch each stream's precision
            # would hang on the other streams' values (1b shape, a batch of 4 with random inputs in
            # the other rows: top-1 agreement with float32 fell from 0.97 to 0.85; measured with
            # teacher forcing). Each row is quantized alone instead, to integers in
            # [-63, 63]; one more row holding -64 and 63 pins fbgemm's scale to exactly 1 (7 bits,
            # zero point 64), so it takes those integers as they are and each stream gets the same
            # output in any batch. A lone row keeps fbgemm's own quantization, which is per row too.
            scale = torch.linalg.vector_norm(flat, ord=float("inf"), dim=1, keepdim=True).clamp_min(1e-30) / 63
            flat = torch.cat((torch.round(flat / scale), _pinning_row(flat.shape[1], flat.device)))  # [M + 1, in]
        y = self._run(flat)
        if rows > 1:
            y = y[:rows] * scale
        return y.reshape(*shape[:-1], self.out_features).to(x.dtype)

    def product(self, flat: torch.Tensor) -> torch.Tensor:
        """flat [M, in] float32 -> [M, out], through fbgemm."""
        return torch.ops.quantized.linear_dynamic(flat, self._packed, True)

    @property
    def packed_bytes(self) -> int:
        """Bytes of the packed weights (int8 values, and a float scale and an int32 offset per row)."""
        return self.in_features * self.out_features + 8 * self.out_features



_PINNING_ROWS: dict[tuple[int, torch.device], torch.Tensor] = {}


def _pinning_row(width: int, device: torch.device) -> torch.Tensor:
    """[1, width]: -64 and 63, then zeros (see Int8Linear.forward); made once per width."""
    key = (width, device)
    if key not in _PINNING_ROWS:
        row = torch.zeros(1, width, device=device)
        row[0, 0], row[0, 1] = -64, 63
        _PINNING_ROWS[key] = row
    return _PINNING_ROWS[key]


class BackgroundPacker:
    """Runs Int8Linear packing on a second thread while the loader reads and quantizes the next weights.

    fbgemm's prepack is single-threaded and releases the GIL, and it takes about as long as
    reading and quantizing a weight does, so the two overlap (int8 loading of the 1b model went
    from 11.0 s to 8.9 s on 2 cores). At most `pending` packs wait: unpacked int8 copies never pile up.
    Use as a context manager; leaving it waits for every pack and raises the first pack's error
    (leaving on an error of its own drops the packs still queued).
    """

    def __init__(self, pending: int = 2):
        self.pending = pending
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="int8-pack")
        self._waiting: deque[Future] = deque()

    def submit(self, fn: Callable[..., None], *args) -> None:
        while len(self._waiting) >= self.pending:
            self._waiting.popleft().result()
        self._waiting.append(self._pool.submit(fn, *args))

    def __enter__(self) -> "BackgroundPacker":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:  # otherwise the loader's own error says more than a pack's would
                while self._waiting:
                    self._waiting.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


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
    if mode not in (None, *QUANTIZED):
        raise ConfigError(f"unknown quantization {mode!r}; use 'int8', 'int4', 'auto' or none")
    if mode in QUANTIZED and device.type != "cpu":
        raise ConfigError(f"{mode} quantization runs on the CPU; on a GPU use bfloat16 (the default there)")
    if mode == "int8":
        if "fbgemm" not in torch.backends.quantized.supported_engines and \
                "x86" not in torch.backends.quantized.supported_engines:
            raise ConfigError("this PyTorch build has no int8 CPU kernels (fbgemm); use float32 instead")
    if mode == "int4":
        from .int4 import kernel

        kernel()  # built (about a minute) or found in the cache now: a ConfigError here says why not


def quantizable(model: nn.Module) -> list[str]:
    """Names of the decoder linears that int8 and int4 modes replace."""
    return [name for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and not name.startswith("codec_model.")]


WeightSetter = Callable[[torch.Tensor], None]


def swap_in_quantized(model: nn.Module, mode: str, packer: BackgroundPacker | None = None) -> dict[str, WeightSetter]:
    """Make `model` (built on meta) an int8 or int4 model before its weights arrive.

    The decoder linears become empty Int8Linear (Int4Linear) modules, each attention's q/k/v one
    stacked, and on a CPU with native bfloat16 the decoder's key/value ring is narrowed to
    bfloat16. Returns, for every replaced linear's name (as the checkpoint names it), where its
    weight goes; with a `packer`, packing happens on its thread and is complete only once the
    packer is left.
    """
    from .attention import Attention
    from .int4 import Int4Linear

    linear = {"int8": Int8Linear, "int4": Int4Linear}[mode]
    setters: dict[str, WeightSetter] = {}
    names = set(quantizable(model))
    for name, attn in list(model.named_modules()):
        projections = [f"{name}.{p}" for p in ("q_proj", "k_proj", "v_proj")]
        if isinstance(attn, Attention) and set(projections) <= names:
            sizes = tuple(getattr(attn, p).out_features for p in ("q_proj", "k_proj", "v_proj"))
            stacked = linear(attn.q_proj.in_features, sum(sizes), parts=sizes)
            attn.stack_qkv(stacked)
            for part, full in enumerate(projections):
                setters[full] = partial(stacked.set_weight, part=part, packer=packer)
                names.discard(full)
    for name in sorted(names):  # a fixed order: compiled steps name these modules by number
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, attr)
        setattr(parent, attr, linear(old.in_features, old.out_features))
        setters[name] = partial(getattr(parent, attr).set_weight, packer=packer)
    if native_bfloat16():
        # attention reads the whole key/value ring every step: on a CPU with native bfloat16 the
        # ring is kept in bfloat16 (half the bytes; the rest of the step stays float32)
        model.model.kv_dtype = torch.bfloat16
    return setters


def compiled_kv_dtype(model: nn.Module) -> torch.dtype | None:
    """The key/value ring of a compiled int8 or int4 CPU step: int8 with a scale per slot and head
    (core.kv_cache), or None for the model's own.

    Attention reads the whole ring every step. Without native bfloat16 an eager int8 step keeps it
    in float32 (SDPA in emulated bfloat16 is slower than in float32), but compiled, the widening to
    float32 happens as the ring is read (core.attention.widening_attention: Surtitle's ring kernel,
    built with the compiled step, or else inductor's fused loops), so the ring can be stored narrow.
    In bfloat16 it took a compiled 1b frame on 2 AMD Zen 3 cores from 114-139 to 100-117 ms; in int8
    the kernel reads the 1b's full ring in 2.7-4.0 ms against bfloat16's 5.7-7.6 (benchmarks.ring_attention).
    The int8 ring moves attention's output by about 1% of its largest value, far less than the int8
    or int4 weights move the logits (benchmarks.bench prints both modes' drift from float32).
    """
    if getattr(model, "quantization", None) in QUANTIZED and model.device.type == "cpu":
        return torch.int8
    return None


def prepare_model(base: nn.Module, mode: str, device: torch.device | str = "cpu") -> nn.Module:
    """`base` (float32, CPU) in another mode, for benchmarks and comparisons.

    Built on the meta device and filled from base's tensors: the codec and anything not converted
    are shared with `base`, so a 2.6b model does not need twice its memory to be compared.
    """
    device = torch.device(device)
    if mode == "float32" and device.type == "cpu":
        return base
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    with torch.device("meta"):
        model = type(base)(base.config)
    setters = {}
    if mode in QUANTIZED:
        check_mode(mode, device)
        setters = swap_in_quantized(model, mode)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(mode, torch.float32)
    state = {}
    for name, tensor in base.state_dict().items():
        owner = name.rpartition(".")[0]
        if owner in setters:
            setters[owner](tensor)
        else:
            target = torch.float32 if name.startswith("codec_model.") else dtype
            state[name] = tensor.to(device=device, dtype=target)
    model.load_state_dict(state, strict=True, assign=True)
    model.to(device)
    model.codec_model.prepare()
    model.quantization = mode if mode in QUANTIZED else None
    return model.eval()
