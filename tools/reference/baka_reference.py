"""Our own PyTorch reference of BakaLLM 003_baka_xl (fp32), used only to generate test fixtures.

Written from the math in docs/architecture.md sections 1.1-1.3 (not copied from upstream). Options
mirror @baka/model's config: memory 'xl' | 'none', memory_source 'previous-layer' | 'same-layer',
position_policy 'reset' | 'absolute', rotary_precision 'float32' | 'bfloat16' (the rotary tables as
rotary-embedding-torch 0.3.x computed them in upstream's `.bfloat16()` model; see
`bf16_rotary_tables`).

Shape legend: B batch, T chunk length, P past (memory) length, D dim_model, A dim_attn,
H heads, K dim_head, F dim_ff, V vocab.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from rotary_embedding_torch import RotaryEmbedding

import mega
import memory_tokens
import qk_norm
from block_recurrent import BlockRecurrence, state_in


@dataclass
class Config:
    dim_model: int = 768
    dim_ff: int = 0
    dim_attn: int = 0
    n_layers: int = 12
    n_heads: int = 12
    n_vocab: int = 50277
    n_ctx: int = 512
    act_fn: str = "elephant"
    # ours (defaults = upstream 003 behaviour)
    memory: str = "xl"
    memory_source: str = "previous-layer"
    position_policy: str = "reset"
    carry_memory: bool = False
    rotary_layout: str = "interleaved"
    # 'bfloat16': positions, frequencies, angles and cos/sin rounded as rotary-embedding-torch 0.3.x
    # did in a `.bfloat16()` model; q/k and the rotation itself stay fp32
    rotary_precision: str = "float32"
    rope_theta: float = 10000.0
    # thin layers (upstream 00x_thin): per-layer kind and per-layer MLP width ([] = all the same)
    layer_kinds: list = field(default_factory=list)
    layer_dim_ff: list = field(default_factory=list)
    # upstream scaled every attention parameter of a thin layer by 1e-4 at init, the rotary
    # frequencies (an untrained parameter) included: a thin layer rotates by angles x 1e-4
    thin_rotary_scale: float = 1e-4
    # pause tokens (upstream 004/005): n_pauses copies of one learned vector per chunk
    n_pauses: int = 0
    is_pause_pos_random: bool = False  # upstream's random layout, drawn from a seeded generator
    pause_seed: int = 0
    norm: str = "layernorm"  # 'layernorm' (eps 1e-5, weight + bias) | 'rmsnorm' (004: T5-style, eps 1e-6)
    # RMT (upstream 005): M write tokens; later chunks read/write the previous chunk's outputs there
    n_rmt_tokens: int = 0
    rmt_mask: str = "causal"  # 'causal' (upstream's flash attention) | 'upstream' (its hand-built mask)
    # Mamba (upstream 007): layer i with i % n == 0 adds y + Mamba(LayerNorm(y)) after its sum; 0 = none
    mamba_each_nth_layer: int = 0
    # Block-Recurrent Transformer (block_recurrent.py): recurrent layers, state size (0 = n_ctx), gate
    recurrent_layers: list = field(default_factory=list)
    n_state_vectors: int = 0
    state_gate: str = "fixed"  # 'fixed' (learned bias) | 'lstm'
    # ours: Mamba layers carry their conv window and scan state from chunk to chunk (and, in the
    # memory a call returns, to the next call); False = upstream 007 (zero state every chunk)
    mamba_carry_state: bool = False
    # Mega layers (layer_kinds "mega", mega.py): EMA dimensions N, shared z width (0: max(dim_head,
    # dim_model // 4)), value width (0: 2 * dim_model)
    ema_dim: int = 16
    mega_z_dim: int = 0
    mega_h_dim: int = 0
    # norms inside attention and split input norms (qk_norm.py; defaults = 003)
    qk_norm: str = "none"
    qk_norm_scope: str = "head"
    qk_norm_weights: str = "shared"
    qk_norm_scale: float = 0.0
    qk_norm_learned_scale: bool = False
    split_norm: bool = False
    # Memory Transformer tokens and persistent memory k/v (memory_tokens.py)
    n_memory_tokens: int = 0
    memory_tokens_every: int = 0
    memory_tokens_in_xl: bool = False
    n_mem_kv: int = 0

    def __post_init__(self):
        self.dim_ff = self.dim_ff or 4 * self.dim_model
        self.dim_attn = self.dim_attn or self.dim_model
        self.layer_kinds = list(self.layer_kinds) or ["standard"] * self.n_layers
        self.layer_dim_ff = list(self.layer_dim_ff) or [self.dim_ff] * self.n_layers
        assert len(self.layer_kinds) == self.n_layers and len(self.layer_dim_ff) == self.n_layers
        assert all(kind in ("standard", "attention-only", "mega") for kind in self.layer_kinds)
        self.mega_z_dim = self.mega_z_dim or max(self.dim_attn // self.n_heads, self.dim_model // 4)
        self.mega_h_dim = self.mega_h_dim or 2 * self.dim_model
        mega.check_config(self)
        assert self.dim_attn % self.n_heads == 0
        assert self.dim_model % self.n_heads == 0
        assert self.memory in ("xl", "none")
        assert self.memory_source in ("previous-layer", "same-layer")
        assert self.position_policy in ("reset", "absolute")
        assert self.rotary_layout == "interleaved"  # rotary-embedding-torch's layout
        assert self.rotary_precision in ("float32", "bfloat16")
        assert self.norm in ("layernorm", "rmsnorm")
        assert self.rmt_mask in ("causal", "upstream")
        assert self.mamba_each_nth_layer >= 0
        assert all(0 <= i < self.n_layers for i in self.recurrent_layers) and self.state_gate in ("fixed", "lstm")
        assert all(self.layer_kinds[i] != "mega" for i in self.recurrent_layers)  # recurrence needs attention
        assert not self.mamba_carry_state or self.mamba_each_nth_layer > 0
        qk_norm.check(self)
        assert self.n_memory_tokens >= 0 and self.memory_tokens_every >= 0 and self.n_mem_kv >= 0
        if self.n_memory_tokens:  # combinations we refuse (as @baka/model's config does)
            assert not (self.n_pauses or self.n_rmt_tokens or self.mamba_each_nth_layer)
        assert not (self.n_mem_kv and self.qk_norm != "none")
        assert not ((self.n_memory_tokens or self.n_mem_kv) and "mega" in self.layer_kinds)
        assert not ((self.n_memory_tokens or self.n_mem_kv) and self.recurrent_layers)

    def has_mamba(self, layer: int) -> bool:
        return self.mamba_each_nth_layer > 0 and layer % self.mamba_each_nth_layer == 0

    @property
    def dim_head(self) -> int:
        return self.dim_attn // self.n_heads

    @property
    def model_type(self) -> str:
        if self.mamba_each_nth_layer:
            return "baka_mamba"
        return "baka_rmt" if self.n_rmt_tokens else "baka_pause" if self.n_pauses else "baka_xl"

    def to_json_dict(self, upstream_only: bool = False) -> dict:
        """003 models write exactly the 003 config; pause/RMT models add upstream's field names."""
        d = asdict(self)
        d["model_type"] = self.model_type
        qk_norm.trim_json(self, d, upstream_only)
        for key in ("n_pauses", "is_pause_pos_random", "pause_seed", "norm", "n_rmt_tokens", "rmt_mask", "mamba_each_nth_layer"):
            d.pop(key)
        for key in ("recurrent_layers", "n_state_vectors", "state_gate"):  # only with recurrent layers
            if not self.recurrent_layers:
                d.pop(key)
        d.pop("mamba_carry_state")
        if self.mamba_each_nth_layer:  # 007's BakaConfig field
            d.update(mamba_each_nth_layer=self.mamba_each_nth_layer)
            if self.mamba_carry_state and not upstream_only:
                d.update(mamba_carry_state=True)
        if self.n_pauses or self.n_rmt_tokens:
            d.update(n_pauses=self.n_pauses, is_pause_pos_random=self.is_pause_pos_random)
        if self.n_rmt_tokens:  # 005's BakaConfig; use_flash_attn=False ran its hand-built mask
            d.update(n_rmt_tokens=self.n_rmt_tokens, n_rmt_margins=0, rmt_solidifier="none",
                     use_flash_attn=self.rmt_mask == "causal")
        if not upstream_only and (self.n_pauses or self.n_rmt_tokens or self.norm != "layernorm"):
            d.update(norm=self.norm, pause_seed=self.pause_seed, rmt_mask=self.rmt_mask)
        for key, default in (("n_memory_tokens", 0), ("memory_tokens_every", 0), ("memory_tokens_in_xl", False), ("n_mem_kv", 0)):
            if upstream_only or getattr(self, key) == default:
                d.pop(key)
        if upstream_only:
            for key in ("memory", "memory_source", "position_policy", "carry_memory", "rotary_layout", "rope_theta"):
                d.pop(key)
        if upstream_only or self.rotary_precision == "float32":
            d.pop("rotary_precision")  # float32 tables write the config as before the field
        if all(kind == "standard" for kind in self.layer_kinds) and all(f == self.dim_ff for f in self.layer_dim_ff):
            d.pop("layer_kinds")  # a uniform model writes the 003 config, without per-layer fields
            d.pop("layer_dim_ff")
            d.pop("thin_rotary_scale")
        if "mega" not in self.layer_kinds:
            for key in ("ema_dim", "mega_z_dim", "mega_h_dim"):
                d.pop(key)
        return d


@dataclass
class LayerMemory:
    """Unrotated keys/values one layer computed for one chunk, and that chunk's absolute start."""

    k: torch.Tensor  # [B, H, T, K]
    v: torch.Tensor  # [B, H, T, K']
    start: int
    write: Optional[torch.Tensor] = None  # RMT: last layer's outputs at the write positions [B, M, D]
    state: Optional[torch.Tensor] = None  # a recurrent layer's state after the chunk [B, S, D]
    # mamba_carry_state: the layer's Mamba state after the chunk, (conv inputs [B, W-1, Di], scan [B, Di, N])
    mamba: Optional[tuple] = None
    ema: Optional[torch.Tensor] = None  # a Mega layer's EMA state after the chunk [B, D, N]

    def detached(self) -> "LayerMemory":
        write = None if self.write is None else self.write.detach()
        state = None if self.state is None else self.state.detach()
        mamba = None if self.mamba is None else tuple(t.detach() for t in self.mamba)
        ema = None if self.ema is None else self.ema.detach()
        return LayerMemory(k=self.k.detach(), v=self.v.detach(), start=self.start, write=write, state=state,
                           mamba=mamba, ema=ema)


def elephant(x: torch.Tensor, d: float = 8.0, a: float = 1.0) -> torch.Tensor:
    return 1.0 / (1.0 + (x / a).abs() ** d)


class RMSNorm(nn.Module):
    """T5-style: x / sqrt(mean(x^2) + eps) * weight, no bias, no mean subtraction (fp32)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return self.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def make_norm(c: Config) -> nn.Module:
    return RMSNorm(c.dim_model) if c.norm == "rmsnorm" else nn.LayerNorm(c.dim_model, eps=1e-5)


def pause_slots(c: Config, n_tokens: int, generator: Optional[torch.Generator]) -> list[int]:
    """Layout of a chunk with pauses: per position the chunk's token index, or -1 for a pause.

    Upstream inserts pauses one after another into the growing sequence at insertion points
    step*i (step = n_ctx // n_pauses, every i < n_pauses with step*i <= the chunk's token count);
    the random layout puts the first at 0 and pause i at a uniform point in 1..n_tokens+i.
    """
    if c.is_pause_pos_random:
        draw = lambda n: int(torch.randint(1, n + 1, (1,), generator=generator).item())  # noqa: E731
        points = [0] + [draw(n_tokens + i) for i in range(1, c.n_pauses)]
    else:
        step = c.n_ctx // c.n_pauses
        points = [step * i for i in range(c.n_pauses) if step * i <= n_tokens]
    slots = list(range(n_tokens))
    for point in points:
        slots.insert(point, -1)
    return slots


class MLP(nn.Module):
    def __init__(self, c: Config, dim_ff: int):
        super().__init__()
        if c.split_norm:  # upstream 00x_split_ln: the MLP's own input norm, registered first
            self.norm_in = make_norm(c)
        self.fc_gate = nn.Linear(c.dim_model, dim_ff, bias=False)
        self.fc_up = nn.Linear(c.dim_model, dim_ff, bias=False)
        self.fc_down = nn.Linear(dim_ff, c.dim_model, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc_down(self.fc_up(h) * elephant(self.fc_gate(h)))


def bf16_rotary_tables(freqs: torch.Tensor, offset: int, length: int, interpolate_factor: float = 1.0):
    """rotary-embedding-torch 0.3.x's tables in a `.bfloat16()` model, every step in bf16.

    Its `freqs` parameter [R/2] was converted to bf16; positions were `arange(T, dtype=bf16) +
    offset` (the Python int converted to bf16 first), divided by the interpolation factor; the
    angles their product; cos/sin computed from the bf16 angles and rounded to bf16.
    Returns positions [T], frequencies [R/2], angles, cos, sin [T, R/2], all bf16.
    """
    frequencies = freqs.detach().to(torch.bfloat16)
    positions = (torch.arange(length, dtype=torch.bfloat16) + offset) / interpolate_factor
    angles = positions.view(length, 1) * frequencies.view(1, -1)
    return positions, frequencies, angles, angles.cos(), angles.sin()


def rotate_with_bf16_tables(freqs: torch.Tensor, x: torch.Tensor, offset: int) -> torch.Tensor:
    """x [..., T, R] (fp32) rotated at positions offset.. with the bf16 tables, in fp32 (features
    beyond R = 2 x len(freqs) pass through)."""
    rotary = 2 * freqs.shape[-1]
    if x.shape[-1] > rotary:
        return torch.cat((rotate_with_bf16_tables(freqs, x[..., :rotary], offset), x[..., rotary:]), dim=-1)
    *_, cos, sin = bf16_rotary_tables(freqs, offset, x.shape[-2])
    cos = cos.float().repeat_interleave(2, dim=-1)  # [T, R], interleaved pairs
    sin = sin.float().repeat_interleave(2, dim=-1)
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    swapped = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).reshape(x.shape)  # (a, b) -> (-b, a)
    return x * cos + swapped * sin


def rotary_offsets(policy: str, past_length: int, absolute_start: int) -> tuple[int, int]:
    """(query offset, key offset) for keys [past ; now] and queries now."""
    if policy == "reset":
        return past_length, 0
    return absolute_start, absolute_start - past_length


class Attention(nn.Module):
    def __init__(self, c: Config, rotary_scale: float = 1.0):
        super().__init__()
        self.c = c
        self.q = nn.Linear(c.dim_model, c.dim_attn, bias=False)
        self.k = nn.Linear(c.dim_model, c.dim_attn, bias=False)
        self.v = nn.Linear(c.dim_model, c.dim_model, bias=False)
        self.o = nn.Linear(c.dim_model, c.dim_model, bias=False)
        self.rot = RotaryEmbedding(c.dim_head, theta=c.rope_theta, use_xpos=False)
        with torch.no_grad():
            self.rot.freqs.mul_(rotary_scale)
        if c.split_norm:  # upstream 00x_split_ln: attention's own input norm
            self.norm_in = make_norm(c)
        qk_norm.register(self, c)
        if c.n_mem_kv:  # persistent memory (memory_tokens.py)
            self.mem_k = nn.Parameter(torch.randn(c.n_heads, c.n_mem_kv, c.dim_head))  # [H, N, K]
            self.mem_v = nn.Parameter(torch.randn(c.n_heads, c.n_mem_kv, c.dim_model // c.n_heads))

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.c.n_heads, -1).transpose(1, 2)  # [B, H, T, K]

    def forward(self, h: torch.Tensor, past: Optional[LayerMemory], start: int, rmt: tuple[int, int] = (0, 0), groups=()):
        """h: normalised input [B, T, D]; rmt: (read, write) memory token counts at the ends of h;
        groups: (start, size) of memory-token groups in h.

        Returns (output [B, T, D], this chunk's memory)."""
        q, k, v = self.heads(self.q(h)), self.heads(self.k(h)), self.heads(self.v(h))
        q, k = qk_norm.normalise(self, self.c, q, k)  # before rotary and the cache
        mine = LayerMemory(k=k, v=v, start=start)
        past_length = 0
        if past is not None:
            past_length = past.k.shape[-2]
            k = torch.cat((past.k, k), dim=-2)  # [B, H, P+T, K]
            v = torch.cat((past.v, v), dim=-2)
        query_offset, key_offset = rotary_offsets(self.c.position_policy, past_length, start)
        if self.c.rotary_precision == "bfloat16":
            q = rotate_with_bf16_tables(self.rot.freqs, q, query_offset)
            k = rotate_with_bf16_tables(self.rot.freqs, k, key_offset)
        else:
            q = self.rot.rotate_queries_or_keys(q, -2, offset=query_offset)
            k = self.rot.rotate_queries_or_keys(k, -2, offset=key_offset)
        t = q.shape[-2]
        # query i (0-based in the chunk) sees every past key and current keys 0..i (this is also
        # flash attention's causal=True, aligned bottom right when there are more keys than queries)
        allowed = torch.ones(t, past_length + t, dtype=torch.bool).tril(diagonal=past_length)
        read, write = rmt
        if self.c.rmt_mask == "upstream" and past is not None:
            # upstream 005's hand-built mask (used only without flash attention): write tokens see
            # every key, read tokens also see each other
            if write:
                allowed[-write:] = True
            if read:
                allowed[:read, past_length : past_length + read] = True
        memory_tokens.open_groups(allowed, past_length, groups)
        if self.c.n_mem_kv:
            k, v, allowed = memory_tokens.with_mem_kv(self, k, v, allowed)
        scores = qk_norm.scale_logits(self, self.c, q @ k.transpose(-1, -2))  # [B, H, T, N+P+T]
        scores = scores.masked_fill(~allowed, float("-inf"))
        y = scores.softmax(dim=-1) @ v  # [B, H, T, K']
        y = y.transpose(1, 2).reshape(h.shape[0], t, -1)  # [B, T, D]
        return self.o(y), mine


class Mamba(nn.Module):
    """A selective state-space block (Mamba, Gu & Dao 2023) on [B, T, D], fp32, from the paper's math.

    Di = expand * D inner channels, N = d_state, R = dt_rank = ceil(D / 16):
      x, z = in_proj(h)                      (bias-free, [B, T, Di] each)
      x = silu(causal depthwise conv of x)  (kernel d_conv, with bias)
      dt, b, c = x_proj(x) split [R, N, N]; dt = softplus(dt_proj(dt))   ([B, T, Di])
      s_t = exp(dt_t * A) * s_{t-1} + dt_t * x_t * b_t,  A = -exp(A_log)   (state [B, Di, N], s_0 = 0)
      y_t = <s_t, c_t> + D * x_t;  out = out_proj(y * silu(z))
    Parameters are registered in upstream's state_dict order (module's own first: A_log, D).
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2):
        super().__init__()
        inner, rank = expand * d_model, math.ceil(d_model / 16)
        self.d_state, self.dt_rank = d_state, rank
        # S4D-real init: row d of A is -(1..N)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))
        self.in_proj = nn.Linear(d_model, 2 * inner, bias=False)
        self.conv1d = nn.Conv1d(inner, inner, d_conv, groups=inner, padding=d_conv - 1, bias=True)
        self.x_proj = nn.Linear(inner, rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(rank, inner, bias=True)
        self.out_proj = nn.Linear(inner, d_model, bias=False)
        with torch.no_grad():
            # dt_proj: weight U(+-R^-1/2); bias = softplus^-1(dt), dt log-uniform in [1e-3, 1e-1], >= 1e-4
            self.dt_proj.weight.uniform_(-(rank**-0.5), rank**-0.5)
            dt = torch.exp(torch.rand(inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, h: torch.Tensor, state: Optional[tuple] = None):
        """h [B, T, D] -> (out [B, T, D], state after the last position).

        state: None (zero conv window and scan state, upstream) or a previous call's
        (conv inputs [B, W-1, Di], scan state [B, Di, N]), which the conv and the scan continue from.
        """
        t = h.shape[1]
        x, z = self.in_proj(h).chunk(2, dim=-1)  # [B, T, Di]
        w = self.conv1d.kernel_size[0]
        if state is None:
            before = x.new_zeros(x.shape[0], w - 1, x.shape[2])
            s = x.new_zeros(x.shape[0], x.shape[2], self.d_state)  # [B, Di, N]
        else:
            before, s = state
        padded = torch.cat((before, x), dim=1)  # [B, W-1+T, Di]
        # the depthwise causal conv over [previous inputs ; x], written out (no padding)
        conv = F.conv1d(padded.transpose(1, 2), self.conv1d.weight, self.conv1d.bias, groups=x.shape[2])
        x = F.silu(conv.transpose(1, 2))  # [B, T, Di]
        dt, b, c = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt))  # [B, T, Di]
        a = -torch.exp(self.A_log)  # [Di, N]
        ys = []
        for i in range(t):  # the recurrence, one position at a time
            s = torch.exp(dt[:, i, :, None] * a) * s + (dt[:, i] * x[:, i])[..., None] * b[:, i, None, :]
            ys.append((s * c[:, i, None, :]).sum(-1))
        y = torch.stack(ys, dim=1) + x * self.D  # [B, T, Di]
        return self.out_proj(y * F.silu(z)), (padded[:, t:], s)


class Layer(nn.Module):
    """'standard': y = x + attn(LN(x)) + mlp(LN(x)); 'attention-only' (a thin layer): no MLP.

    With Mamba (upstream 007, layers i % mamba_each_nth_layer == 0): y = y + Mamba(LayerNorm(y))
    over the whole chunk (pauses and RMT positions included); from a zero state every chunk (upstream)
    or, with mamba_carry_state, from the state the previous chunk ended with.
    """

    def __init__(self, c: Config, index: int = 0):
        super().__init__()
        thin = c.layer_kinds[index] == "attention-only"
        self.norm_in = None if c.split_norm else make_norm(c)
        if c.layer_kinds[index] == "mega":  # Mega's gated attention takes the attention branch's place
            self.mega = mega.MegaAttention(c)
        else:
            self.attn = Attention(c, rotary_scale=c.thin_rotary_scale if thin else 1.0)
        self.mlp = None if thin else MLP(c, c.layer_dim_ff[index])
        self.recurrent = BlockRecurrence(c, make_norm) if index in c.recurrent_layers else None
        if c.has_mamba(index):
            self.mamba = Mamba(c.dim_model)
            self.norm_mamba = nn.LayerNorm(c.dim_model, eps=1e-5)  # a LayerNorm whatever `norm` is
        else:
            self.mamba = None
        self.carry_mamba = c.mamba_carry_state

    def forward(self, x, past, start, rmt=(0, 0), mamba_state=None, ema=None, state=None, groups=()):
        split = self.norm_in is None  # split_norm: each branch normalises x with its own norm
        h = None if split else self.norm_in(x)
        if hasattr(self, "mega"):  # (no split_norm with Mega layers)
            attn, mine = self.mega(x, h, past, start, ema)
        else:
            h_attn = self.attn.norm_in(x) if split else h
            attn, mine = self.attn(h_attn, past, start, rmt, groups)
        y = x + attn
        if self.recurrent is not None:  # cross term over the previous state; the next state
            keys = mine.k if past is None else torch.cat((past.k, mine.k), dim=-2)
            values = mine.v if past is None else torch.cat((past.v, mine.v), dim=-2)
            cross, mine.state = self.recurrent(h_attn, state, keys, values)
            y = y + cross
        if self.mlp is not None:
            y = y + self.mlp(self.mlp.norm_in(x) if split else h)
        if self.mamba is not None:
            out, state = self.mamba(self.norm_mamba(y), mamba_state)
            y = y + out
            if self.carry_mamba:
                mine.mamba = state
        return y, mine


class Net(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.layers = nn.ModuleList([Layer(c, i) for i in range(c.n_layers)])
        if c.n_pauses:
            self.pause = nn.Module()
            self.pause.pause_emb = nn.Parameter(torch.randn(c.dim_model))  # [D]
            self.pause_generator = torch.Generator().manual_seed(c.pause_seed)
        if c.n_rmt_tokens:
            self.rmt = nn.Module()
            self.rmt.rmt_tokens = nn.Parameter(torch.randn(c.n_rmt_tokens, c.dim_model))  # [M, D]
        if c.n_memory_tokens:
            self.memtok = nn.Module()
            self.memtok.tokens = nn.Parameter(torch.randn(c.n_memory_tokens, c.dim_model))  # [M, D]

    def forward(self, x: torch.Tensor, memory: Optional[list[LayerMemory]] = None):
        """x: [B, S, D]; memory: per layer, from the previous chunk (or window). Returns (y, memory).

        A chunk runs as [read ; tokens with pauses ; write]: RMT's read and write blocks are both m,
        the last layer's outputs at the previous chunk's write positions (chunk 1 of a call without
        memory: no read block, write = rmt_tokens). Positions (rotary, `start`) count every slot.
        """
        c = self.c
        b = x.shape[0]
        start = 0 if memory is None else memory[0].start + memory[0].k.shape[-2]
        write = None if memory is None else memory[-1].write
        outputs = []
        for pos in range(0, x.shape[1], c.n_ctx):
            y = x[:, pos : pos + c.n_ctx]
            keep = None
            if c.n_pauses:
                slots = pause_slots(c, y.shape[1], self.pause_generator)
                with_pause = torch.cat((y, self.model_pause(b)), dim=1)  # index -1 = the pause
                y = with_pause[:, slots]
                keep = [i for i, token in enumerate(slots) if token >= 0]
            chunk_groups = ()
            if c.n_memory_tokens:
                y, keep, chunk_groups = memory_tokens.insert(y, self.memtok.tokens, c)
            read = 0
            if c.n_rmt_tokens:
                if write is None:
                    write = self.rmt.rmt_tokens.expand(b, -1, -1)
                    y = torch.cat((y, write), dim=1)
                else:
                    read = write.shape[1]
                    y = torch.cat((write, y, write), dim=1)
            current = []
            for i, layer in enumerate(self.layers):
                past = None
                if c.memory == "xl" and memory is not None:
                    if c.memory_source == "previous-layer":
                        past = memory[i - 1] if i > 0 else None
                    else:
                        past = memory[i]
                # mamba_carry_state: the layer's own Mamba state after the previous chunk
                mamba_state = None if memory is None else memory[i].mamba
                ema = None if memory is None else memory[i].ema  # a Mega layer's own EMA state
                state = state_in(layer, memory, i, b)  # a block-recurrent layer's state
                y, mine = layer(y, past, start, (read, c.n_rmt_tokens), mamba_state, ema, state, chunk_groups)
                if c.n_memory_tokens and not c.memory_tokens_in_xl:
                    mine = memory_tokens.xl_entry(LayerMemory, mine, keep, start, y.shape[1])
                current.append(mine)
            start += y.shape[1]
            if c.n_rmt_tokens:
                write = y[:, -c.n_rmt_tokens :]  # gradient flows into the next chunk through m
                current[-1].write = write
                y = y[:, read : y.shape[1] - c.n_rmt_tokens]
            if keep is not None:
                y = y[:, keep]
            outputs.append(y)
            memory = current
        return torch.cat(outputs, dim=1), memory

    def model_pause(self, b: int) -> torch.Tensor:
        return self.pause.pause_emb.expand(b, 1, -1)  # [B, 1, D]


class CausalLM(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.config = c
        self.model = Net(c)
        self.vocab_in = nn.Embedding(c.n_vocab, c.dim_model)
        self.norm_out = make_norm(c)
        self.vocab_out = nn.Linear(c.dim_model, c.n_vocab, bias=False)

    def forward(self, input_ids, labels=None, memory=None):
        y, memory = self.model(self.vocab_in(input_ids), memory)
        logits = self.vocab_out(self.norm_out(y))  # [B, S, V]
        loss = None
        if labels is not None:
            loss = causal_lm_loss(logits, labels)
        return logits, loss, memory


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of positions 0..S-2 against labels 1..S-1, ignoring -100."""
    v = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, v), labels[:, 1:].reshape(-1), ignore_index=-100)


def perturb_norms(model: CausalLM, generator: torch.Generator) -> None:
    """Move LayerNorm weights/biases away from 1/0 so a swapped weight/bias is caught."""
    with torch.no_grad():
        for module in model.modules():
            if type(module).__name__.endswith("RMSNorm"):  # ours or upstream 004's (weight only)
                module.weight.add_(0.2 * torch.randn(module.weight.shape, generator=generator))
            if isinstance(module, nn.LayerNorm):
                module.weight.add_(0.2 * torch.randn(module.weight.shape, generator=generator))
                module.bias.add_(0.2 * torch.randn(module.bias.shape, generator=generator))


# ---------------------------------------------------------------------------------------------
# Upstream's training procedure for one batch (docs/architecture.md §3)


@dataclass
class Window:
    ids: torch.Tensor  # [R, L]
    labels: torch.Tensor  # [R, L]
    kept_rows: list[int]  # indices into the batch rows
    start: int  # first token (in the un-skipped batch)


def windows(ids, labels, attention_mask, window: int, skip_first: int = 0):
    """Windows of `window` tokens (stride = window) after skipping `skip_first` tokens.

    Windows shorter than 3 tokens end the iteration; rows whose position 1 is padding are dropped.
    """
    ids, labels, attention_mask = ids[:, skip_first:], labels[:, skip_first:], attention_mask[:, skip_first:]
    total = ids.shape[1]
    for i in range(0, total, window):
        w_ids = ids[:, i : i + window]
        if w_ids.shape[1] < 3:
            break
        keep = attention_mask[:, i : i + window][:, 1] != 0
        rows = [r for r in range(ids.shape[0]) if bool(keep[r])]
        yield Window(ids=w_ids[keep], labels=labels[:, i : i + window][keep], kept_rows=rows, start=skip_first + i)


def select_memory(memory, previous_rows: list[int], rows: list[int]):
    """Keeps the memory rows of batch rows still present, detached (carry_memory option)."""
    if memory is None:
        return None
    pick = [previous_rows.index(r) for r in rows]
    return [
        LayerMemory(k=m.k.detach()[pick], v=m.v.detach()[pick], start=m.start,
                    write=None if m.write is None else m.write.detach()[pick],
                    state=None if m.state is None else m.state.detach()[pick],
                    mamba=None if m.mamba is None else tuple(t.detach()[pick] for t in m.mamba),
                    ema=None if m.ema is None else m.ema.detach()[pick])
        for m in memory
    ]


def train_batch(model: CausalLM, optimizer, ids, labels, attention_mask, window: int, skip_first: int, clip: float = 1.0):
    """One pass over a batch: one AdamW step per window.

    Returns one record per step: loss, the gradient norm before clipping, the window's start,
    length and kept rows.
    """
    steps = []
    memory, previous_rows = None, None
    for w in windows(ids, labels, attention_mask, window, skip_first):
        carried = select_memory(memory, previous_rows, w.kept_rows) if model.config.carry_memory else None
        _, loss, memory = model(w.ids, w.labels, carried)
        previous_rows = w.kept_rows
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad()
        steps.append(
            {
                "loss": loss.item(),
                "grad_norm": norm.item(),
                "start": w.start,
                "length": int(w.ids.shape[1]),
                "rows": w.kept_rows,
            }
        )
    return steps


def train_epoch_on_batch(model, optimizer, ids, labels, attention_mask, window: int):
    """Upstream trains each batch twice: from token 0, then skipping window // 2 tokens."""
    first = train_batch(model, optimizer, ids, labels, attention_mask, window, 0)
    second = train_batch(model, optimizer, ids, labels, attention_mask, window, window // 2)
    return first + second
