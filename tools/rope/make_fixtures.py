"""Generate parity fixtures for @baka/rope from `rotary-embedding-torch` (fp32, CPU).

Usage (from the repo root):
    python tools/rope/make_fixtures.py

Writes packages/rope/src/__fixtures__/rotary-parity.json. The TypeScript tests read that file;
they never run Python.

Cases cover several rotary dims, offsets 0 / 7 / 1000, a rotary dim smaller than the feature dim
(the rest passes through), an interpolation factor, xpos (queries scaled by `scale`, keys by
`1 / scale`), a sequence axis of -3, and the GPT-NeoX "half" layout. rotary-embedding-torch only
implements the interleaved layout, so the half-layout reference is computed here directly in
torch from the same frequencies (first half / second half of the rotary features form the pairs).

Every case uses a fresh RotaryEmbedding module: the library caches frequency and xpos-scale tables
across calls, and its scale cache is keyed by the first call's length, so reusing one module for
calls of different lengths would make the reference depend on call order.
"""

from __future__ import annotations

import json
import math
from importlib.metadata import version
from pathlib import Path

import torch
from rotary_embedding_torch import RotaryEmbedding

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "packages" / "rope" / "src" / "__fixtures__" / "rotary-parity.json"


def tensor_json(t: torch.Tensor) -> dict:
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "data": [float(f"{v:.9g}") for v in t.reshape(-1).tolist()]}


def random_input(generator: torch.Generator, shape: list[int]) -> torch.Tensor:
    return torch.randn(*shape, generator=generator, dtype=torch.float32)


def half_layout_reference(
    x: torch.Tensor, inv_freq: torch.Tensor, offset: int, interpolation: float, seq_axis: int
) -> torch.Tensor:
    """GPT-NeoX convention: pairs are (x[j], x[j + rot/2]) within the first `rot` features."""
    rot = inv_freq.shape[0] * 2
    seq_len = x.shape[seq_axis]
    positions = (torch.arange(seq_len, dtype=torch.float32) + offset) / interpolation
    angles = positions[:, None] * inv_freq[None, :]  # [T, rot/2]
    angles = torch.cat((angles, angles), dim=-1)  # [T, rot]
    if seq_axis == -3:
        angles = angles[:, None, :]  # [T, 1, rot]
    cos, sin = angles.cos(), angles.sin()
    middle, rest = x[..., :rot], x[..., rot:]
    first, second = middle[..., : rot // 2], middle[..., rot // 2 :]
    rotated_half = torch.cat((-second, first), dim=-1)
    return torch.cat((middle * cos + rotated_half * sin, rest), dim=-1)


def main() -> None:
    generator = torch.Generator().manual_seed(20261128)
    cases: list[dict] = []

    # --- rotate: interleaved (the library) and half (our reference), several dims and offsets ---
    plain = [
        # name, rotary dim, feature dim, theta, interpolation, shape prefix, seq axis
        ("dim8", 8, 8, 10000.0, 1.0, [1, 2, 5], -2),
        ("dim16", 16, 16, 10000.0, 1.0, [2, 2, 4], -2),
        ("dim64", 64, 64, 10000.0, 1.0, [1, 2, 4], -2),
        ("partial-16-of-24", 16, 24, 10000.0, 1.0, [2, 1, 5], -2),
        ("interpolate-2", 16, 16, 10000.0, 2.0, [1, 2, 5], -2),
        ("interpolate-4-partial", 8, 12, 10000.0, 4.0, [1, 2, 5], -2),
        ("theta-500000", 32, 32, 500000.0, 1.0, [1, 1, 6], -2),
        ("seq-axis-3", 16, 16, 10000.0, 1.0, [2, 5, 3], -3),  # [B, T, H, D]
        ("rank3", 16, 16, 10000.0, 1.0, [2, 6], -2),  # [B, T, D]
    ]
    for name, rot_dim, feature_dim, theta, interpolation, prefix, seq_axis in plain:
        for offset in (0, 7, 1000):
            shape = [*prefix, feature_dim]
            x = random_input(generator, shape)
            rope = RotaryEmbedding(dim=rot_dim, theta=theta, interpolate_factor=interpolation)
            inv_freq = rope.freqs.detach().clone()
            expected = rope.rotate_queries_or_keys(x, seq_dim=seq_axis, offset=offset)
            options = {"dim": rot_dim, "theta": theta, "interpolationFactor": interpolation}
            cases.append(
                {
                    "name": f"{name}-offset{offset}-interleaved",
                    "kind": "rotate",
                    "options": {**options, "layout": "interleaved"},
                    "offset": offset,
                    "seqAxis": seq_axis,
                    "invFreq": inv_freq.tolist(),
                    "input": tensor_json(x),
                    "expected": tensor_json(expected),
                }
            )
            half = half_layout_reference(x, inv_freq, offset, interpolation, seq_axis)
            cases.append(
                {
                    "name": f"{name}-offset{offset}-half",
                    "kind": "rotate",
                    "options": {**options, "layout": "half"},
                    "offset": offset,
                    "seqAxis": seq_axis,
                    "invFreq": inv_freq.tolist(),
                    "input": tensor_json(x),
                    "expected": tensor_json(half),
                }
            )

    # --- xpos: rotate_queries_and_keys (same length, positions 0..T-1, centre T // 2) ---
    for name, rot_dim, feature_dim, scale_base, interpolation, seq_len in [
        ("xpos-dim16", 16, 16, 512, 1.0, 6),
        ("xpos-dim32-partial", 16, 32, 64, 1.0, 9),
        ("xpos-interpolate-2", 16, 16, 32, 2.0, 7),
    ]:
        q = random_input(generator, [2, 2, seq_len, feature_dim])
        k = random_input(generator, [2, 2, seq_len, feature_dim])
        rope = RotaryEmbedding(
            dim=rot_dim,
            use_xpos=True,
            xpos_scale_base=scale_base,
            interpolate_factor=interpolation,
        )
        expected_q, expected_k = rope.rotate_queries_and_keys(q, k)
        cases.append(
            {
                "name": name,
                "kind": "rotateQueriesAndKeys",
                "options": {
                    "dim": rot_dim,
                    "theta": 10000.0,
                    "interpolationFactor": interpolation,
                    "layout": "interleaved",
                    "xpos": {"scaleBase": scale_base},
                },
                "invFreq": rope.freqs.detach().tolist(),
                "queries": tensor_json(q),
                "keys": tensor_json(k),
                "expectedQueries": tensor_json(expected_q),
                "expectedKeys": tensor_json(expected_k),
            }
        )

    # --- cached keys: queries are the last q_len of k_len positions ---
    # Without xpos: queries at k_len - q_len + offset, keys at 0. With xpos the library centres
    # the query scale at q_len // 2 and the key scale at k_len // 2 (its own convention).
    for name, use_xpos in [("cached-keys", False), ("cached-keys-xpos", True)]:
        q_len, k_len, rot_dim = 3, 8, 16
        q = random_input(generator, [1, 2, q_len, rot_dim])
        k = random_input(generator, [1, 2, k_len, rot_dim])
        rope = RotaryEmbedding(dim=rot_dim, use_xpos=use_xpos, xpos_scale_base=16)
        expected_q, expected_k = rope.rotate_queries_with_cached_keys(q, k)
        options: dict = {"dim": rot_dim, "theta": 10000.0, "interpolationFactor": 1.0, "layout": "interleaved"}
        if use_xpos:
            options["xpos"] = {"scaleBase": 16}
        cases.append(
            {
                "name": name,
                "kind": "cachedKeys",
                "options": options,
                "queryLength": q_len,
                "keyLength": k_len,
                "invFreq": rope.freqs.detach().tolist(),
                "queries": tensor_json(q),
                "keys": tensor_json(k),
                "expectedQueries": tensor_json(expected_q),
                "expectedKeys": tensor_json(expected_k),
            }
        )

    OUT.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "generator": "tools/rope/make_fixtures.py",
        "library": f"rotary-embedding-torch {version('rotary-embedding-torch')}",
        "torch": torch.__version__,
        "dtype": "float32",
        "cases": cases,
    }
    OUT.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"wrote {len(cases)} cases to {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1024:.0f} KiB)")
    assert math.isfinite(sum(sum(c.get("expected", c.get("expectedQueries"))["data"]) for c in cases))


if __name__ == "__main__":
    main()
