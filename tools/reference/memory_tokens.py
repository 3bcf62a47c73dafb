"""Memory Transformer tokens and persistent memory key/values for our PyTorch reference.

Written from the papers' descriptions (Burtsev et al. 2020, "Memory Transformer": learned memory
tokens prepended to every segment; Sukhbaatar et al. 2019, "Augmenting Self-attention with
Persistent Memory": learned key/value pairs every query attends to), not from any implementation.
docs/architecture.md section 1.10 states the semantics both sides compute:

- `n_memory_tokens` M: the learned rows `model.memtok.tokens` [M, D] run as a group in front of
  the chunk's tokens (`memory_tokens_every` N > 0: a group in front of tokens 0, N, 2N, ... of the
  chunk). The slots take rotary positions like tokens. A group's queries see the XL past, every
  slot before the group and the whole group (the causal mask opened inside the group), so nothing
  of a later token reaches them. Their outputs are removed before the head. Unless
  `memory_tokens_in_xl`, their k/v are left out of what the chunk hands to the XL memory, which
  then starts at chunk start + slots - kept (it ends where the chunk ends).
- `n_mem_kv` N: per layer `attn.mem_k` [H, N, K] and `attn.mem_v` [H, N, K'] put in front of the
  (rotated) keys and values of every query: never rotated, never masked.

Shape legend: B batch, H heads, T queries, P past, W chunk slots, D dim_model, K dim_head.
"""

from __future__ import annotations

import torch


def slots(c, n_tokens: int) -> list[int]:
    """Per slot of a chunk of n_tokens: the token's index, or -(2 + j) for memory token j."""
    every = c.memory_tokens_every or c.n_ctx
    out: list[int] = []
    for t in range(n_tokens):
        if t % every == 0:
            out += [-(2 + j) for j in range(c.n_memory_tokens)]
        out.append(t)
    return out


def groups(layout: list[int]) -> list[tuple[int, int]]:
    """(start, size) of every run of memory slots."""
    out: list[tuple[int, int]] = []
    for i, s in enumerate(layout):
        if s <= -2:
            if out and out[-1][0] + out[-1][1] == i:
                out[-1] = (out[-1][0], out[-1][1] + 1)
            else:
                out.append((i, 1))
    return out


def insert(y: torch.Tensor, tokens: torch.Tensor, c):
    """y [B, T, D] -> [B, W, D] with the groups; the token slots; the groups."""
    b, t, _ = y.shape
    layout = slots(c, t)
    rows = torch.cat((y, tokens.expand(b, -1, -1)), dim=1)  # [B, T + M, D]
    index = [s if s >= 0 else t + (-s - 2) for s in layout]
    keep = [i for i, s in enumerate(layout) if s >= 0]
    return rows[:, index], keep, groups(layout)


def open_groups(allowed: torch.Tensor, past_length: int, chunk_groups) -> None:
    """Queries of a group also see the group's later slots (allowed [T, P+T], in place)."""
    for start, size in chunk_groups:
        allowed[start : start + size, past_length + start : past_length + start + size] = True


def with_mem_kv(attn, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor):
    """[mem_k ; k], [mem_v ; v] and the mask with the persistent columns open."""
    b = k.shape[0]
    n = attn.mem_k.shape[1]
    k = torch.cat((attn.mem_k.expand(b, -1, -1, -1), k), dim=-2)  # [B, H, N+P+T, K]
    v = torch.cat((attn.mem_v.expand(b, -1, -1, -1), v), dim=-2)
    allowed = torch.cat((torch.ones(allowed.shape[0], n, dtype=torch.bool), allowed), dim=1)
    return k, v, allowed


def xl_entry(memory_cls, mine, keep: list[int], chunk_start: int, width: int):
    """The chunk's memory without the memory-token slots, ending where the chunk ends."""
    return memory_cls(k=mine.k[:, :, keep], v=mine.v[:, :, keep], start=chunk_start + width - len(keep))
