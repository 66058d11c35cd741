"""The speech-to-text decoder and the documented model classes.

`KyutaiSpeechToTextModel` is the bare decoder (joint embedding -> pre-norm transformer -> RMSNorm);
`KyutaiSpeechToTextForConditionalGeneration` adds the text head and the Mimi codec and offers the
documented `forward` (teacher forcing over whole sequences) and `generate` (one clip or a padded
batch). Both run the same layers as the streaming step: only how positions and masks are made
differs, and that is `RingKVCache`'s and `sliding_causal_mask`'s business.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .attention import Attention
from .config import KyutaiSpeechToTextConfig
from .kv_cache import RingKVCache, sliding_causal_mask
from .layers import GatedMLP, RMSNorm, Rotary
from .mimi import MimiEncoder


class _Output:
    """Attribute and key access like transformers' ModelOutput, for the documented call sites."""

    def __getitem__(self, key):
        if isinstance(key, str):
            return getattr(self, key)
        return self.to_tuple()[key]

    def keys(self):
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def to_tuple(self) -> tuple:
        return tuple(getattr(self, k) for k in self.keys())


@dataclass
class BaseModelOutputWithPast(_Output):
    last_hidden_state: torch.Tensor
    past_key_values: RingKVCache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class CausalLMOutputWithPast(_Output):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    past_key_values: RingKVCache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class JointEmbedding(nn.Module):
    """One table for text ids and every codebook's codes; a step's input is the sum of 1 + K rows.

    Row layout: text ids [0, V), codebook k's code c at V + k * codebook_vocab_size + c, and a last
    all-zero row (`audio_pad_token_id`) that is used as is.
    """

    def __init__(self, cfg: KyutaiSpeechToTextConfig):
        super().__init__()
        self.pad_id = cfg.audio_pad_token_id
        self.embed_tokens = nn.Embedding(cfg.embedding_rows, cfg.hidden_size)
        # built on the CPU even under a meta-device build: this buffer is not in the checkpoint
        offsets = cfg.vocab_size + torch.arange(cfg.num_codebooks, device="cpu") * cfg.codebook_vocab_size
        self.register_buffer("offsets", F.pad(offsets, (1, 0)), persistent=False)  # text slot: +0

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids [B, S, 1 + K] -> [B, S, H]"""
        ids = torch.where(input_ids == self.pad_id, input_ids, input_ids + self.offsets)
        return self.embed_tokens(ids).sum(dim=2)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: KyutaiSpeechToTextConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = GatedMLP(cfg.hidden_size, cfg.ffn_dim)

    def forward(self, x, cos, sin, mask, cache, layer, slots, return_weights=False):
        attn, weights = self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, layer, slots, return_weights)
        x = x + attn
        return x + self.mlp(self.post_attention_layernorm(x)), weights


class KyutaiSpeechToTextModel(nn.Module):
    """The bare decoder."""

    def __init__(self, config: KyutaiSpeechToTextConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = JointEmbedding(config)
        self.layers = nn.ModuleList([DecoderLayer(config) for _ in range(config.num_hidden_layers)])
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary = Rotary(config.head_dim, config.rope_theta)
        # keys and values may be stored narrower than the activations (int8 mode keeps them in
        # bfloat16): attention over the whole ring reads them every step, so bytes are time
        self.kv_dtype: torch.dtype | None = None

    def new_cache(self, batch: int, max_chunk: int = 1, dtype: torch.dtype | None = None) -> RingKVCache:
        p = self.norm.weight
        dtype = dtype or self.kv_dtype or self.embed_tokens.embed_tokens.weight.dtype
        return RingKVCache(layers=self.config.num_hidden_layers, batch=batch, kv_heads=self.config.num_key_value_heads,
                           head_dim=self.config.head_dim, window=self.config.sliding_window, max_chunk=max_chunk,
                           dtype=dtype, device=p.device)

    def step(self, input_ids: torch.Tensor, cache: RingKVCache, active: torch.Tensor | None = None) -> torch.Tensor:
        """The streaming step: input_ids [B, 1, 1 + K] -> normed hidden state [B, 1, H].

        `active` [B] bool: only those rows step (the others' cache is left as it was).
        """
        hidden, _ = self._chunk(self.embed_tokens(input_ids), None, None, cache, want_attn=False, active=active)
        return hidden[-1]

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                cache_position=None, return_dict=True, **unused) -> BaseModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids [B, S, 1 + num_codebooks] or inputs_embeds [B, S, H]")
        if input_ids is not None:
            if input_ids.dim() != 3 or input_ids.shape[-1] != 1 + self.config.num_codebooks:
                raise ValueError(f"input_ids must have shape [batch, seq, {1 + self.config.num_codebooks}] "
                                 f"(text id + {self.config.num_codebooks} audio codes), got {tuple(input_ids.shape)}")
            inputs_embeds = self.embed_tokens(input_ids)
        use_cache = self.config.use_cache if use_cache is None else use_cache
        b, s, _ = inputs_embeds.shape
        cache = past_key_values
        if cache is None and use_cache:
            cache = self.new_cache(b, max_chunk=max(s, 1))
        if cache is not None and attention_mask is not None and not bool(attention_mask.all()):
            raise ValueError("attention_mask with padding is only supported without a cache (use_cache=False)")
        if position_ids is None and cache is None:
            start = 0 if cache_position is None else int(cache_position[0])
            position_ids = torch.arange(start, start + s, device=inputs_embeds.device)[None].expand(b, s)
        # a cache takes chunks up to the size it was made for: longer sequences go in piecewise
        chunk = cache.max_chunk if cache is not None else max(s, 1)
        parts = [self._chunk(inputs_embeds[:, lo:lo + chunk],
                             None if position_ids is None else position_ids[:, lo:lo + chunk],
                             attention_mask, cache, bool(output_attentions))
                 for lo in range(0, s, chunk)]
        hidden = tuple(torch.cat(h, dim=1) for h in zip(*(p[0] for p in parts)))
        attentions = tuple(torch.cat(a, dim=2) for a in zip(*(p[1] for p in parts))) if output_attentions else None
        return BaseModelOutputWithPast(hidden[-1], cache if use_cache else None,
                                       hidden if output_hidden_states else None, attentions)

    def _chunk(self, x, positions, attention_mask, cache, want_attn, active=None):
        """Run every layer over one chunk [B, n, H]; returns (hidden states per layer, attentions)."""
        slots = None
        if cache is not None:
            slots, ring_positions, mask = cache.advance(x.shape[1], active)
            positions = ring_positions if positions is None else positions
        else:
            mask = sliding_causal_mask(positions, self.config.sliding_window)
            if attention_mask is not None:
                mask = mask & attention_mask.bool()[:, None, None, :]
        cos, sin = self.rotary.cos_sin(positions, x.dtype)
        hidden, attns = [x], []
        for i, layer in enumerate(self.layers):
            x, weights = layer(x, cos, sin, mask, cache, i, slots, return_weights=want_attn)
            hidden.append(x)
            attns.append(weights)
        hidden[-1] = self.norm(x)  # as in transformers, the last entry is the normed output
        return hidden, attns


class KyutaiSpeechToTextForConditionalGeneration(nn.Module):
    """Decoder + text head + Mimi codec: the documented entry point."""

    def __init__(self, config: KyutaiSpeechToTextConfig):
        super().__init__()
        self.config = config
        self.model = KyutaiSpeechToTextModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.codec_model = MimiEncoder(config.codec_config)

    @property
    def device(self) -> torch.device:
        return self.model.norm.weight.device

    @property
    def dtype(self) -> torch.dtype:
        """The decoder's activation dtype (its weights may be int8)."""
        return self.model.embed_tokens.embed_tokens.weight.dtype

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, *, device_map: Any = None, torch_dtype: Any = None,
                        dtype: Any = None, **kwargs) -> "KyutaiSpeechToTextForConditionalGeneration":
        """Load a -trfs checkpoint from a local directory or a hub repo id (see core.checkpoint)."""
        from .checkpoint import load_model

        return load_model(cls, source, device_map=device_map, dtype=dtype if dtype is not None else torch_dtype, **kwargs)

    def step_logits(self, input_ids: torch.Tensor, cache: RingKVCache,
                    active: torch.Tensor | None = None) -> torch.Tensor:
        """One streaming decoder step: [B, 1, 1 + K] -> text logits [B, V] (float32); see `model.step`."""
        return self.lm_head(self.model.step(input_ids, cache, active))[:, -1].float()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, cache_position=None, logits_to_keep=0, return_dict=True,
                **unused) -> CausalLMOutputWithPast:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=past_key_values, inputs_embeds=inputs_embeds, use_cache=use_cache,
                         output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                         cache_position=cache_position)
        hidden = out.last_hidden_state
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        logits = self.lm_head(hidden[:, keep, :])
        loss = None
        if labels is not None:
            # causal LM loss: position t predicts label t + 1; -100 is ignored
            shifted = F.pad(labels, (0, 1), value=-100)[..., 1:].to(logits.device)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=-100)
        return CausalLMOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)

    @torch.inference_mode()
    def generate(self, input_values: torch.Tensor | None = None, padding_mask: torch.Tensor | None = None,
                 max_new_tokens: int | None = None, **unused) -> torch.Tensor:
        """Greedy transcription of padded clips [B, 1, L] (as the processor returns them) -> ids [B, 1 + N].

        Like transformers, every row gets N = L // frame_size steps (fewer if max_new_tokens says
        so); `padding_mask` is accepted and, as there, not needed: a padded row just hears silence.
        """
        from .generation import generate

        if input_values is None:
            raise ValueError("generate() needs input_values [batch, 1, samples] from the processor")
        return generate(self, input_values, max_new_tokens=max_new_tokens)
