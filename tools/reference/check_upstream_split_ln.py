"""Checks our reference's split_norm against upstream's own 00x_split_ln code (fp32, CPU).

  python3 tools/reference/check_upstream_split_ln.py --upstream /path/to/BakaLLM-clone

Upstream commit 15b1baa ("Splitted layernorm to each part", branch 00x_split_ln, on top of
004_pause's d566117) moves the layer's one LayerNorm into its two branches, GPT-NeoX style:
attention normalises its input with attn.norm_in, the MLP with mlp.norm_in. Its pause tokens are
switched off (n_pauses = 0 inserts none). Upstream's state_dict (minus the unused pause vector)
loads strictly into ours with `split_norm=True`; logits, loss and every gradient are compared on
parity inputs (3 x 22 tokens, n_ctx 8: three chunks of XL memory, a padded row). Exits 1 when any
differs by more than 1e-5, or when the negative control (our model with the MLP reading
attention's norm, i.e. one shared norm) does not differ by more than 1e-3.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baka_reference import CausalLM, Config, perturb_norms  # noqa: E402
from make_fixtures import parity_inputs  # noqa: E402
from upstream import load_upstream  # noqa: E402

TINY = dict(dim_model=32, dim_ff=64, n_heads=4, n_vocab=80, n_ctx=8, n_layers=3)


def difference(upstream_model, ours: CausalLM) -> float:
    """Max |difference| of logits, loss and every gradient (both models' grads are reset first)."""
    ids, labels = parity_inputs()
    upstream_model.zero_grad(set_to_none=True)
    ours.zero_grad(set_to_none=True)
    out = upstream_model(ids, labels)
    out.loss.backward()
    logits, loss, _ = ours(ids, labels)
    loss.backward()
    worst = max((out.logits - logits).abs().max().item(), abs(out.loss.item() - loss.item()))
    theirs = dict(upstream_model.named_parameters())
    for name, parameter in ours.named_parameters():
        if parameter.grad is None:  # the rotary frequencies (not trained)
            continue
        worst = max(worst, (theirs[name].grad - parameter.grad).abs().max().item())
    print(f"  loss {loss.item():.6f} (upstream {out.loss.item():.6f}), max |difference| {worst:.2e}")
    return worst


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", help="a clone of Maykeye/BakaLLM (or $BAKA_UPSTREAM)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    split = load_upstream("15b1baa", args.upstream)
    torch.manual_seed(11)
    model = split.BakaNetCausalLM(split.BakaConfig(**TINY, n_pauses=0)).float()
    perturb_norms(model, torch.Generator().manual_seed(12))  # the two norms differ per layer
    state = {k: v for k, v in model.state_dict().items() if k != "model.pause_emb"}
    ours = CausalLM(Config(**TINY, split_norm=True))
    ours.load_state_dict(state, strict=True)
    print("15b1baa split LayerNorm (attn.norm_in, mlp.norm_in), 3 layers:")
    worst = difference(model, ours)

    print("negative control: our MLP reads attention's norm (one shared norm per layer):")
    with torch.no_grad():
        for layer in ours.model.layers:
            layer.mlp.norm_in.load_state_dict(layer.attn.norm_in.state_dict())
    control = difference(model, ours)

    ok = worst <= 1e-5 and control > 1e-3
    print("ok" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
