"""Checks our reference's `qk_norm="negator"` against upstream's own BakaAttentionQKV (fp32, CPU).

  python3 tools/reference/check_upstream_negator.py --upstream /path/to/BakaLLM-clone

Upstream's prototype (branch 000_OLD, bakanetproto2.py, commit ad9dbe3) projects q and k, forms
[q ; c - q] and [k ; c - k] with one learned scalar c (`negator`), normalises each with a LayerNorm
over the doubled width (q_norm, k_norm), splits heads and rotates the first dim_head features
(rotary-embedding-torch passes the rest through); F.scaled_dot_product_attention then scales by
1 / sqrt(2 x dim_head), the width of the doubled features. Upstream ran it with one head over all
features, which is what is compared here (n_heads 1; for one head our scopes 'head' and 'all'
coincide). The rest of upstream's prototype block (Mega EMA, sigmoid gates, gated memory of
rotated keys) is another architecture, so the check runs at the attention level: upstream's
BakaAttentionQKV -> SDPA (causal) -> our output projection o, against our reference's Attention
with the same weights, on one chunk at rotary offset 0 and at an absolute offset of 13 (ours with
position_policy 'absolute'). Compared: the output and the gradients of every parameter under a
fixed random linear loss. Exits 1 when any differs by more than 1e-5, or when a negative control
(must differ by more than 1e-3) does not: upstream's attention at scale 1 / sqrt(dim_head); upstream
rotating the whole doubled width; ours with q_norm and k_norm swapped.

The module's training imports (maykio, maykds, transformers, scipy's FFT helper for its Mega
layer) are not needed to build the attention; stand-ins are registered for those that are missing.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from rotary_embedding_torch import RotaryEmbedding

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baka_reference import Attention, Config  # noqa: E402
from upstream import load_upstream  # noqa: E402

D, B, T = 16, 2, 7
COMMIT = "ad9dbe3"


def stand_ins() -> dict:
    modules = {}
    maykio = types.ModuleType("maykio")
    for name in ("batch_iterator_dict", "io_setup", "wandb_log"):
        setattr(maykio, name, None)
    maykds = types.ModuleType("maykds")
    maykds.pythia_tokenizer = lambda: [None] * 50  # the module calls len(tokenizer) at import
    transformers = types.ModuleType("transformers")
    transformers.set_seed = transformers.AutoConfig = transformers.AutoModelForCausalLM = None
    outputs = types.ModuleType("transformers.modeling_outputs")
    outputs.ModelOutput = object
    activations = types.ModuleType("transformers.activations")
    activations.get_activation = lambda name: torch.nn.ReLU()
    transformers.modeling_outputs, transformers.activations = outputs, activations
    modules.update({"maykio": maykio, "maykds": maykds, "transformers": transformers,
                    "transformers.modeling_outputs": outputs, "transformers.activations": activations})
    try:
        import scipy.fftpack  # noqa: F401
    except ImportError:
        fftpack = types.ModuleType("scipy.fftpack")
        fftpack.next_fast_len = None
        modules.update({"scipy": types.ModuleType("scipy"), "scipy.fftpack": fftpack})
    return modules


def upstream_attention(qkv, o, h, offset: int, scale=None) -> torch.Tensor:
    """Upstream's q/k/v (BakaAttentionQKV) -> causal SDPA (its default scale unless given) -> o."""
    q, k, v = qkv(h, h, h, offset)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)  # [B, 1, T, *]
    return o(y.transpose(1, 2).reshape(h.shape[0], h.shape[1], -1))


def compare(run_upstream, ours: Attention, qkv, h, weights, label: str) -> float:
    """Max |difference| of the outputs and of every parameter's gradient of sum(out * weights)."""
    for module in (ours, qkv):
        module.zero_grad(set_to_none=True)
    theirs = run_upstream()
    (theirs * weights).sum().backward()
    offset = 0 if ours.c.position_policy == "reset" else OFFSET
    mine, _ = ours(h, None, offset)
    (mine * weights).sum().backward()
    worst = (theirs - mine).abs().max().item()
    upstream_params = dict(qkv.named_parameters())
    for name, parameter in ours.named_parameters():
        if parameter.grad is None:  # rotary frequencies
            continue
        if name == "o.weight":
            continue  # shared module: the same tensor on both sides (below)
        worst = max(worst, (upstream_params[name].grad - parameter.grad).abs().max().item())
    print(f"{label}: max |difference| {worst:.2e}")
    return worst


OFFSET = 13


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", help="a clone of Maykeye/BakaLLM (or $BAKA_UPSTREAM)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    proto = load_upstream(COMMIT, args.upstream, file="bakanetproto2.py", modules=stand_ins())

    worst, controls = 0.0, []
    for policy in ("reset", "absolute"):
        torch.manual_seed(21)
        qkv = proto.BakaAttentionQKV(proto.BakaNetConfig(hidden_dim=D, num_heads=1, vocab_size=50)).float()
        with torch.no_grad():  # off upstream's init (c = 1, ones/zeros), so every parameter counts
            qkv.negator.add_(0.7)
            for norm in (qkv.q_norm, qkv.k_norm):
                norm.weight.add_(0.3 * torch.randn(norm.weight.shape))
                norm.bias.add_(0.3 * torch.randn(norm.bias.shape))
        ours = Attention(Config(dim_model=D, n_heads=1, n_vocab=50, n_layers=1, qk_norm="negator",
                                position_policy=policy))
        state = {name: value for name, value in qkv.state_dict().items() if not name.startswith("pos_emb")}
        ours_state = {**state, "o.weight": ours.o.weight.detach().clone(), "rot.freqs": ours.rot.freqs}
        ours.load_state_dict(ours_state, strict=True)
        assert torch.equal(ours.rot.freqs, qkv.pos_emb.freqs)
        h = torch.randn(B, T, D)
        weights = torch.randn(B, T, D)
        offset = 0 if policy == "reset" else OFFSET
        label = f"negator, 1 head, offset {offset}"
        worst = max(worst, compare(lambda: upstream_attention(qkv, ours.o, h, offset), ours, qkv, h, weights, label))
        if policy == "reset":
            narrow = (D) ** -0.5
            controls.append(compare(lambda: upstream_attention(qkv, ours.o, h, offset, scale=narrow), ours, qkv, h,
                                    weights, "negative control: upstream at scale 1/sqrt(dim_head)"))
            rotary = qkv.pos_emb
            qkv.pos_emb = RotaryEmbedding(2 * D, use_xpos=False)
            controls.append(compare(lambda: upstream_attention(qkv, ours.o, h, offset), ours, qkv, h, weights,
                                    "negative control: upstream rotating the doubled width"))
            qkv.pos_emb = rotary
            swapped = {**ours_state}
            for part in ("weight", "bias"):
                swapped[f"q_norm.{part}"], swapped[f"k_norm.{part}"] = state[f"k_norm.{part}"], state[f"q_norm.{part}"]
            ours.load_state_dict(swapped, strict=True)
            controls.append(compare(lambda: upstream_attention(qkv, ours.o, h, offset), ours, qkv, h, weights,
                                    "negative control: ours with q_norm and k_norm swapped"))

    ok = worst <= 1e-5 and all(control > 1e-3 for control in controls)
    print("ok" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
