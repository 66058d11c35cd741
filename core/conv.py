"""Causal 1-D convolution that streams: each call sees only new samples plus a left history.

For kernel k, stride s and dilation d the conv needs p = (k-1)d + 1 - s samples of left context.
Offline, that context is p zeros (or copies of the first sample in "replicate" mode); streaming, it
is the last p input samples of the previous call, kept in a preallocated history buffer. With inputs
whose length is a multiple of the stride, both give the same outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import few_row_linear


class CausalConv1d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, dilation: int = 1,
                 bias: bool = True, pad_mode: str = "constant"):
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, stride=stride, dilation=dilation, bias=bias)
        self.in_channels, self.stride = in_ch, stride
        self.history_len = (kernel - 1) * dilation + 1 - stride
        self.pad_mode = pad_mode
        self.state_index = -1  # slot in CodecState.conv_history, set when the codec is built
        # A matmul over unfolded windows beats oneDNN's conv for the wide convs (256 channels in and
        # up, strided, and the 1024-channel one) and loses for the narrow ones, where unfolding
        # copies twice the input: 64 -> 128 channels over a file's 32 frames took 47 ms unfolded
        # against 19 ms as a conv (2 cores, AMD Zen 3).
        self.as_matmul = dilation == 1 and ((stride > 1 and in_ch >= 256) or in_ch >= 1024)
        self.row_kernel = False  # few_row_linear's `kernel` (MimiEncoder.use_kernels)

    def new_history(self, batch: int, device, dtype) -> torch.Tensor:
        return torch.zeros(batch, self.in_channels, self.history_len, device=device, dtype=dtype)

    def step(self, x: torch.Tensor, history: torch.Tensor, fresh: torch.Tensor | None,
             active: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, C_in, T] (T a multiple of the stride) -> [B, C_out, T / stride]; updates `history`.

        `active` [B] bool: only those rows' histories move on (None = all). Selection is by
        torch.where, never by reading the masks on the host, so the step has fixed shapes and no sync.
        """
        p = self.history_len
        if p == 0:
            return self._run(x)
        left = history
        if self.pad_mode == "replicate" and fresh is not None:
            # a stream's first call: its left context is its first sample repeated, not zeros
            left = torch.where(fresh[:, None, None], x[:, :, :1].expand(-1, -1, p), history)
        inp = torch.cat((left, x), dim=-1)  # [B, C_in, p + T]
        tail = inp[..., -p:]
        history.copy_(tail if active is None else torch.where(active[:, None, None], tail, history))
        return self._run(inp)

    def _run(self, inp: torch.Tensor) -> torch.Tensor:
        if not self.as_matmul:
            return self.conv(inp)
        w = self.conv.weight  # [C_out, C_in, k]
        b, c_in, _ = inp.shape
        k, s = w.shape[-1], self.stride
        cols = inp.unfold(2, k, s).transpose(1, 2).reshape(-1, c_in * k)  # [B * T_out, C_in * k]
        # a live frame gives the last convs 1 or 2 output steps: the few-row form reads W fastest
        out = few_row_linear(cols, w.reshape(w.shape[0], -1), self.conv.bias, self.row_kernel)  # [B * T_out, C_out]
        return out.view(b, -1, w.shape[0]).transpose(1, 2)  # [B, C_out, T_out]
