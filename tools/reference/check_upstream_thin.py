"""Checks our reference's thin layers against upstream's own 00x_thin code (fp32, CPU).

  python3 tools/reference/check_upstream_thin.py --upstream /path/to/BakaLLM-clone

Two upstream commits of branch 00x_thin: 5935867 (attention-only "thin" layers in front of the
normal ones, their attention parameters x 1e-4 at init, rotary frequencies included) and 24b54ea
(the "hourglass": per-layer MLP widths, thick = 2 x dim_ff, thin_mlp = 3/4 x dim_ff). Upstream's
pause tokens are switched off (n_pauses = 0 inserts none). The thin layers' q/k/v/o weights are
scaled back up before the comparison so that their contribution is not hidden under 1e-4; their
(scaled) rotary frequencies are kept, since they are what upstream computes with. Compares logits,
loss and every gradient; exits 1 when any differs by more than 1e-5.
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

TINY = dict(dim_model=32, dim_ff=64, n_heads=4, n_vocab=80, n_ctx=8)


def compare(upstream_model, ours: CausalLM, label: str) -> float:
    ids, labels = parity_inputs()
    state = {k: v for k, v in upstream_model.state_dict().items() if k != "model.pause_emb"}
    # Our config alone (before loading anything) gives upstream's rotary frequencies per layer,
    # the thin layers' scaled ones included.
    freqs = max(
        (ours.state_dict()[name] - value).abs().max().item() for name, value in state.items() if name.endswith("rot.freqs")
    )
    print(f"{label}: rotary frequencies from our config vs upstream's state_dict: max |difference| {freqs:.2e}")
    ours.load_state_dict(state, strict=True)
    out = upstream_model(ids, labels)
    out.loss.backward()
    logits, loss, _ = ours(ids, labels)
    loss.backward()
    worst = max((out.logits - logits).abs().max().item(), abs(out.loss.item() - loss.item()))
    theirs = dict(upstream_model.named_parameters())
    for name, parameter in ours.named_parameters():
        if parameter.grad is None:
            continue
        worst = max(worst, (theirs[name].grad - parameter.grad).abs().max().item())
    print(f"{label}: loss {loss.item():.6f} (upstream {out.loss.item():.6f}), max |difference| {worst:.2e}")
    return max(worst, freqs)


def unscale_thin_attention(upstream_model) -> None:
    with torch.no_grad():
        for layer in upstream_model.model.layers:
            if layer.mlp is None:
                for projection in (layer.attn.q, layer.attn.k, layer.attn.v, layer.attn.o):
                    projection.weight.mul_(1e4)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", help="a clone of Maykeye/BakaLLM (or $BAKA_UPSTREAM)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    worst = 0.0

    thin = load_upstream("5935867", args.upstream)
    torch.manual_seed(5)
    config = thin.BakaConfig(**TINY, n_layers_normal=2, n_layers_thin=2, n_pauses=0)
    model = thin.BakaNetCausalLM(config).float()
    unscale_thin_attention(model)
    perturb_norms(model, torch.Generator().manual_seed(6))
    ours = CausalLM(Config(**TINY, n_layers=4, layer_kinds=["attention-only"] * 2 + ["standard"] * 2))
    worst = max(worst, compare(model, ours, "5935867 thin x2 + normal x2"))

    hourglass = load_upstream("24b54ea", args.upstream)
    torch.manual_seed(7)
    kinds = [hourglass.KIND_THICK_MLP, hourglass.KIND_NORMAL, hourglass.KIND_THIN_MLP, hourglass.KIND_NORMAL]
    config = hourglass.BakaConfig(**TINY, n_pauses=0)
    config.layer_types = kinds
    model = hourglass.BakaNetCausalLM(config).float()
    perturb_norms(model, torch.Generator().manual_seed(8))
    widths = {hourglass.KIND_THICK_MLP: 128, hourglass.KIND_NORMAL: 64, hourglass.KIND_THIN_MLP: 48}
    ours = CausalLM(Config(**TINY, n_layers=4, layer_dim_ff=[widths[kind] for kind in kinds]))
    worst = max(worst, compare(model, ours, "24b54ea hourglass (thick, normal, thin_mlp, normal)"))

    ok = worst <= 1e-5
    print("ok" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
