"""Model shapes, read from and written to a checkpoint's `config.json`.

Two frozen dataclasses mirror the fields Hugging Face documents for `KyutaiSpeechToTextConfig`
and its Mimi `codec_config`. Defaults are the released stt-2.6b-en shape (and the Mimi both
checkpoints share). `from_dict` accepts the hub's legacy spellings (flat `rope_theta`,
`torch_dtype`) as well as the current ones (`rope_parameters`, `dtype`), and validates the whole
shape up front so that a broken config fails with one sentence instead of deep inside a matmul.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ConfigError
from .hub import DEFAULT_MODEL, resolve_checkpoint  # noqa: F401  DEFAULT_MODEL: kept where the app reads it

log = logging.getLogger(__name__)


# keys that transformers writes into every config.json and that carry no shape information
_BOOKKEEPING_KEYS = {
    "architectures", "transformers_version", "_name_or_path", "model_type", "dtype", "torch_dtype",
    "frame_size", "id2label", "label2id", "output_hidden_states", "output_attentions", "return_dict",
    "is_encoder_decoder", "chunk_size_feed_forward", "problem_type", "tie_encoder_decoder",
}


def _rope_theta(raw: dict, default: float) -> float:
    """Hub files written by transformers 4.5x say `rope_theta`; 5.x says `rope_parameters`."""
    params = raw.get("rope_parameters") or raw.get("rope_scaling") or {}
    if "rope_theta" in raw:
        return float(raw["rope_theta"])
    if isinstance(params, dict) and "rope_theta" in params:
        rope_type = params.get("rope_type", params.get("type", "default"))
        if rope_type != "default":
            raise ConfigError(f"rope_type {rope_type!r} is not supported (only the default RoPE is)")
        return float(params["rope_theta"])
    return default


def _build(cls, raw: dict, renames: dict[str, str], what: str):
    """Fill a dataclass from a dict: known fields typed-checked, unknown keys logged and ignored."""
    names = {f.name: f for f in fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        key = renames.get(key, key)
        if key not in names:
            if key not in _BOOKKEEPING_KEYS:
                log.debug("%s: ignoring config key %r", what, key)
            continue
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a wrongly typed value caught by __post_init__
        raise ConfigError(f"{what}: {exc}") from None


def _check(cond: bool, what: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{what}: {message}")


def _int_fields(obj, names: list[str], what: str, *, positive: bool = False) -> None:
    """Every field in `names` must be an integer (at least 1 if `positive`: a size or a count)."""
    for name in names:
        value = getattr(obj, name)
        _check(isinstance(value, int) and not isinstance(value, bool), what, f"{name} must be an integer, got {value!r}")
        if positive:
            _check(value >= 1, what, f"{name} must be at least 1, got {value}")


@dataclass(frozen=True)
class MimiConfig:
    """The Mimi codec (only its encoder half is used for speech-to-text)."""

    sampling_rate: int = 24000
    audio_channels: int = 1
    hidden_size: int = 512  # latent width of SEANet output and of the encoder transformer
    num_filters: int = 64  # channels of the first SEANet conv; doubled at every stride
    num_residual_layers: int = 1
    upsampling_ratios: tuple[int, ...] = (8, 6, 5, 4)  # decoder order; the encoder uses them reversed
    kernel_size: int = 7
    last_kernel_size: int = 3
    residual_kernel_size: int = 3
    dilation_growth_rate: int = 2
    use_causal_conv: bool = True
    pad_mode: str = "constant"
    compress: int = 2  # residual branch width = dim // compress
    trim_right_ratio: float = 1.0
    codebook_size: int = 2048
    codebook_dim: int = 256
    num_quantizers: int = 32
    use_conv_shortcut: bool = False
    vector_quantization_hidden_dimension: int = 256
    num_semantic_quantizers: int = 1
    upsample_groups: int = 512
    num_hidden_layers: int = 8  # encoder transformer layers
    intermediate_size: int = 2048
    num_attention_heads: int = 8
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    hidden_act: str = "gelu"
    max_position_embeddings: int = 8000
    initializer_range: float = 0.02
    norm_eps: float = 1e-5
    use_cache: bool = False
    use_streaming: bool = False
    rope_theta: float = 10000.0
    sliding_window: int = 250  # attention context in 25 Hz steps (10 s)
    attention_dropout: float = 0.0
    layer_scale_initial_scale: float = 0.01
    attention_bias: bool = False
    tie_word_embeddings: bool = True
    frame_rate: float | None = None  # legacy `_frame_rate`; derived when None

    def __post_init__(self):
        what = "codec_config"
        object.__setattr__(self, "upsampling_ratios", tuple(self.upsampling_ratios))
        # sizes first: the derived fields below divide by them
        _int_fields(self, ["sampling_rate", "hidden_size", "num_filters", "num_residual_layers", "codebook_size",
                           "codebook_dim", "num_quantizers", "num_semantic_quantizers", "num_hidden_layers",
                           "intermediate_size", "num_attention_heads", "sliding_window", "compress", "kernel_size",
                           "last_kernel_size", "residual_kernel_size", "dilation_growth_rate",
                           "vector_quantization_hidden_dimension"], what, positive=True)
        _check(len(self.upsampling_ratios) > 0 and all(isinstance(r, int) and not isinstance(r, bool) and r >= 1
                                                      for r in self.upsampling_ratios), what,
               f"upsampling_ratios must be whole numbers of at least 1, got {list(self.upsampling_ratios)}")
        if self.num_key_value_heads is None:
            object.__setattr__(self, "num_key_value_heads", self.num_attention_heads)
        if self.head_dim is None:
            _check(self.hidden_size % self.num_attention_heads == 0, what,
                   f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}")
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_attention_heads)
        _int_fields(self, ["num_key_value_heads", "head_dim"], what, positive=True)
        _check(self.audio_channels == 1, what, "only mono codecs (audio_channels = 1) are supported")
        _check(self.use_causal_conv, what, "only causal convolutions (use_causal_conv = true) can stream")
        _check(self.pad_mode in ("constant", "replicate"), what, f"pad_mode {self.pad_mode!r} is not supported")
        _check(self.hidden_act == "gelu", what, f"hidden_act {self.hidden_act!r} is not supported (gelu is)")
        _check(self.num_attention_heads % self.num_key_value_heads == 0, what,
               "num_attention_heads must be a multiple of num_key_value_heads")
        _check(0 < self.num_semantic_quantizers < self.num_quantizers, what,
               "num_semantic_quantizers must be at least 1 and fewer than num_quantizers")
        _check(self.sampling_rate % self.hop_length == 0, what,
               f"sampling_rate {self.sampling_rate} is not a multiple of the SEANet hop {self.hop_length}")
        _check(self.sliding_window >= 1, what, "sliding_window must be at least 1")

    @property
    def hop_length(self) -> int:
        """Samples per SEANet output step (960 for Mimi: 25 Hz)."""
        return math.prod(self.upsampling_ratios)

    @property
    def latent_stride(self) -> int:
        """The learnt downsampling from the SEANet rate to the frame rate (25 Hz -> 12.5 Hz)."""
        return 2

    @property
    def frame_size(self) -> int:
        """Samples per codec frame, i.e. per decoder step (1920 = 80 ms at 24 kHz)."""
        return self.hop_length * self.latent_stride

    @property
    def dilations(self) -> list[int]:
        return [self.dilation_growth_rate**j for j in range(self.num_residual_layers)]

    @classmethod
    def from_dict(cls, raw: dict) -> "MimiConfig":
        if not isinstance(raw, dict):
            raise ConfigError("codec_config must be a JSON object")
        raw = dict(raw)
        raw["rope_theta"] = _rope_theta(raw, cls.rope_theta)
        raw.pop("rope_parameters", None)
        return _build(cls, raw, {"_frame_rate": "frame_rate"}, "codec_config")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["upsampling_ratios"] = list(self.upsampling_ratios)
        out["_frame_rate"] = out.pop("frame_rate")
        out["rope_parameters"] = {"rope_type": "default", "rope_theta": out.pop("rope_theta")}
        out["model_type"] = "mimi"
        return out


@dataclass(frozen=True)
class KyutaiSpeechToTextConfig:
    """The speech-to-text decoder plus its codec. Defaults: the stt-2.6b-en shape."""

    codebook_vocab_size: int = 2049  # audio codes per codebook + the audio BOS
    vocab_size: int = 4001  # text ids, including the extra row the converter appended
    hidden_size: int = 2048
    num_hidden_layers: int = 48
    num_attention_heads: int = 32
    num_key_value_heads: int | None = None  # None = num_attention_heads (no grouped-query attention)
    max_position_embeddings: int = 750  # nominal only: RoPE is computed for any position
    rope_theta: float = 100000.0
    hidden_act: str = "silu"
    head_dim: int | None = None  # None = hidden_size // num_attention_heads
    initializer_range: float = 0.02
    use_cache: bool = True
    sliding_window: int = 375  # decoder attention context in frames (30 s for the 2.6b)
    attention_dropout: float = 0.0
    ffn_dim: int = 11264  # fc1 width; the gated MLP's hidden width is half of it
    rms_norm_eps: float = 1e-8
    num_codebooks: int = 32  # how many codec codebooks the decoder reads per frame
    audio_bos_token_id: int = 2048
    audio_pad_token_id: int = 69569  # the joint table's all-zero last row
    tie_word_embeddings: bool = False
    pad_token_id: int = 3
    bos_token_id: int = 48000
    eos_token_id: int | None = None
    codec_config: MimiConfig = field(default_factory=MimiConfig)
    torch_dtype: str | None = None  # dtype the checkpoint was saved in (informational)

    def __post_init__(self):
        what = "config.json"
        if isinstance(self.codec_config, dict):
            object.__setattr__(self, "codec_config", MimiConfig.from_dict(self.codec_config))
        if self.codec_config is None:
            object.__setattr__(self, "codec_config", MimiConfig())
        if self.num_key_value_heads is None:
            object.__setattr__(self, "num_key_value_heads", self.num_attention_heads)
        # sizes first: the derived fields below divide by them
        _int_fields(self, ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                           "num_key_value_heads", "ffn_dim", "num_codebooks", "codebook_vocab_size",
                           "sliding_window"], what, positive=True)
        _int_fields(self, ["audio_bos_token_id", "audio_pad_token_id", "pad_token_id", "bos_token_id"], what)
        if self.head_dim is None:
            _check(self.hidden_size % self.num_attention_heads == 0, what,
                   f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}")
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_attention_heads)
        _int_fields(self, ["head_dim"], what, positive=True)
        _check(self.num_attention_heads % self.num_key_value_heads == 0, what,
               f"num_attention_heads {self.num_attention_heads} is not a multiple of "
               f"num_key_value_heads {self.num_key_value_heads}")
        _check(self.head_dim % 2 == 0, what, f"head_dim {self.head_dim} must be even for rotary embeddings")
        _check(self.ffn_dim % 2 == 0, what, f"ffn_dim {self.ffn_dim} must be even (gate and value halves)")
        _check(self.hidden_act == "silu", what, f"hidden_act {self.hidden_act!r} is not supported (silu is)")
        _check(self.sliding_window >= 1, what, "sliding_window must be at least 1")
        _check(0 < self.num_codebooks <= self.codec_config.num_quantizers, what,
               f"num_codebooks {self.num_codebooks} must be between 1 and the codec's "
               f"num_quantizers {self.codec_config.num_quantizers}")
        _check(self.codebook_vocab_size > self.codec_config.codebook_size, what,
               f"codebook_vocab_size {self.codebook_vocab_size} must exceed the codec's codebook_size "
               f"{self.codec_config.codebook_size} (it also holds the audio BOS)")
        _check(0 <= self.audio_bos_token_id < self.codebook_vocab_size, what,
               f"audio_bos_token_id {self.audio_bos_token_id} is outside 0..{self.codebook_vocab_size - 1}")
        _check(0 <= self.audio_pad_token_id < self.embedding_rows, what,
               f"audio_pad_token_id {self.audio_pad_token_id} is outside the joint embedding table "
               f"({self.embedding_rows} rows)")
        _check(0 <= self.bos_token_id < self.embedding_rows, what,
               f"bos_token_id {self.bos_token_id} is outside the joint embedding table ({self.embedding_rows} rows)")
        _check(0 <= self.pad_token_id < self.vocab_size, what, f"pad_token_id {self.pad_token_id} is not a text id")

    @property
    def embedding_rows(self) -> int:
        """Rows of the joint table: text ids, then every codebook's codes, then one zero row."""
        return self.vocab_size + self.num_codebooks * self.codebook_vocab_size + 1

    @property
    def frame_size(self) -> int:
        return self.codec_config.frame_size

    @property
    def sampling_rate(self) -> int:
        return self.codec_config.sampling_rate

    @property
    def frame_rate(self) -> float:
        return self.sampling_rate / self.frame_size

    @classmethod
    def from_dict(cls, raw: dict) -> "KyutaiSpeechToTextConfig":
        if not isinstance(raw, dict):
            raise ConfigError("config.json must hold a JSON object")
        model_type = raw.get("model_type", "kyutai_speech_to_text")
        if model_type not in ("kyutai_speech_to_text", "stt"):
            raise ConfigError(f"config.json is for a {model_type!r} model, not kyutai_speech_to_text")
        missing = [k for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                               "codec_config") if k not in raw]
        if missing:
            raise ConfigError(f"config.json lacks {', '.join(missing)}: is this a -trfs Kyutai checkpoint?")
        raw = dict(raw)
        raw["rope_theta"] = _rope_theta(raw, cls.rope_theta)
        raw.pop("rope_parameters", None)
        raw["codec_config"] = MimiConfig.from_dict(raw["codec_config"])
        raw["torch_dtype"] = raw.get("torch_dtype", raw.get("dtype"))
        return _build(cls, raw, {}, "config.json")

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "KyutaiSpeechToTextConfig":
        try:
            with open(path, encoding="utf-8") as fh:
                raw = json.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} is not readable JSON ({exc})") from None
        return cls.from_dict(raw)

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, **hub_kwargs) -> "KyutaiSpeechToTextConfig":
        return cls.from_json_file(resolve_checkpoint(source, **hub_kwargs) / "config.json")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["codec_config"] = self.codec_config.to_dict()
        out["rope_parameters"] = {"rope_type": "default", "rope_theta": out.pop("rope_theta")}
        dtype = out.pop("torch_dtype")
        if dtype is not None:
            out["dtype"] = dtype
        out["model_type"] = "kyutai_speech_to_text"
        out["architectures"] = ["KyutaiSpeechToTextForConditionalGeneration"]
        out["frame_size"] = self.frame_size
        return out

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2, sort_keys=True)

    def replace(self, **changes) -> "KyutaiSpeechToTextConfig":
        return dataclasses.replace(self, **changes)
