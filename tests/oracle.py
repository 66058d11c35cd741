"""Test oracle: tiny random Kyutai STT checkpoints built with Hugging Face `transformers`.

Our engine (`core/`) re-implements `KyutaiSpeechToTextForConditionalGeneration` in plain PyTorch.
The tests compare it with the real thing, so this module builds small checkpoints *with transformers
itself* and lays them out exactly like the `kyutai/stt-*-trfs` repos on the hub (config.json,
generation_config.json, safetensors, preprocessor_config.json, tokenizer files), optionally inside a
fake hub cache. It also runs transformers' processor + generate on them, which is the reference
output every token-exact test checks against.

transformers (pinned in pyproject's `test` extra) is imported inside the functions, so test modules
that only import the constants here do not pay for it.

Weights are random but "decisive" (see `_make_decoder_decisive`, `_calibrate_codebooks`): the
default init gives near-zero logits and all-zero codebooks, so two float32 implementations would
disagree on argmax ties and every frame would get the same codes. The re-init keeps argmax margins
and nearest-centroid margins large and makes codes and tokens depend on the audio.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import pathlib
import shutil

import numpy as np
import torch

SAMPLE_RATE = 24_000
FRAME_SIZE = 1920  # 4*5*6*8 SEANet strides * 2 (downsample) = 80 ms at 24 kHz

# Kyutai's SentencePiece specials (spec 3.5): 0 also marks "a new word starts", 3 is the padding text token.
SPECIAL_PIECES = ("<unk>", "<s>", "</s>", "<pad>")
TEXT_PAD_ID = 3

# Scales of the decisive re-init (why: see the module docstring).
ATTENTION_GAIN = 1.5  # q/k so that attention is peaked and RoPE / masks really matter
LM_HEAD_GAIN = 8.0  # logits' standard deviation over the text vocabulary (hidden state is RMS-normalised)
BYTE_PIECE_DAMPING = 0.5  # lm_head rows of byte-fallback pieces, relative to the others
# The codebooks are scaled to the measured spread of what each one quantises (see _calibrate_codebooks).
CODEBOOK_SCALE = 1.0

# ----------------------------------------------------------------------------------------------------
# Variants
# ----------------------------------------------------------------------------------------------------


def _codec_config(**overrides) -> dict:
    """A tiny Mimi that keeps the real stride structure (frame_size 1920) and real defaults elsewhere."""
    codec = {
        "model_type": "mimi",
        "sampling_rate": SAMPLE_RATE,
        "audio_channels": 1,
        "hidden_size": 32,
        "num_filters": 4,
        "num_residual_layers": 1,
        "upsampling_ratios": [8, 6, 5, 4],
        "kernel_size": 7,
        "last_kernel_size": 3,
        "residual_kernel_size": 3,
        "dilation_growth_rate": 2,
        "use_causal_conv": True,
        "pad_mode": "constant",
        "compress": 2,
        "codebook_size": 64,
        "codebook_dim": 16,
        "vector_quantization_hidden_dimension": 16,
        "num_quantizers": 4,
        "num_semantic_quantizers": 1,
        "upsample_groups": 32,  # depthwise upsample conv of the (unused) decoder side: = hidden_size
        "num_hidden_layers": 2,
        "intermediate_size": 64,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "sliding_window": 250,
        "max_position_embeddings": 8000,
        "use_cache": False,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
    }
    codec.update(overrides)
    return codec


def _stt_config(codec: dict, *, vocab_size: int, num_codebooks: int, **overrides) -> dict:
    """Decoder config around `codec`, with the token ids laid out like the hub's (spec 2.1, 3.3).

    - audio BOS = codebook_size (one extra row per codebook, so codebook_vocab_size = codebook_size + 1);
    - audio pad = the last row of the joint table (vocab_size + num_codebooks * codebook_vocab_size);
    - BOS is *not* a text id: like the real 48000 it points into the audio rows of the joint table.
    """
    codebook_size = codec["codebook_size"]
    codebook_vocab_size = codebook_size + 1
    config = {
        "model_type": "kyutai_speech_to_text",
        "vocab_size": vocab_size,
        "codebook_vocab_size": codebook_vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "ffn_dim": 88,
        "max_position_embeddings": 750,
        "sliding_window": 375,
        "rope_parameters": {"rope_type": "default", "rope_theta": 100000.0},
        "rms_norm_eps": 1e-8,
        "num_codebooks": num_codebooks,
        "audio_bos_token_id": codebook_size,
        "audio_pad_token_id": vocab_size + num_codebooks * codebook_vocab_size,
        "bos_token_id": vocab_size + (num_codebooks // 2) * codebook_vocab_size + codebook_size // 3,
        "pad_token_id": TEXT_PAD_ID,
        "codec_config": codec,
    }
    config.update(overrides)
    return config


VARIANTS: dict[str, dict] = {
    # The reference tiny model of tiny_transformers_stt.py: MHA, 4 codebooks, 1b-like padding.
    "base": {
        "config": _stt_config(_codec_config(), vocab_size=51, num_codebooks=4),
        "audio_delay_seconds": 0.5,
        "audio_silence_prefix_seconds": 0.0,
    },
    # Grouped-query attention in both transformers, head_dim != hidden/heads in both, 8 codebooks,
    # and a text vocabulary large enough for the 256 byte-fallback pieces of the tokenizer.
    "gqa": {
        "config": _stt_config(
            _codec_config(
                num_attention_heads=4,
                num_key_value_heads=2,
                head_dim=12,
                num_quantizers=8,
                codebook_size=32,
                codebook_dim=8,
                vector_quantization_hidden_dimension=8,
            ),
            vocab_size=301,
            num_codebooks=8,
            hidden_size=48,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            ffn_dim=128,
        ),
        "audio_delay_seconds": 0.8,
        "audio_silence_prefix_seconds": 0.24,
    },
    # Both attention windows shorter than a test clip (tens of frames), and delay / prefix that are
    # not whole 80 ms frames.
    "window": {
        "config": _stt_config(
            _codec_config(sliding_window=5, num_hidden_layers=2, num_residual_layers=1),
            vocab_size=51,
            num_codebooks=4,
            sliding_window=6,
        ),
        "audio_delay_seconds": 0.3,
        "audio_silence_prefix_seconds": 0.15,
    },
    # Two residual blocks per SEANet stage (dilations 1 and 2). transformers' generate cannot run a codec
    # with more quantizers than the decoder has codebooks (it copies all the codec's codes into a
    # num_codebooks-wide buffer and fails), so the two agree here: 6 and 6.
    "deep_codec": {
        "config": _stt_config(
            _codec_config(
                num_residual_layers=2,
                dilation_growth_rate=2,
                num_quantizers=6,
            ),
            vocab_size=51,
            num_codebooks=6,
        ),
        "audio_delay_seconds": 0.48,
        "audio_silence_prefix_seconds": 0.08,
    },
}


def variant_config(variant: str) -> dict:
    """A deep copy of the config dict of `variant` (safe to modify)."""
    try:
        return copy.deepcopy(VARIANTS[variant]["config"])
    except KeyError:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}") from None


# ----------------------------------------------------------------------------------------------------
# Building a checkpoint
# ----------------------------------------------------------------------------------------------------


def build_model(variant: str = "base", seed: int = 0):
    """A KyutaiSpeechToTextForConditionalGeneration of `variant` with decisive random weights (eval)."""
    from transformers import KyutaiSpeechToTextConfig, KyutaiSpeechToTextForConditionalGeneration

    torch.manual_seed(seed)
    config = KyutaiSpeechToTextConfig(**variant_config(variant))
    model = KyutaiSpeechToTextForConditionalGeneration(config).eval()
    with torch.no_grad():
        _make_decoder_decisive(model)
        _make_codec_transformer_decisive(model.codec_model)
        _calibrate_codebooks(model.codec_model, seed)
    _use_hub_generation_config(model)
    return model


def _use_hub_generation_config(model) -> None:
    """Set what Kyutai's converter put in the hub's generation_config.json (spec 3.2, 4.4).

    audio_window_size=1 (codec streamed frame by frame), a sliding-window decoder cache, and the codec's
    generation settings, which save_pretrained stores with a `codec_` prefix. bos / pad come from
    the model config (pad 3, like the hub).
    """
    generation = model.generation_config
    generation._from_model_config = False
    generation.audio_window_size = 1
    generation.cache_implementation = "sliding_window"
    generation.pad_token_id = TEXT_PAD_ID
    codec_generation = model.codec_model.generation_config
    codec_generation._from_model_config = False
    codec_generation.cache_implementation = "sliding_window"
    codec_generation.use_cache = True


def _normal_(weight: torch.Tensor, gain: float = 1.0) -> None:
    """N(0, gain^2 / fan_in): keeps activations O(1) whatever the width, unlike a fixed std of 0.02."""
    fan_in = weight[0].numel()
    weight.normal_(0.0, gain / math.sqrt(fan_in))


def _make_decoder_decisive(model) -> None:
    """Re-initialise the STT decoder so its logits have large top-1 margins.

    Embeddings N(0,1) (the step input is a sum of 1 + num_codebooks rows, RMS-normalised anyway),
    linears N(0, 1/fan_in) with a gain on q/k, norms around 1, and an lm_head whose logits have a
    standard deviation of LM_HEAD_GAIN. As in the real checkpoints (spec 2.1, 2.5), the audio-pad row
    of the joint table and the last lm_head row (text_card, appended by the converter) are zero.
    """
    config = model.config
    for name, param in model.model.named_parameters():
        if name.endswith("norm.weight"):
            param.uniform_(0.8, 1.2)
        elif "embed_tokens" in name:
            param.normal_(0.0, 1.0)
            param[config.audio_pad_token_id].zero_()
        elif ".q_proj." in name or ".k_proj." in name:
            _normal_(param, ATTENTION_GAIN)
        else:
            _normal_(param)
    _normal_(model.lm_head.weight, LM_HEAD_GAIN)
    model.lm_head.weight[config.vocab_size - 1].zero_()
    if config.vocab_size - 1 >= len(SPECIAL_PIECES) + 256:
        # ids 4..259 are the tokenizer's byte pieces (see text_pieces): a real model rarely emits them,
        # and random ones mostly decode to U+FFFD, so make them unlikely (but not impossible)
        model.lm_head.weight[len(SPECIAL_PIECES) : len(SPECIAL_PIECES) + 256] *= BYTE_PIECE_DAMPING


def _make_codec_transformer_decisive(codec) -> None:
    """Give Mimi's transformers real weight in the latents (default layer scale is 0.01).

    Without this the codec's attention barely changes the codes, so a wrong sliding window or RoPE
    in a re-implementation would go unnoticed. The SEANet convs keep their (kaiming) default init.
    """
    for name, param in codec.named_parameters():
        if "_transformer." not in name:
            continue
        if "layer_scale" in name:
            param.uniform_(0.3, 0.6)
        elif "layernorm" in name and name.endswith("weight"):
            param.uniform_(0.8, 1.2)
        elif "layernorm" in name:
            param.normal_(0.0, 0.1)
        elif ".q_proj." in name or ".k_proj." in name:
            _normal_(param, ATTENTION_GAIN)
        else:
            _normal_(param)


def calibration_audio(seed: int, seconds: float = 3.0) -> torch.Tensor:
    """Deterministic test-like audio (noise + a chirp, varying loudness), shape (1, 1, samples)."""
    generator = torch.Generator().manual_seed(10_000 + seed)
    n = int(seconds * SAMPLE_RATE)
    t = torch.arange(n) / SAMPLE_RATE
    envelope = 0.05 + 0.1 * (1 + torch.sin(2 * math.pi * 0.7 * t))
    chirp = 0.2 * torch.sin(2 * math.pi * (200 + 300 * t) * t)
    noise = torch.randn(n, generator=generator)
    return (envelope * noise + chirp).reshape(1, 1, n)


def _calibrate_codebooks(codec, seed: int) -> None:
    """Random centroids at the scale of what each codebook quantises.

    Random init leaves every codebook at zero (all codes equal). We draw centroids ~ N(m, s^2), with
    m and s the measured mean and per-dimension spread of the codebook's input on calibration audio
    (the projected latents carry a large constant offset: zero-mean centroids would give a handful of
    codes whatever the audio), and cluster_usage ~ U(0.5, 1.5), stored as embed_sum = centroid * usage
    so that the division transformers does on load matters. Acoustic codebooks are done in order
    because each one sees the residual left by the previous ones.
    """
    latents = codec.encoder(calibration_audio(seed)).latents  # (1, hidden, frames)
    quantizer = codec.quantizer
    for rvq in (quantizer.semantic_residual_vector_quantizer, quantizer.acoustic_residual_vector_quantizer):
        residual = rvq.input_proj(latents) if rvq.input_proj is not None else latents  # (1, dim, frames)
        for layer in rvq.layers:
            codebook = layer.codebook
            center = residual.mean(dim=-1)[0]  # (dim,): the inputs share a large constant offset
            spread = residual.std(dim=-1).mean().item()  # spread over time, averaged over dimensions
            centroids = center + torch.randn_like(codebook.embed_sum) * (CODEBOOK_SCALE * spread)
            codebook.cluster_usage.uniform_(0.5, 1.5)
            codebook.embed_sum.copy_(centroids * codebook.cluster_usage[:, None])  # embed = sum / usage
            codebook._embed = None  # drop the centroid cache (computed lazily from the buffers)
            residual = residual - layer.decode(layer.encode(residual))


def build_checkpoint(
    out_dir,
    variant: str = "base",
    seed: int = 0,
    sharded: bool = False,
    legacy_config: bool = False,
) -> pathlib.Path:
    """Write a complete `-trfs`-style repo folder for `variant` to `out_dir` and return its path.

    Files: config.json, generation_config.json, model.safetensors (or >= 2 shards plus
    model.safetensors.index.json when `sharded`), preprocessor_config.json, tokenizer.json,
    tokenizer_config.json, special_tokens_map.json. With `legacy_config`, config.json is rewritten the
    way the hub file looks (flat rope_theta, torch_dtype; spec 4.4).
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(variant, seed)
    shard_size = _shard_size_for(model) if sharded else "50GB"
    model.save_pretrained(out_dir, max_shard_size=shard_size)
    spec = VARIANTS[variant]
    _save_preprocessor(out_dir, spec["audio_delay_seconds"], spec["audio_silence_prefix_seconds"])
    text_card = model.config.vocab_size - 1
    make_tokenizer_json(out_dir / "tokenizer.json", text_card)
    _write_json(out_dir / "tokenizer_config.json", tokenizer_config())
    _write_json(out_dir / "special_tokens_map.json", special_tokens_map())
    if legacy_config:
        config_path = out_dir / "config.json"
        _write_json(config_path, legacy_config_dict(json.loads(config_path.read_text())))
    return out_dir


def _shard_size_for(model) -> int:
    """A max_shard_size (bytes) that splits the float32 state dict into about three files."""
    total = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return total // 3 + 1


def _save_preprocessor(out_dir: pathlib.Path, delay: float, prefix: float) -> None:
    from transformers import KyutaiSpeechToTextFeatureExtractor

    extractor = KyutaiSpeechToTextFeatureExtractor(
        audio_delay_seconds=delay, audio_silence_prefix_seconds=prefix
    )
    extractor.save_pretrained(out_dir)
    # the hub files were written by the processor, which tags each part with its class
    path = out_dir / "preprocessor_config.json"
    data = json.loads(path.read_text())
    data["processor_class"] = "KyutaiSpeechToTextProcessor"
    _write_json(path, data)


def _write_json(path: pathlib.Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def legacy_config_dict(config: dict) -> dict:
    """A config.json dict as the hub has it (written by transformers 4.53): flat `rope_theta` instead of
    `rope_parameters` (decoder and codec), `torch_dtype` instead of `dtype`, codec `frame_rate`."""
    config = copy.deepcopy(config)
    for part in (config, config["codec_config"]):
        rope = part.pop("rope_parameters", None) or {}
        part["rope_theta"] = rope.get("rope_theta", 10000.0)
    config["torch_dtype"] = config.pop("dtype", "float32")
    codec = config["codec_config"]
    codec.pop("_frame_rate", None)
    codec["frame_rate"] = codec["sampling_rate"] / config["frame_size"]
    config["transformers_version"] = "4.53.0.dev0"
    return config


# ----------------------------------------------------------------------------------------------------
# Tokenizer files
# ----------------------------------------------------------------------------------------------------

# Pieces that make random ids decode to readable text: word starts carry '▁' (SentencePiece's space).
_WORD_PIECES = (
    "the a and to of in is it you that he was for on are with as I his they be at one have this from "
    "or had by hot word but what some we can out other were all there when up use your how said an "
    "each she which do their time if will way about many then them write would like so these her long "
    "make thing see him two has look more day could go come did number sound no most people my over "
    "know water than call first who may down side been now find hello world bonjour monde"
).split()
_CONTINUATION_PIECES = (
    "e s ing ed er ly t n r d y es en al le ion ent on re ation ic an st ers ous ve ity "
    "a b c f g h i k l m o p u w . , ' ? ! -"
).split()


def text_pieces(text_card: int) -> list[str]:
    """The `text_card` pieces of a Kyutai-like vocabulary, in id order.

    0..3 are <unk> <s> </s> <pad>; for text_card >= 260 the 256 byte-fallback pieces <0x00>..<0xFF>
    follow (as in the real tokenizers); then '▁' and word-start pieces ('▁the') interleaved with
    continuation pieces ('ing'), padded with made-up ones when the vocabulary is larger than the lists.
    """
    if text_card < len(SPECIAL_PIECES) + 2:
        raise ValueError(f"text_card={text_card} is too small for a tokenizer")
    pieces = list(SPECIAL_PIECES)
    if text_card >= len(SPECIAL_PIECES) + 256:
        pieces += [f"<0x{b:02X}>" for b in range(256)]
    words = ["▁" + w for w in _WORD_PIECES]
    # a bare '▁' always exists in SentencePiece vocabularies (else spaces would become bytes)
    mixed = ["▁"] + [p for pair in zip(words, _CONTINUATION_PIECES) for p in pair]
    mixed += words[len(_CONTINUATION_PIECES) :]
    needed = text_card - len(pieces)
    if len(mixed) < needed:
        mixed += _filler_pieces(needed - len(mixed), set(mixed))
    return pieces + mixed[:needed]


def _filler_pieces(count: int, taken: set):
    """`count` made-up but pronounceable pieces ('▁theing', 'ingly', ...) not in `taken`."""
    words = ["▁" + w for w in _WORD_PIECES]
    candidates = (
        [w + c for c in _CONTINUATION_PIECES for w in words]
        + [a + b for a in _CONTINUATION_PIECES for b in _CONTINUATION_PIECES]
        + [f"▁the{n}" for n in range(count)]  # only reached for vocabularies of ~8000
    )
    fresh = (c for c in dict.fromkeys(candidates) if c not in taken)
    return [next(fresh) for _ in range(count)]


def make_tokenizer_json(path, text_card: int) -> pathlib.Path:
    """Write a `tokenizers` Unigram tokenizer.json shaped like MoshiConverter's output (spec 3.5).

    Normalizer Replace(' ', '▁'); pre-tokenizer Metaspace('▁', prepend 'first', no split); decoder
    Replace('▁', ' ') + ByteFallback + Fuse + Strip(1 left); the four specials as special added
    tokens. Byte fallback is on only when the vocabulary holds the 256 byte pieces.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

    pieces = text_pieces(text_card)
    byte_fallback = "<0x00>" in pieces
    # Unigram log-probabilities: specials and bytes 0 as in SentencePiece, real pieces decreasing
    vocab = [(p, 0.0 if p in SPECIAL_PIECES or p.startswith("<0x") else -2.0 - 0.01 * i) for i, p in enumerate(pieces)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=byte_fallback))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Replace(" ", "▁")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tokenizer.add_special_tokens([AddedToken(p, normalized=False, special=True) for p in SPECIAL_PIECES])
    path = pathlib.Path(path)
    tokenizer.save(str(path))
    return path


def _added_token(content: str) -> dict:
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}


def tokenizer_config() -> dict:
    """tokenizer_config.json as the -trfs repos have it: a PreTrainedTokenizerFast whose four specials
    are listed, with bos/eos/pad left null (the model config supplies BOS 48000 and pad 3)."""
    return {
        "added_tokens_decoder": {str(i): {**_added_token(p), "special": True} for i, p in enumerate(SPECIAL_PIECES)},
        "bos_token_id": None,
        "clean_up_tokenization_spaces": False,
        "eos_token_id": None,
        "extra_special_tokens": {},
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 1000000000000000019884624838656,
        "pad_token_id": None,
        "processor_class": "KyutaiSpeechToTextProcessor",
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": "<unk>",
    }


def special_tokens_map() -> dict:
    return {"unk_token": _added_token("<unk>")}


# ----------------------------------------------------------------------------------------------------
# Fake hub cache
# ----------------------------------------------------------------------------------------------------


def _git_blob_sha1(data: bytes) -> str:
    """The id git (and the hub) gives a regular file: sha1 of 'blob <size>\\0' + content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _blob_name(path: pathlib.Path) -> str:
    """Blob file name in the hub cache: sha256 for LFS files (weights), git sha1 for the rest."""
    data = path.read_bytes()
    if path.suffix == ".safetensors":
        return hashlib.sha256(data).hexdigest()
    return _git_blob_sha1(data)


def install_in_hub_cache(checkpoint_dir, cache_dir, repo_id: str, revision_hash: str | None = None) -> pathlib.Path:
    """Copy a checkpoint folder into a huggingface_hub cache and return the snapshot folder.

    Layout: <cache_dir>/models--{org}--{name}/blobs/<hash>, snapshots/<commit>/<file> as relative
    symlinks to the blobs, refs/main holding the commit. The commit defaults to a hash of the file
    hashes, so the same checkpoint always gets the same revision.
    """
    checkpoint_dir = pathlib.Path(checkpoint_dir)
    files = sorted(p for p in checkpoint_dir.iterdir() if p.is_file())
    blobs = {p.name: _blob_name(p) for p in files}
    if revision_hash is None:
        revision_hash = hashlib.sha1("".join(f"{k}:{v}\n" for k, v in blobs.items()).encode()).hexdigest()
    repo_root = pathlib.Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_root / "snapshots" / revision_hash
    (repo_root / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo_root / "refs").mkdir(exist_ok=True)
    for path in files:
        blob = repo_root / "blobs" / blobs[path.name]
        if not blob.exists():
            shutil.copyfile(path, blob)
        link = snapshot / path.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.join("..", "..", "blobs", blobs[path.name]))
    (repo_root / "refs" / "main").write_text(revision_hash)  # no trailing newline, as the hub writes it
    return snapshot


# ----------------------------------------------------------------------------------------------------
# Running transformers
# ----------------------------------------------------------------------------------------------------


def oracle_model(checkpoint_dir, attn_implementation: str | None = None):
    """transformers' model for a checkpoint: float32, eval, the whole padded clip encoded at once.

    The hub generation_config sets audio_window_size=1 (frame-by-frame codec with a duplicated first
    chunk, spec 3.2); we remove it so step t simply sees frame t-1 of a one-shot encode.
    `attn_implementation="eager"` is needed for `output_attentions=True` (transformers' default,
    sdpa, returns no attention weights).
    """
    from transformers import KyutaiSpeechToTextForConditionalGeneration

    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = KyutaiSpeechToTextForConditionalGeneration.from_pretrained(
        checkpoint_dir, dtype=torch.float32, **extra).eval()
    if hasattr(model.generation_config, "audio_window_size"):
        delattr(model.generation_config, "audio_window_size")
    return model


def oracle_processor(checkpoint_dir):
    from transformers import KyutaiSpeechToTextProcessor

    return KyutaiSpeechToTextProcessor.from_pretrained(checkpoint_dir)


def oracle_generate(checkpoint_dir, audio_list, model=None, processor=None) -> torch.LongTensor:
    """Token ids from transformers' processor + greedy generate, (batch, 1 + steps), BOS first.

    `audio_list`: one float32 array at 24 kHz, or a list of them (right-padded into one batch by the
    processor). Pass `model` / `processor` to reuse already loaded ones.
    """
    model = model if model is not None else oracle_model(checkpoint_dir)
    processor = processor if processor is not None else oracle_processor(checkpoint_dir)
    with torch.no_grad():
        return model.generate(**oracle_inputs(processor, audio_list), do_sample=False)


def oracle_inputs(processor, audio_list) -> dict:
    """The processor's padded batch (input_values (B, 1, L), padding_mask (B, L)) for one clip or a list."""
    if isinstance(audio_list, np.ndarray):
        audio_list = [audio_list]
    audio_list = [np.asarray(a, dtype=np.float32) for a in audio_list]
    return processor(audio=audio_list, sampling_rate=SAMPLE_RATE, return_tensors="pt")


def oracle_decode(checkpoint_dir, ids, processor=None) -> list[str]:
    """Text as a transformers user gets it: processor.batch_decode(ids, skip_special_tokens=True).

    `ids` is what oracle_generate returns, BOS included. transformers does not crash on ids the
    tokenizer does not know (the BOS, >= vocab_size, and text_card, the zero lm_head row): the
    `tokenizers` decoder silently skips them, and skip_special_tokens drops 0..3.
    """
    processor = processor if processor is not None else oracle_processor(checkpoint_dir)
    rows = torch.as_tensor(ids).reshape(-1, torch.as_tensor(ids).shape[-1])
    return processor.batch_decode(rows, skip_special_tokens=True)


# ----------------------------------------------------------------------------------------------------
# Margins: how far the oracle is from a tie (for tests that want token- or code-exact comparisons)
# ----------------------------------------------------------------------------------------------------


def code_margins(codec, input_values: torch.Tensor) -> torch.Tensor:
    """Relative nearest-centroid margins (d2 - d1) / d1 of every code, shape (batch, num_quantizers, frames).

    `codec` is a transformers MimiModel (e.g. `oracle_model(dir).codec_model`), `input_values` is
    (batch, 1, samples). A code whose margin is below ~1e-5 may flip between two float32
    implementations; the median is a few percent.
    """
    with torch.no_grad():
        latents = codec.encoder(input_values).latents
        margins = []
        quantizer = codec.quantizer
        for rvq in (quantizer.semantic_residual_vector_quantizer, quantizer.acoustic_residual_vector_quantizer):
            residual = rvq.input_proj(latents) if rvq.input_proj is not None else latents  # (B, dim, T)
            for layer in rvq.layers:
                dists = torch.cdist(residual.transpose(1, 2), layer.codebook.embed[None])  # (B, T, codebook_size)
                nearest = dists.topk(2, dim=-1, largest=False).values
                margins.append((nearest[..., 1] - nearest[..., 0]) / nearest[..., 0].clamp(min=1e-12))
                residual = residual - layer.decode(layer.encode(residual))
    return torch.stack(margins, dim=1)


def logit_margins(model, inputs) -> torch.Tensor:
    """Top-1 minus top-2 logit of every generated step, shape (batch, steps), from transformers' generate.

    `inputs` is the processor's output for some audio (see oracle_generate).
    """
    with torch.no_grad():
        out = model.generate(**inputs, do_sample=False, output_scores=True, return_dict_in_generate=True)
    top2 = torch.stack(out.scores, dim=1).topk(2, dim=-1).values
    return top2[..., 0] - top2[..., 1]


# ----------------------------------------------------------------------------------------------------
# Tensor names and shapes without memory
# ----------------------------------------------------------------------------------------------------


def meta_state_shapes(config_dict: dict) -> dict[str, tuple]:
    """{name as saved in the checkpoint file: shape} for a config dict, built on the meta device.

    transformers renames Mimi's flat keys on load (encoder.layers -> encoder.encoder_seanet.layers, ...)
    and reverses that on save (spec 4.2); we apply the same reversal save_pretrained applies, so the
    names are the file's. Saved buffers (codebook embed_sum, cluster_usage, initialized) are included.
    """
    from transformers import KyutaiSpeechToTextConfig, KyutaiSpeechToTextForConditionalGeneration
    from transformers.core_model_loading import revert_weight_conversion
    from transformers.modeling_utils import remove_tied_weights_from_state_dict

    config = KyutaiSpeechToTextConfig.from_dict(copy.deepcopy(config_dict))
    with torch.device("meta"):
        model = KyutaiSpeechToTextForConditionalGeneration(config)
    state = remove_tied_weights_from_state_dict(model.state_dict(), model)
    state = revert_weight_conversion(model, state)
    return {name: tuple(tensor.shape) for name, tensor in state.items()}


def saved_state_shapes(checkpoint_dir) -> dict[str, tuple]:
    """{name: shape} of every tensor in a checkpoint folder's safetensors files (read headers only)."""
    from safetensors import safe_open

    shapes = {}
    for path in sorted(pathlib.Path(checkpoint_dir).glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            for name in f.keys():
                shapes[name] = tuple(f.get_slice(name).get_shape())
    return shapes


def _official_config(*, vocab_size: int, num_hidden_layers: int, num_attention_heads: int, sliding_window: int) -> dict:
    """config.json of an official -trfs checkpoint in the hub's legacy style (spec 4.4)."""
    hidden_size = 2048
    codec = {
        "model_type": "mimi",
        "sampling_rate": 24000,
        "frame_rate": 12.5,
        "audio_channels": 1,
        "hidden_size": 512,
        "num_filters": 64,
        "num_residual_layers": 1,
        "upsampling_ratios": [8, 6, 5, 4],
        "kernel_size": 7,
        "last_kernel_size": 3,
        "residual_kernel_size": 3,
        "dilation_growth_rate": 2,
        "use_causal_conv": True,
        "pad_mode": "constant",
        "compress": 2,
        "trim_right_ratio": 1.0,
        "codebook_size": 2048,
        "codebook_dim": 256,
        "num_quantizers": 32,
        "use_conv_shortcut": False,
        "vector_quantization_hidden_dimension": 256,
        "num_semantic_quantizers": 1,
        "upsample_groups": 512,
        "num_hidden_layers": 8,
        "intermediate_size": 2048,
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "hidden_act": "gelu",
        "max_position_embeddings": 8000,
        "initializer_range": 0.02,
        "norm_eps": 1e-5,
        "use_cache": False,
        "use_streaming": False,
        "rope_theta": 10000.0,
        "sliding_window": 250,
        "attention_dropout": 0.0,
        "layer_scale_initial_scale": 0.01,
        "attention_bias": False,
        "torch_dtype": "float32",
    }
    return {
        "architectures": ["KyutaiSpeechToTextForConditionalGeneration"],
        "model_type": "kyutai_speech_to_text",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.53.0.dev0",
        "vocab_size": vocab_size,
        "codebook_vocab_size": 2049,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_hidden_layers,
        "num_attention_heads": num_attention_heads,
        "num_key_value_heads": num_attention_heads,
        "head_dim": hidden_size // num_attention_heads,
        "ffn_dim": 11264,
        "hidden_act": "silu",
        "max_position_embeddings": 750,
        "rope_theta": 100000.0,
        "rms_norm_eps": 1e-8,
        "sliding_window": sliding_window,
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
        "use_cache": True,
        "tie_word_embeddings": False,
        "num_codebooks": 32,
        "audio_bos_token_id": 2048,
        "audio_pad_token_id": vocab_size + 32 * 2049,
        "bos_token_id": 48000,
        "pad_token_id": 3,
        "frame_size": 1920,
        "codec_config": codec,
    }


OFFICIAL_CONFIGS: dict[str, dict] = {
    "kyutai/stt-2.6b-en-trfs": _official_config(
        vocab_size=4001, num_hidden_layers=48, num_attention_heads=32, sliding_window=375
    ),
    "kyutai/stt-1b-en_fr-trfs": _official_config(
        vocab_size=8001, num_hidden_layers=16, num_attention_heads=16, sliding_window=750
    ),
}
