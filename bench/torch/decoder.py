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
    def append(self, tokens: int | list[int]) -> torch.Tensor:
        """Feeds one token or a prompt; returns the next-token logits [V] after the last one.

        A prompt runs a chunk's worth of tokens at a time (causal inside the chunk), as
        IncrementalDecoder.append does with a list of ids.
        """
        ids = [tokens] if isinstance(tokens, int) else list(tokens)
        logits = None
        while ids:
            take = min(len(ids), self.c.n_ctx - self.chunk_length)
            logits = self._segment(ids[:take])
            ids = ids[take:]
        return logits

    def _segment(self, ids: list[int]) -> torch.Tensor:
        """T <= n_ctx - t tokens inside the current chunk; the logits after the last [V]."""
        model, c = self.model, self.c
        count = len(ids)
        x = model.vocab_in(torch.tensor([ids]))  # [1, T, D]
        mask = None
        if count > 1:  # query i (chunk position t + i) sees chunk keys up to t + i
            keys = self.chunk_length + count
            query = torch.arange(count).unsqueeze(1) + self.chunk_length  # [T, 1]
            mask = torch.arange(keys).unsqueeze(0) > query  # [T, t+T] True = hidden
        for index, layer in enumerate(model.model.layers):
            attn = layer.attn
            h = layer.norm_in(x)  # [1, T, D]
            q, k, v = attn.heads(attn.q(h)), attn.heads(attn.k(h)), attn.heads(attn.v(h))  # [1, H, T, *]
            previous_k, previous_v = self.chunk_k[index], self.chunk_v[index]
            k = k if previous_k is None else torch.cat((previous_k, k), dim=-2)  # [1, H, t+T, K]
            v = v if previous_v is None else torch.cat((previous_v, v), dim=-2)
            self.chunk_k[index], self.chunk_v[index] = k, v
            past = self._past(index)
            past_length = 0
            keys, values = k, v
            if past is not None:
                past_length = past[0].shape[-2]
                keys = torch.cat((past[0], k), dim=-2)  # [1, H, P+t+T, K]
                values = torch.cat((past[1], v), dim=-2)
            query_offset, key_offset = rotary_offsets(c.position_policy, past_length, self.chunk_start)
            q = attn.rot.rotate_queries_or_keys(q, -2, offset=query_offset + self.chunk_length)
            keys = attn.rot.rotate_queries_or_keys(keys, -2, offset=key_offset)
            scores = (q @ keys.transpose(-1, -2)) / math.sqrt(c.dim_head)  # [1, H, T, P+t+T]
            if mask is not None:  # the past is fully visible; the chunk causally
                hidden = torch.cat((torch.zeros(count, past_length, dtype=torch.bool), mask), dim=1)
                scores = scores.masked_fill(hidden, float("-inf"))
            y = scores.softmax(dim=-1) @ values  # [1, H, T, Kv]
            y = y.transpose(1, 2).reshape(1, count, -1)  # [1, T, D]
            x = x + attn.o(y) + layer.mlp(h)
        logits = model.vocab_out(model.norm_out(x[:, -1:]))[0, -1]  # [V]
        self.chunk_length += count
        if self.chunk_length == c.n_ctx:
            self.memory = list(zip(self.chunk_k, self.chunk_v)) if c.memory == "xl" else None
            self.chunk_k = [None] * c.n_layers
            self.chunk_v = [None] * c.n_layers
            self.chunk_start += self.chunk_length
            self.chunk_length = 0
        return logits
