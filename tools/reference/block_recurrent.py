"""Block-Recurrent Transformer layers (Hutchins, Schlag, Wu, Dyer, Neyshabur 2022), our own code.

Written from the paper and from reading google-research/meliad's `transformer/memory`
(`transformer_layer.py`, `transformer_base.py`, `nn_components.MLP._gate`); nothing is copied.
A recurrent layer (`Config.recurrent_layers`) keeps a state of S vectors [B, S, D] from chunk to
chunk, starting from a learned `initial_state` [S, D]. On one chunk (tokens x [B, T, D]):

  h  = norm_in(x)                                   (the layer's own norm)
  hs = norm(state) + state_ids                      (learned state IDs, added after the norm)
  ks, vs = k(hs), v(hs)                             (the state's keys/values, shared by both uses)
  vertical:   y = x + attn.o(self-attention of h) + cross_o(attend(cross_q(h), ks, vs)) + mlp(h)
              (the paper concatenates [self ; cross] and projects: cross_o is the cross half of
              that projection; attn.o the self half, so cross_o = 0 is an ordinary layer)
  horizontal: u = [attend(q(hs), ks, vs) ; attend(state_cross_q(hs), keys, values)]   [B, S, 2D]
              keys/values: the layer's unrotated token k/v [memory ; chunk] (what its own
              self-attention attended to); no mask, no rotary in any of the three new attentions
              z = o(u)                                                              [B, S, D]
              fixed gate: g = sigmoid(gate_bias); state' = g * state + (1 - g) * z
              lstm gate:  f = sigmoid(forget_gate(u) + 1), i = sigmoid(input_gate(u) - 1)
                          state' = f * state + i * z
The tokens of chunk c read the state written at chunk c - 1 (chunk 1: the initial state); the
state written at chunk c is read by chunk c + 1. No MLP in the horizontal direction: the paper's
":skip" configuration (meliad's recurrent_skip_ffn), with one gate. Attention is softmax(q k^T /
sqrt(K)) v like the rest of the model (meliad's normalised keys and learned scales are not used).

Init as meliad: initial_state N(0, 0.1^2), state_ids N(0, 1), gate biases N(0, 0.1^2), gate
weights with a tenth of the usual variance (here: nn.Linear's uniform bound x sqrt(0.3), which
has variance 0.1 / fan_in); the other projections nn.Linear's default.

Shape legend: B batch, T chunk, S state vectors, D dim_model, A dim_attn, H heads, K dim_head.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(K)) v without a mask: q [B, H, Q, K], k [B, H, P, K], v [B, H, P, K']."""
    return ((q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])).softmax(dim=-1) @ v


class BlockRecurrence(nn.Module):
    def __init__(self, c, make_norm):
        super().__init__()
        self.c = c
        d, a = c.dim_model, c.dim_attn
        s = c.n_state_vectors or c.n_ctx
        # the module's own parameters first in the state_dict, then its submodules
        self.initial_state = nn.Parameter(0.1 * torch.randn(s, d))  # [S, D]
        self.state_ids = nn.Parameter(torch.randn(s, d))  # [S, D]
        if c.state_gate == "fixed":
            self.gate_bias = nn.Parameter(0.1 * torch.randn(d))  # [D]
        self.cross_q = nn.Linear(d, a, bias=False)  # token queries to the state
        self.cross_o = nn.Linear(d, d, bias=False)  # the cross half of the token projection
        self.norm = make_norm(c)  # the config's norm kind
        self.q = nn.Linear(d, a, bias=False)
        self.k = nn.Linear(d, a, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.state_cross_q = nn.Linear(d, a, bias=False)  # state queries to the tokens
        self.o = nn.Linear(2 * d, d, bias=False)  # [self ; cross] -> candidate z
        if c.state_gate == "lstm":
            self.input_gate = nn.Linear(2 * d, d, bias=True)
            self.forget_gate = nn.Linear(2 * d, d, bias=True)
            with torch.no_grad():
                for gate in (self.input_gate, self.forget_gate):
                    gate.weight.mul_(math.sqrt(0.3))
                    gate.bias.normal_(0.0, 0.1)

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.c.n_heads, -1).transpose(1, 2)  # [B, H, T, K]

    @staticmethod
    def merge(x: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = x.shape
        return x.transpose(1, 2).reshape(b, t, -1)  # [B, T, H*K]

    def initial(self, batch: int) -> torch.Tensor:
        return self.initial_state.expand(batch, -1, -1)  # [B, S, D]

    def forward(self, h, state, keys, values):
        """h [B, T, D] normalised tokens; state [B, S, D]; keys/values the layer's unrotated token
        k/v [B, H, P+T, *]. Returns (the tokens' cross term [B, T, D], the next state [B, S, D])."""
        hs = self.norm(state) + self.state_ids
        ks, vs = self.heads(self.k(hs)), self.heads(self.v(hs))
        cross = self.cross_o(self.merge(_attend(self.heads(self.cross_q(h)), ks, vs)))
        read_self = self.merge(_attend(self.heads(self.q(hs)), ks, vs))  # [B, S, D]
        read_tokens = self.merge(_attend(self.heads(self.state_cross_q(hs)), keys, values))
        u = torch.cat((read_self, read_tokens), dim=-1)  # [B, S, 2D]
        z = self.o(u)
        if self.c.state_gate == "fixed":
            g = torch.sigmoid(self.gate_bias)
            return cross, g * state + (1 - g) * z
        f = torch.sigmoid(self.forget_gate(u) + 1)
        i = torch.sigmoid(self.input_gate(u) - 1)
        return cross, f * state + i * z


def state_in(layer, memory, index: int, batch: int):
    """Layer `index`'s state for the next chunk: the previous chunk's, else the initial state."""
    if layer.recurrent is None:
        return None
    if memory is not None and memory[index].state is not None:
        return memory[index].state
    return layer.recurrent.initial(batch)
