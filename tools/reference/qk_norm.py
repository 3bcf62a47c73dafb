"""Norms inside attention (`qk_norm`) and split input norms (`split_norm`) for our PyTorch reference.

Our own code, written from the definitions in docs/architecture.md section 1.7. `baka_reference.py`
calls in here from `Config` (checks, config.json fields) and `Attention` (parameters, the q/k
transformation, the logit scale); `split_norm` itself is three lines there.

qk_norm, applied to q and k per head right after the projection, before rotary and before the
XL cache takes the keys (so the memory holds normalised, unrotated keys):
  none       identity; logits / sqrt(K)
  layernorm  (x - mean) / sqrt(var + 1e-5) * weight + bias
  rmsnorm    x / sqrt(mean(x^2) + 1e-6) * weight
  l2         x / max(|x|_2, 1e-12) per head; logits * s (qk_norm_scale, 0 = sqrt(K); learned per
             head as attn.qk_scale [H] with qk_norm_learned_scale)
  negator    upstream 000_OLD's BakaAttentionQKV: x' = [x ; c - x] per head (2K features, c one
             learned scalar attn.negator per layer), then a LayerNorm (eps 1e-5) over them; rotary
             turns the first K features only; logits / sqrt(2K) (SDPA's scale for width 2K)
qk_norm_scope: statistics over each head's features ('head') or over all heads' at once ('all');
qk_norm_weights: one weight (and bias) vector shared by every head ('shared', [W]) or one per
head ('per-head', [H, W]); W = K, or 2K for the negator. q and k have their own norms
(attn.q_norm.*, attn.k_norm.*).

Shape legend: B batch, H heads, T positions, K dim_head, W normalised width (K or 2K).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

QK_NORMS = ("none", "layernorm", "rmsnorm", "l2", "negator")
QK_FIELDS = {  # field: its default (config.json leaves a field out at its default)
    "qk_norm": "none",
    "qk_norm_scope": "head",
    "qk_norm_weights": "shared",
    "qk_norm_scale": 0.0,
    "qk_norm_learned_scale": False,
    "split_norm": False,
}
LAYER_NORM_EPS = 1e-5
RMS_NORM_EPS = 1e-6
L2_EPS = 1e-12


def check(c) -> None:
    """Config invariants (the TypeScript side names the field in its errors)."""
    assert c.qk_norm in QK_NORMS
    assert c.qk_norm_scope in ("head", "all")
    assert c.qk_norm_weights in ("shared", "per-head")
    assert c.qk_norm_scale >= 0
    if c.qk_norm in ("none", "l2"):
        assert c.qk_norm_scope == "head" and c.qk_norm_weights == "shared"
    if c.qk_norm != "l2":
        assert c.qk_norm_scale == 0 and not c.qk_norm_learned_scale


def trim_json(c, d: dict, upstream_only: bool) -> None:
    """Leaves out the fields at their defaults, so a model without them writes the 003 config."""
    for key, default in QK_FIELDS.items():
        if upstream_only or getattr(c, key) == default:
            d.pop(key, None)


def l2_scale(c) -> float:
    return float(c.qk_norm_scale or math.sqrt(c.dim_head))


class HeadNorm(nn.Module):
    """LayerNorm or RMSNorm over each head's features ('head') or all heads' ('all'), x [B, H, T, W]."""

    def __init__(self, c, width: int, rms: bool):
        super().__init__()
        shape = (width,) if c.qk_norm_weights == "shared" else (c.n_heads, width)
        self.weight = nn.Parameter(torch.ones(shape))
        if not rms:
            self.bias = nn.Parameter(torch.zeros(shape))
        self.rms = rms
        self.dims = (-1,) if c.qk_norm_scope == "head" else (1, 3)
        self.per_head = c.qk_norm_weights == "per-head"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rms:
            y = x * torch.rsqrt(x.pow(2).mean(self.dims, keepdim=True) + RMS_NORM_EPS)
        else:
            centered = x - x.mean(self.dims, keepdim=True)
            y = centered * torch.rsqrt(centered.pow(2).mean(self.dims, keepdim=True) + LAYER_NORM_EPS)
        weight = self.weight[:, None, :] if self.per_head else self.weight  # [H, 1, W] or [W]
        y = y * weight
        if not self.rms:
            y = y + (self.bias[:, None, :] if self.per_head else self.bias)
        return y


def register(attn: nn.Module, c) -> None:
    """Adds the qk_norm parameters to an attention module: attn.negator, attn.q_norm, attn.k_norm, attn.qk_scale."""
    if c.qk_norm == "negator":
        attn.negator = nn.Parameter(torch.tensor(1.0))  # upstream's init
    if c.qk_norm in ("layernorm", "rmsnorm", "negator"):
        width = 2 * c.dim_head if c.qk_norm == "negator" else c.dim_head
        attn.q_norm = HeadNorm(c, width, rms=c.qk_norm == "rmsnorm")
        attn.k_norm = HeadNorm(c, width, rms=c.qk_norm == "rmsnorm")
    if c.qk_norm == "l2" and c.qk_norm_learned_scale:
        attn.qk_scale = nn.Parameter(torch.full((c.n_heads,), l2_scale(c)))


def normalise(attn: nn.Module, c, q: torch.Tensor, k: torch.Tensor):
    """q, k [B, H, T, K] as projected -> normalised [B, H, T, W]."""
    if c.qk_norm == "none":
        return q, k
    if c.qk_norm == "l2":
        unit = lambda x: x / x.norm(dim=-1, keepdim=True).clamp_min(L2_EPS)  # noqa: E731
        return unit(q), unit(k)
    if c.qk_norm == "negator":
        q = torch.cat((q, attn.negator - q), dim=-1)  # [B, H, T, 2K]
        k = torch.cat((k, attn.negator - k), dim=-1)
    return attn.q_norm(q), attn.k_norm(k)


def scale_logits(attn: nn.Module, c, scores: torch.Tensor) -> torch.Tensor:
    """scores = q k^T [B, H, T, S] -> the softmax's input."""
    if c.qk_norm == "l2":
        scale = attn.qk_scale[:, None, None] if c.qk_norm_learned_scale else l2_scale(c)  # [H, 1, 1]
        return scores * scale
    width = 2 * c.dim_head if c.qk_norm == "negator" else c.dim_head
    return scores / math.sqrt(width)
