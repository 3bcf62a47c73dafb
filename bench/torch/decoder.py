"""Incremental generation for the PyTorch reference model: a KV cache inside the current chunk and
XL memory (the previous chunk's unrotated k/v) beyond it, the same scheme as @baka/model's
IncrementalDecoder, so both sides of the benchmark do the same work per token.

Reads the reference modules' weights (tools/reference/baka_reference.py) and never changes them.
Shape legend: H heads, K dim_head, Kv value head dim, D dim_model, V vocab, t tokens already in
the current chunk, P memory length.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from baka_reference import CausalLM, rotary_offsets


class TorchDecoder:
    def __init__(self, model: CausalLM):
        self.model = model
        self.c = model.config
        n = self.c.n_layers
        self.memory: Optional[list[tuple[torch.Tensor, torch.Tensor]]] = None  # per layer (k, v)
        self.chunk_k: list[Optional[torch.Tensor]] = [None] * n  # [1, H, t, K] unrotated
        self.chunk_v: list[Optional[torch.Tensor]] = [None] * n  # [1, H, t, Kv]
        self.chunk_start = 0
        self.chunk_length = 0

    def _past(self, index: int):
        c = self.c
        if c.memory != "xl" or self.memory is None:
            return None
        if c.memory_source == "previous-layer":
            return self.memory[index - 1] if index > 0 else None
        return self.memory[index]

    @torch.no_grad()
    def append(self, token: int) -> torch.Tensor:
        """Feeds one token; returns the next-token logits [V]."""
        model, c = self.model, self.c
        x = model.vocab_in(torch.tensor([[token]]))  # [1, 1, D]
        for index, layer in enumerate(model.model.layers):
            attn = layer.attn
            h = layer.norm_in(x)  # [1, 1, D]
            q, k, v = attn.heads(attn.q(h)), attn.heads(attn.k(h)), attn.heads(attn.v(h))  # [1, H, 1, *]
            previous_k, previous_v = self.chunk_k[index], self.chunk_v[index]
            k = k if previous_k is None else torch.cat((previous_k, k), dim=-2)  # [1, H, t+1, K]
            v = v if previous_v is None else torch.cat((previous_v, v), dim=-2)
            self.chunk_k[index], self.chunk_v[index] = k, v
            past = self._past(index)
            past_length = 0
            keys, values = k, v
            if past is not None:
                past_length = past[0].shape[-2]
                keys = torch.cat((past[0], k), dim=-2)  # [1, H, P+t+1, K]
                values = torch.cat((past[1], v), dim=-2)
            query_offset, key_offset = rotary_offsets(c.position_policy, past_length, self.chunk_start)
            q = attn.rot.rotate_queries_or_keys(q, -2, offset=query_offset + self.chunk_length)
            keys = attn.rot.rotate_queries_or_keys(keys, -2, offset=key_offset)
            # one query at the newest position sees every key: no mask
            scores = (q @ keys.transpose(-1, -2)) / math.sqrt(c.dim_head)  # [1, H, 1, P+t+1]
            y = scores.softmax(dim=-1) @ values  # [1, H, 1, Kv]
            y = y.transpose(1, 2).reshape(1, 1, -1)  # [1, 1, D]
            x = x + attn.o(y) + layer.mlp(h)
        logits = model.vocab_out(model.norm_out(x))[0, -1]  # [V]
        self.chunk_length += 1
        if self.chunk_length == c.n_ctx:
            self.memory = list(zip(self.chunk_k, self.chunk_v)) if c.memory == "xl" else None
            self.chunk_k = [None] * c.n_layers
            self.chunk_v = [None] * c.n_layers
            self.chunk_start += self.chunk_length
            self.chunk_length = 0
        return logits
