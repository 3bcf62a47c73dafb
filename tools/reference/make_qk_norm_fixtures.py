"""Writes the parity fixtures of qk_norm and split_norm into packages/model/__fixtures__/variants/.

Run from the repository root:  python3 tools/reference/make_qk_norm_fixtures.py
(make_variant_fixtures.py runs it too). Deterministic (fixed seeds, fp32, 1 thread). Same inputs and
files as make_variant_fixtures.py: parity/inputs.json (3 rows x 22 tokens, chunks 8, 8, 6, row 2
padded from position 13) through the TINY model with XL memory; config.json, model.safetensors,
expected.safetensors (logits, loss, grad.<parameter>), carry.safetensors (a second call over tokens
11..21 fed the detached memory of a first call over tokens 0..10).

Every norm weight and bias, the negator c and the learned l2 scales are moved off their init, so a
swapped q/k norm, a lost bias or a mis-broadcast per-head weight shows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baka_reference import CausalLM, Config, perturb_norms  # noqa: E402
from make_fixtures import TINY, carry_fixture, forward_fixture, write_checkpoint  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "packages" / "model" / "__fixtures__"
OUT = FIXTURES / "variants"

# name -> config overrides of the TINY model (n_heads 4, dim_head 8)
VARIANTS = {
    # LayerNorm over each head's 8 features, one weight/bias pair shared by the heads
    "qk-layernorm": dict(qk_norm="layernorm"),
    # RMSNorm over all heads' features at once, a weight per head
    "qk-rmsnorm": dict(qk_norm="rmsnorm", qk_norm_scope="all", qk_norm_weights="per-head"),
    # unit q and k per head, logits times a learned per-head scale (init 4)
    "qk-l2": dict(qk_norm="l2", qk_norm_scale=4.0, qk_norm_learned_scale=True),
    # upstream 000_OLD's negator per head: [x ; c - x] (16 features), LayerNorm over them
    "qk-negator": dict(qk_norm="negator"),
    # split norms (RMSNorm) with the negator over all heads, per-head weights, a thin layer and
    # same-layer memory. The thin layer rotates like the others (thin_rotary_scale 1): with its
    # rotation x 1e-4 and same-layer memory, q.(bias of k) would be the same for every key, so
    # the gradient of k_norm.bias would be ~0 (5e-7, rounding noise) and compare nothing
    "qk-split-combo": dict(
        split_norm=True,
        norm="rmsnorm",
        qk_norm="negator",
        qk_norm_scope="all",
        qk_norm_weights="per-head",
        layer_kinds=["standard", "attention-only", "standard"],
        thin_rotary_scale=1.0,
        memory_source="same-layer",
    ),
    # upstream 00x_split_ln: attn.norm_in and mlp.norm_in instead of the layer's norm_in
    "split-norm": dict(split_norm=True),
}


def perturb_qk(model: CausalLM, generator: torch.Generator) -> None:
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".q_norm." in name or ".k_norm." in name or name.endswith("attn.qk_scale"):
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
            if name.endswith("attn.negator"):
                parameter.add_(torch.randn(parameter.shape, generator=generator))


def main() -> None:
    torch.set_num_threads(1)
    data = json.loads((FIXTURES / "parity" / "inputs.json").read_text())
    ids, labels = torch.tensor(data["input_ids"]), torch.tensor(data["labels"])
    for index, (name, overrides) in enumerate(VARIANTS.items()):
        torch.manual_seed(7000 + index)
        model = CausalLM(Config(**{**TINY, **overrides}))
        perturb_norms(model, torch.Generator().manual_seed(7100 + index))
        perturb_qk(model, torch.Generator().manual_seed(7200 + index))
        directory = OUT / name
        write_checkpoint(directory, model, upstream_only=False)
        loss = forward_fixture(model, ids, labels, directory / "expected.safetensors")
        carried = carry_fixture(model, ids, labels, directory / "carry.safetensors", split=11)
        print(f"variants/{name}: loss {loss:.6f}, carried second call {carried:.6f}")


if __name__ == "__main__":
    main()
