"""The Mimi codec's encoder, streaming: 1920 samples in, one frame of codes out.

SEANet (causal convs, strides 4·5·6·8 -> 25 Hz) -> 8-layer transformer over a ring cache ->
stride-2 conv to 12.5 Hz -> split residual vector quantizer. Only the encoder half exists here: the
decoder half of the checkpoint is never needed to transcribe and is not even read from disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import Attention
from .codebook_search import SearchTable, nearest_centroids, wanted
from .config import MimiConfig
from .conv import CausalConv1d
from .kv_cache import RingKVCache, stream_mask
from .layers import FewRowLinear, GeluMLP, LayerScale, Rotary


class ResBlock(nn.Module):
    """x + conv_k1(elu(conv_k3(elu(x)))); `block` keeps the ELUs so indices match the checkpoint."""

    def __init__(self, cfg: MimiConfig, dim: int, dilation: int):
        super().__init__()
        hidden = dim // cfg.compress
        self.block = nn.ModuleList([
            nn.ELU(), CausalConv1d(dim, hidden, cfg.residual_kernel_size, dilation=dilation, pad_mode=cfg.pad_mode),
            nn.ELU(), CausalConv1d(hidden, dim, 1, pad_mode=cfg.pad_mode),
        ])
        self.shortcut = CausalConv1d(dim, dim, 1, pad_mode=cfg.pad_mode) if cfg.use_conv_shortcut else None

    def step(self, x, state: "CodecState", active=None):
        h = x
        for layer in self.block:
            if isinstance(layer, CausalConv1d):
                h = layer.step(h, state.conv_history[layer.state_index], state.fresh, active)
            else:
                h = layer(h)
        skip = x
        if self.shortcut is not None:
            skip = self.shortcut.step(x, state.conv_history[self.shortcut.state_index], state.fresh, active)
        return skip + h


class SeanetEncoder(nn.Module):
    def __init__(self, cfg: MimiConfig):
        super().__init__()
        layers: list[nn.Module] = [CausalConv1d(1, cfg.num_filters, cfg.kernel_size, pad_mode=cfg.pad_mode)]
        ch = cfg.num_filters
        for ratio in reversed(cfg.upsampling_ratios):
            layers += [ResBlock(cfg, ch, d) for d in cfg.dilations]
            layers += [nn.ELU(), CausalConv1d(ch, ch * 2, ratio * 2, stride=ratio, pad_mode=cfg.pad_mode)]
            ch *= 2
        layers += [nn.ELU(), CausalConv1d(ch, cfg.hidden_size, cfg.last_kernel_size, pad_mode=cfg.pad_mode)]
        self.layers = nn.ModuleList(layers)

    def step(self, x, state: "CodecState", active=None):
        for layer in self.layers:
            if isinstance(layer, CausalConv1d):
                x = layer.step(x, state.conv_history[layer.state_index], state.fresh, active)
            elif isinstance(layer, ResBlock):
                x = layer.step(x, state, active)
            else:
                x = layer(x)
        return x


class CodecTransformerLayer(nn.Module):
    def __init__(self, cfg: MimiConfig):
        super().__init__()
        d = cfg.hidden_size
        self.input_layernorm = nn.LayerNorm(d, eps=cfg.norm_eps)
        # the codec steps 2 rows per live frame: its linears take the few-row form
        self.self_attn = Attention(d, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, FewRowLinear)
        self.self_attn_layer_scale = LayerScale(d)
        self.post_attention_layernorm = nn.LayerNorm(d, eps=cfg.norm_eps)
        self.mlp = GeluMLP(d, cfg.intermediate_size)
        self.mlp_layer_scale = LayerScale(d)

    def forward(self, x, cos, sin, mask, cache, layer, slots):
        attn, _ = self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, layer, slots)
        x = x + self.self_attn_layer_scale(attn)
        return x + self.mlp_layer_scale(self.mlp(self.post_attention_layernorm(x)))


class CodecTransformer(nn.Module):
    def __init__(self, cfg: MimiConfig):
        super().__init__()
        self.layers = nn.ModuleList([CodecTransformerLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.rotary = Rotary(cfg.head_dim, cfg.rope_theta)

    def step(self, x, cache: RingKVCache, active=None):
        """x [B, T, D] at 25 Hz -> [B, T, D], attending over the stream's last `sliding_window` steps."""
        slots, positions, mask = cache.advance(x.shape[1], active)
        cos, sin = self.rotary.cos_sin(positions, x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, cache, i, slots)
        return x


class Codebook(nn.Module):
    """Centroids are stored as running sums and counts; we divide once after loading.

    Nearest-centroid search does what `torch.cdist` does for large inputs (one matmul of augmented
    vectors: [-2x, |x|^2, 1] . [c, 1, |c|^2], clamped, square-rooted), so codes equal the
    reference's, but the centroid half is computed once instead of every frame. That half is kept
    transposed and contiguous ([dim + 2, N]): a live frame searches with one row, and a row times a
    contiguous matrix is the form MKL reads fastest (on AVX2, 2 MB in 157 instead of 353 us; 32
    searches a frame); from 32 rows up the product is bit for bit the same either way.
    With `search_table()` built, a search of a few rows goes to Surtitle's kernel instead, which
    reads an int8 copy of the book and still finds the nearest centroid (core.codebook_search).
    """

    def __init__(self, cfg: MimiConfig):
        super().__init__()
        self.register_buffer("embed_sum", torch.zeros(cfg.codebook_size, cfg.codebook_dim))
        self.register_buffer("cluster_usage", torch.ones(cfg.codebook_size))
        self.centroids: torch.Tensor | None = None
        self._augmented_t: torch.Tensor | None = None
        self.search: SearchTable | None = None

    def refresh(self) -> None:
        c = self.embed_sum.float() / self.cluster_usage.float().clamp(min=1e-5)[:, None]
        norm = c.pow(2).sum(-1, keepdim=True)
        table_t = torch.cat([c, torch.ones_like(norm), norm], dim=-1).t().contiguous()  # [dim + 2, N]
        self.centroids = table_t[:-2].t()  # a view [N, dim]: the centroids are stored once (67 MB for 32 books)
        self._augmented_t = table_t

    def _apply(self, fn, recurse=True):
        # .to(device) / .cuda() move the buffers; the tables derived from them must follow
        super()._apply(fn, recurse)
        if self._augmented_t is not None:
            self.refresh()
        if self.search is not None:
            self.search = None
            self.search_table()
        return self

    def search_table(self) -> None:
        """Build the int8 copy the kernel searches (CPU only; 0.5 MB per book of 2048 x 256)."""
        if self._augmented_t is None:
            self.refresh()
        if self.search is None and self.embed_sum.device.type == "cpu":
            self.search = SearchTable.build(self.centroids)

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """x [M, dim] -> index of the nearest centroid [M] (Euclidean, ties to the lowest index)."""
        if self._augmented_t is None:
            self.refresh()
        x = x.float()
        if self.search is not None and wanted(x.shape[0]):
            t = self.search
            return nearest_centroids(x.contiguous(), t.values, t.scales, t.l1, t.norms, self.centroids)
        norm = x.pow(2).sum(-1, keepdim=True)
        augmented = torch.cat([x.mul(-2), norm, torch.ones_like(norm)], dim=-1)  # [M, dim + 2]
        dist = torch.mm(augmented, self._augmented_t).clamp_min_(0).sqrt_()  # [M, N]
        return dist.argmin(dim=-1)


class _CodebookHolder(nn.Module):
    """Keeps the checkpoint's `layers.{i}.codebook.*` key names."""

    def __init__(self, cfg: MimiConfig):
        super().__init__()
        self.codebook = Codebook(cfg)


class ResidualVQ(nn.Module):
    def __init__(self, cfg: MimiConfig, n: int):
        super().__init__()
        self.input_proj = nn.Conv1d(cfg.hidden_size, cfg.codebook_dim, 1, bias=False)
        self.layers = nn.ModuleList([_CodebookHolder(cfg) for _ in range(n)])

    def encode(self, latent: torch.Tensor, n: int) -> list[torch.Tensor]:
        """latent [B, D, T] -> n code tensors [B * T]; each level quantizes what the previous left over."""
        residual = self.input_proj(latent).transpose(1, 2).reshape(-1, self.input_proj.out_channels)  # [B*T, dim]
        codes = []
        for holder in self.layers[:n]:
            book = holder.codebook
            idx = book.nearest(residual)
            residual = residual - book.centroids[idx]
            codes.append(idx)
        return codes


class SplitRVQ(nn.Module):
    """Semantic codebook(s) and acoustic codebooks quantize the same latent with their own projections."""

    def __init__(self, cfg: MimiConfig):
        super().__init__()
        self.n_semantic = cfg.num_semantic_quantizers
        self.semantic_residual_vector_quantizer = ResidualVQ(cfg, cfg.num_semantic_quantizers)
        self.acoustic_residual_vector_quantizer = ResidualVQ(cfg, cfg.num_quantizers - cfg.num_semantic_quantizers)

    def encode(self, latent: torch.Tensor, n: int) -> torch.Tensor:
        """latent [B, D, T] -> codes [B, T, n], semantic first."""
        codes = self.semantic_residual_vector_quantizer.encode(latent, min(n, self.n_semantic))
        if n > self.n_semantic:
            codes += self.acoustic_residual_vector_quantizer.encode(latent, n - self.n_semantic)
        return torch.stack(codes, dim=1).view(latent.shape[0], latent.shape[2], n)

    def refresh(self) -> None:
        for module in self.modules():
            if isinstance(module, Codebook):
                module.refresh()

    def search_tables(self) -> None:
        for module in self.modules():
            if isinstance(module, Codebook):
                module.search_table()


@dataclass
class CodecState:
    """Everything the codec remembers between frames; sized once, reset in place."""

    conv_history: list[torch.Tensor]
    kv: RingKVCache
    fresh: torch.Tensor  # [B] bool: the stream has not been fed yet (replicate padding needs its first sample)

    def reset(self, streams: torch.Tensor | None = None) -> None:
        if streams is None:
            for h in self.conv_history:
                h.zero_()
            self.kv.reset()
            self.fresh.fill_(True)
        else:  # in place and without a host sync: a captured CUDA graph keeps reading these tensors
            mask = stream_mask(streams, self.fresh.shape[0], self.fresh.device)
            for h in self.conv_history:
                h.masked_fill_(mask[:, None, None], 0)
            self.kv.reset(mask)
            self.fresh.logical_or_(mask)


class MimiEncoder(nn.Module):
    """Named `codec_model` in the checkpoint; keeps the flat Mimi key layout of the hub files.

    Frames can be encoded one at a time (live) or up to `max_frames` per call (files, or a live
    stream catching up): causality makes both give the same codes, and a call over many frames
    reads the weights once for all of them.
    """

    max_frames = 32  # frames per encode call; sizes the transformer's ring cache

    def __init__(self, cfg: MimiConfig):
        super().__init__()
        self.config = cfg
        self.encoder = SeanetEncoder(cfg)
        self.encoder_transformer = CodecTransformer(cfg)
        self.downsample = CausalConv1d(cfg.hidden_size, cfg.hidden_size, 2 * cfg.latent_stride,
                                       stride=cfg.latent_stride, bias=False, pad_mode="replicate")
        self.quantizer = SplitRVQ(cfg)
        self._convs = [m for m in self.modules() if isinstance(m, CausalConv1d)]
        for i, conv in enumerate(self._convs):
            conv.state_index = i

    def prepare(self) -> None:
        """Once the weights are in: the codebooks' search tables, and each layer's q/k/v stacked."""
        self.quantizer.refresh()
        for layer in self.encoder_transformer.layers:
            layer.self_attn.fuse_qkv()

    def use_kernels(self) -> None:
        """From now on a live frame's work goes to Surtitle's kernels once they are loaded: its
        codebook searches read int8 copies of the books (core.codebook_search: 17 instead of 67 MB
        a frame, same codes) and its float32 products of a few rows stream their weights through
        core/row_products.cpp (core.layers.few_row_linear). The compiled fast steps call this."""
        self.quantizer.search_tables()
        for module in self.modules():
            if isinstance(module, (FewRowLinear, Attention, CausalConv1d)):
                module.row_kernel = True

    def frames_per_call(self, batch: int) -> int:
        """How many frames of a `batch`-stream input one call should take.

        About max_frames stream-frames in all: the first layers' activations (64 channels at 24 kHz,
        0.5 MB per stream-frame) then stay within the caches, while the weights are still read once
        for many frames. At batch 4 on the 2-core test machine, 8 frames per call took 3.9 ms per
        stream-frame against 5.4 ms with 32.
        """
        return max(1, self.max_frames // batch)

    def new_state(self, batch: int) -> CodecState:
        p = next(self.parameters())
        return CodecState(
            conv_history=[c.new_history(batch, p.device, p.dtype) for c in self._convs],
            kv=RingKVCache(layers=self.config.num_hidden_layers, batch=batch,
                           kv_heads=self.config.num_key_value_heads, head_dim=self.config.head_dim,
                           window=self.config.sliding_window, max_chunk=self.config.latent_stride * self.max_frames,
                           dtype=p.dtype, device=p.device),
            fresh=torch.ones(batch, dtype=torch.bool, device=p.device),
        )

    def encode_frames(self, audio: torch.Tensor, state: CodecState, num_codebooks: int,
                      active: torch.Tensor | None = None) -> torch.Tensor:
        """audio [B, n * frame_size] float32, 1 <= n <= max_frames -> codes [B, n, num_codebooks].

        With `active` [B] bool, only those rows hear their audio: the others' state is left as it
        was and their codes are meaningless (every row still runs, so shapes never change).
        """
        assert audio.shape[-1] % self.config.frame_size == 0, "the codec takes whole frames"
        assert audio.shape[-1] <= self.max_frames * self.config.frame_size, "too many frames for one call"
        x = self.encoder.step(audio[:, None, :], state, active)  # [B, D, 2n] at 25 Hz
        x = self.encoder_transformer.step(x.transpose(1, 2), state.kv, active).transpose(1, 2)  # [B, D, 2n]
        history = state.conv_history[self.downsample.state_index]
        latent = self.downsample.step(x, history, state.fresh, active)  # [B, D, n]
        if active is None:
            state.fresh.fill_(False)
        else:
            state.fresh.logical_and_(~active)
        return self.quantizer.encode(latent, num_codebooks)

    def encode(self, audio: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        """Whole clips [B, L] (L a multiple of frame_size) -> codes [B, K, L / frame_size]."""
        n = num_codebooks or self.config.num_quantizers
        chunk = self.config.frame_size * self.frames_per_call(audio.shape[0])
        state = self.new_state(audio.shape[0])
        codes = [self.encode_frames(audio[:, i:i + chunk], state, n) for i in range(0, audio.shape[-1], chunk)]
        return torch.cat(codes, dim=1).transpose(1, 2)
