"""Checks our reference's pause tokens, RMSNorm and RMT against upstream's 004/005 code (fp32, CPU).

  python3 tools/reference/check_upstream_pause_rmt.py --upstream /path/to/BakaLLM-clone

Upstream 004_pause head (c097063: pauses + RMSNorm, previous-layer XL) and 005_rmt head (5c883bc:
pauses + RMT + same-layer XL, LayerNorm). Upstream's state_dict is loaded into ours strictly, then
logits, loss and every gradient are compared over several shapes; exits 1 above 1e-5.

005 calls `flash_attn.flash_attn_func(q, k, v, causal=True)` on [B, T, H, K] tensors. flash_attn is
not installed (and needs CUDA), so this checker hands upstream a stand-in module computing the same
thing with plain torch: causal attention aligned to the bottom right (query i of T sees keys
0..i + (T_keys - T)), softmax scale 1/sqrt(K). It is part of the checker, not of either model.
"""

from __future__ import annotations

import argparse
import math
import sys
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baka_reference import CausalLM, Config, perturb_norms  # noqa: E402
from upstream import load_upstream  # noqa: E402

TINY = dict(dim_model=32, dim_ff=64, n_layers=3, n_heads=4, n_vocab=80)
TOLERANCE = 1e-5


def flash_attn_func(q, k, v, causal=False):
    """Stand-in for flash_attn.flash_attn_func: q [B, Tq, H, K], k/v [B, Tk, H, K] -> [B, Tq, H, K]."""
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, T, K]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        tq, tk = q.shape[-2], k.shape[-2]
        scores = scores.masked_fill(~torch.ones(tq, tk, dtype=torch.bool).tril(tk - tq), float("-inf"))
    return (scores.softmax(-1) @ v).transpose(1, 2)


FLASH = types.ModuleType("flash_attn")
FLASH.flash_attn_func = flash_attn_func

# (label, batch, tokens, n_ctx, n_pauses, padded row): 9 % 4 pauses, last chunks shorter than
# n_ctx, batch 1..3, up to 5 chunks
SHAPES = [
    ("b3 s22 ctx8 p3 padded", 3, 22, 8, 3, True),
    ("b1 s20 ctx9 p4", 1, 20, 9, 4, False),
    ("b2 s37 ctx8 p2 (5 chunks)", 2, 37, 8, 2, True),
    ("b2 s7 ctx8 p3 (1 short chunk)", 2, 7, 8, 3, False),
]


def inputs(batch: int, tokens: int, padded: bool, seed: int):
    ids = torch.randint(1, TINY["n_vocab"], (batch, tokens), generator=torch.Generator().manual_seed(seed))
    labels = ids.clone()
    if padded and batch > 1:
        ids[-1, tokens // 2 :] = 0
        labels[-1, tokens // 2 :] = -100
    return ids, labels


def compare(theirs, ours: CausalLM, ids, labels, seed: int = 0) -> float:
    """Max |difference| of logits, loss and gradients (seed: the random pause layout's draws)."""
    theirs.zero_grad(set_to_none=True)
    ours.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    out = theirs(ids, labels)
    out.loss.backward()
    if ours.config.n_pauses:
        ours.model.pause_generator.manual_seed(seed + ours.config.pause_seed)  # same draws at pause_seed 0
    logits, loss, _ = ours(ids, labels)
    loss.backward()
    worst = max((out.logits - logits).abs().max().item(), abs(out.loss.item() - loss.item()))
    named = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        if parameter.grad is not None:
            worst = max(worst, (named[name].grad - parameter.grad).abs().max().item())
    return worst


def pair(module, seed: int, ours_config: dict, **upstream_config):
    torch.manual_seed(seed)
    theirs = module.BakaNetCausalLM(module.BakaConfig(**TINY, **upstream_config)).float()
    perturb_norms(theirs, torch.Generator().manual_seed(seed + 1))
    ours = CausalLM(Config(**TINY, **ours_config))
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return theirs, ours


def run(label: str, module, ours_extra: dict, upstream_extra: dict, failures: list, expect_fail=False) -> float:
    worst_all = 0.0
    for index, (shape, batch, tokens, n_ctx, n_pauses, padded) in enumerate(SHAPES):
        common = dict(n_ctx=n_ctx, n_pauses=n_pauses)
        theirs, ours = pair(module, 100 + index, {**common, **ours_extra}, **common, **upstream_extra)
        ids, labels = inputs(batch, tokens, padded, 200 + index)
        worst = compare(theirs, ours, ids, labels, seed=300 + index)
        worst_all = max(worst_all, worst)
        print(f"  {label} | {shape}: max |difference| {worst:.2e}")
    bad = worst_all > TOLERANCE
    verdict = "fails as it must" if expect_fail and bad else "MISMATCH" if bad != expect_fail else "ok"
    print(f"{label}: worst {worst_all:.2e} -> {verdict}")
    if bad != expect_fail:
        failures.append(label)
    return worst_all


def write_token_gradient(module) -> tuple[float, float]:
    """|d loss(last chunk) / d rmt_tokens| in ours: through m (non-zero), and with m detached (zero)."""
    results = []
    for detach in (False, True):
        _, ours = pair(module, 7, dict(n_ctx=8, n_pauses=2, n_rmt_tokens=3, memory="none"), n_ctx=8, n_pauses=2, n_rmt_tokens=3)
        ids, labels = inputs(2, 24, False, 9)
        labels[:, :17] = -100  # loss on chunk 3 only (logits 16.. predict labels 17..); XL off: m is the only path back
        if detach:
            original = ours.model.forward

            def forward(x, memory=None, original=original):
                y, mem = original(x[:, :16], memory)
                mem = [m.detached() for m in mem]
                z, mem = original(x[:, 16:], mem)
                return torch.cat((y, z), 1), mem

            ours.model.forward = forward
        _, loss, _ = ours(ids, labels)
        loss.backward()
        results.append(ours.model.rmt.rmt_tokens.grad.abs().max().item())
    return results[0], results[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", help="a clone of Maykeye/BakaLLM (or $BAKA_UPSTREAM)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    failures: list[str] = []
    pause = load_upstream("c097063", args.upstream)
    rmt = load_upstream("5c883bc", args.upstream, modules={"flash_attn": FLASH})

    p004 = dict(norm="rmsnorm", memory_source="previous-layer")
    run("004 pauses + RMSNorm", pause, p004, {}, failures)
    run("004 random pause layout (seeded)", pause, {**p004, "is_pause_pos_random": True}, dict(is_pause_pos_random=True), failures)
    r005 = dict(n_rmt_tokens=3, memory_source="same-layer")
    run("005 pauses + RMT (flash causal)", rmt, r005, dict(n_rmt_tokens=3), failures)
    # 005's use_flash_attn=False path (its hand-built mask) does not run at 5c883bc: it joins past
    # and current keys along the heads axis of [B, H, T, K]. Our rmt_mask='upstream' is unchecked.

    print("negative controls (each must exceed the tolerance):")
    run("  004 vs ours with same-layer XL", pause, {**p004, "memory_source": "same-layer"}, {}, failures, expect_fail=True)
    run("  005 vs ours with the hand-built RMT mask", rmt, {**r005, "rmt_mask": "upstream"}, dict(n_rmt_tokens=3), failures, expect_fail=True)
    run("  005 vs ours with previous-layer XL", rmt, {**r005, "memory_source": "previous-layer"}, dict(n_rmt_tokens=3), failures, expect_fail=True)
    run("  004 vs ours with a different pause seed", pause, {**p004, "is_pause_pos_random": True, "pause_seed": 1}, dict(is_pause_pos_random=True), failures, expect_fail=True)

    through, detached = write_token_gradient(rmt)
    print(f"d loss(chunk 3) / d rmt_tokens: max |grad| {through:.2e} through m, {detached:.2e} with m detached")
    if not (through > 1e-6 and detached == 0.0):
        failures.append("write-token gradient")
    print("ok" if not failures else f"FAILED: {failures}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
