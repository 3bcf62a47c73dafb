"""Mega layers for the reference (Ma et al. 2022, "Mega: Moving Average Equipped Gated Attention").

Our own fp32 code from the paper's equations (docs/architecture.md section 1.8). A `mega` layer
keeps the parallel block's one norm and its elephant MLP; Mega's gated attention sub-layer
(its damped EMA included) takes the attention branch's place:

    h = norm_in(x)
    y = x + u * (o - x) + mlp(h)          (Mega's out = x + u * (o - x), whose x-term is the residual)

with, per position (D dim_model, N ema_dim, Z mega_z_dim, E mega_h_dim):

    EMA      s_t = (1 - p * a) * s_{t-1} + p * beta * h_t     p = sigmoid(delta), a = sigmoid(alpha)
             e_t = sum_n (gamma / sqrt(N)) * s_t               state s: [B, D, N], carried across chunks
             m   = silu(e + omega * h)                          [B, T, D]
    gates    v = silu(v_proj(h))                                [B, T, E]
             u, zr, hx = mx_proj(m) split [D, Z + E, D];  u = sigmoid(u);  z, r = silu(zr) split [Z, E]
             q = z * qk_gamma[0] + qk_beta[0];  k = z * qk_gamma[1] + qk_beta[1]      [B, T, Z]
    attention   one head over [past ; now] keys (XL memory with same-layer source, else the chunk),
             rotary positions on the first dim_head features of q and k, scale 1 / sqrt(Z), causal
             a = softmax(q k^T / sqrt(Z) + mask) [past_v ; v]                      [B, T, E]
    output   o = silu(hx + h_proj(a * r))                       [B, T, D]

`ema_sequential` runs the recurrence one position at a time (what the model uses);
`ema_by_kernel` computes the same outputs from the paper's convolution kernel
K[d, j] = sum_n eta * p * beta * q^j (plus the decayed initial state) for the check.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from rotary_embedding_torch import RotaryEmbedding


class DampedEMA(nn.Module):
    """The multi-dimensional damped EMA: D channels, each expanded to N dimensions."""

    def __init__(self, dim: int, ndim: int):
        super().__init__()
        self.ndim = ndim
        sign = torch.tensor([1.0 if n % 2 == 0 else -1.0 for n in range(ndim)])
        self.delta = nn.Parameter(torch.randn(dim, ndim) * 0.2)
        self.alpha = nn.Parameter(torch.randn(dim, ndim) * 0.2)
        self.beta = nn.Parameter(torch.randn(dim, ndim) * 0.02 + sign)
        self.gamma = nn.Parameter(torch.randn(dim, ndim))
        self.omega = nn.Parameter(torch.randn(dim))

    def coefficients(self):
        """(decay q [D, N], drive p * beta [D, N], projection eta [D, N])."""
        p = torch.sigmoid(self.delta)
        decay = 1.0 - p * torch.sigmoid(self.alpha)
        return decay, p * self.beta, self.gamma / math.sqrt(self.ndim)

    def ema_sequential(self, h: torch.Tensor, state: Optional[torch.Tensor]):
        """h [B, T, D]; state [B, D, N] or None (zeros). Returns (e [B, T, D], last state [B, D, N])."""
        decay, drive, eta = self.coefficients()
        s = h.new_zeros(h.shape[0], h.shape[2], self.ndim) if state is None else state
        out = []
        for t in range(h.shape[1]):
            s = decay * s + drive * h[:, t, :, None]
            out.append((s * eta).sum(-1))
        return torch.stack(out, dim=1), s

    def ema_by_kernel(self, h: torch.Tensor, state: Optional[torch.Tensor]) -> torch.Tensor:
        """The same e [B, T, D] as a causal convolution with the EMA kernel (the paper's form)."""
        decay, drive, eta = self.coefficients()
        t = h.shape[1]
        powers = decay[None] ** torch.arange(t + 1, dtype=h.dtype)[:, None, None]  # [T+1, D, N]
        kernel = (eta * drive * powers[:t]).sum(-1)  # [T, D]: weight of h_{t-j} in e_t
        e = torch.zeros_like(h)
        for i in range(t):
            e[:, i] = (h[:, : i + 1].flip(1) * kernel[: i + 1]).sum(1)
        if state is not None:
            e = e + torch.einsum("bdn,tdn->btd", state, eta * powers[1:])
        return e

    def forward(self, h: torch.Tensor, state: Optional[torch.Tensor]):
        e, last = self.ema_sequential(h, state)
        return F.silu(e + h * self.omega), last


class MegaAttention(nn.Module):
    """Mega's gated attention sub-layer with its EMA; returns its branch u * (o - x) and the memory."""

    def __init__(self, c):
        super().__init__()
        d, z, e = c.dim_model, c.mega_z_dim, c.mega_h_dim
        self.c = c
        self.z, self.e = z, e
        self.ema = DampedEMA(d, c.ema_dim)
        self.v_proj = nn.Linear(d, e)
        self.mx_proj = nn.Linear(d, 2 * d + z + e)
        self.h_proj = nn.Linear(e, d)
        self.qk_gamma = nn.Parameter(torch.randn(2, z) * 0.02 + 1.0)
        self.qk_beta = nn.Parameter(torch.zeros(2, z))
        self.rot = RotaryEmbedding(c.dim_head, theta=c.rope_theta, use_xpos=False)

    def forward(self, x, h, past, start: int, ema_state: Optional[torch.Tensor]):
        from baka_reference import LayerMemory, rotary_offsets  # the reference's own memory type

        d = x.shape[-1]
        m, ema_out = self.ema(h, ema_state)
        v = F.silu(self.v_proj(h))  # [B, T, E]
        u, zr, hx = self.mx_proj(m).split([d, self.z + self.e, d], dim=-1)
        u = torch.sigmoid(u)
        zq, r = F.silu(zr).split([self.z, self.e], dim=-1)
        q = zq * self.qk_gamma[0] + self.qk_beta[0]  # [B, T, Z]
        k = zq * self.qk_gamma[1] + self.qk_beta[1]
        q, k, v = q[:, None], k[:, None], v[:, None]  # one head: [B, 1, T, *]
        mine = LayerMemory(k=k, v=v, start=start, ema=ema_out)
        past_length = 0
        if past is not None:
            past_length = past.k.shape[-2]
            k = torch.cat((past.k, k), dim=-2)
            v = torch.cat((past.v, v), dim=-2)
        query_offset, key_offset = rotary_offsets(self.c.position_policy, past_length, start)
        q = self.rot.rotate_queries_or_keys(q, -2, offset=query_offset)
        k = self.rot.rotate_queries_or_keys(k, -2, offset=key_offset)
        t = q.shape[-2]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.z)  # [B, 1, T, P+T]
        allowed = torch.ones(t, past_length + t, dtype=torch.bool).tril(diagonal=past_length)
        scores = scores.masked_fill(~allowed, float("-inf"))
        a = (scores.softmax(dim=-1) @ v)[:, 0]  # [B, T, E]
        o = F.silu(hx + self.h_proj(a * r))  # [B, T, D]
        return u * (o - x), mine


def check_config(c) -> None:
    """The reference's limits for Mega layers (the TypeScript config refuses the same)."""
    if "mega" not in c.layer_kinds:
        return
    assert c.ema_dim >= 1 and c.mega_z_dim >= c.dim_head and c.mega_h_dim >= 1
    assert c.memory == "none" or c.memory_source == "same-layer", "a Mega layer's keys are [1, Z] wide"
    assert c.rotary_precision == "float32" and not c.n_pauses and not c.n_rmt_tokens
    assert not c.mamba_each_nth_layer and c.qk_norm == "none" and not c.split_norm
