"""Checks our reference's Mamba layers against upstream's 007_mamba code (fp32, CPU).

  python3 tools/reference/check_upstream_mamba.py --upstream BAKA_CLONE --mamba MAMBA_CLONE

Upstream 007_mamba (head 51129df) is 005_rmt (pauses, RMT, same-layer XL, LayerNorm, flash
attention) plus, in every layer i with i % mamba_each_nth_layer == 0, y = y + Mamba(norm_mamba(y))
after the layer's sum, Mamba being mamba_ssm's `Mamba(dim_model)` with its defaults. mamba_ssm
needs CUDA kernels, so this checker builds a stand-in package at run time from a local clone of
state-spaces/mamba (`--mamba DIR` or $MAMBA_SSM, at `--mamba-commit`, default the last commit
before 007's head): the clone's own mamba_simple.py and selective_scan_interface.py, with empty
stand-ins for the CUDA/triton extension modules only (causal_conv1d, causal_conv1d_cuda,
selective_scan_cuda, the triton layer norm), so `Mamba.forward` takes its slow path
(nn.Conv1d, then the scan: `use_fast_path` is switched off, as it selects the fused kernel of the
same math), and `selective_scan_fn` bound to the clone's `selective_scan_ref` (its pure-torch
sequential scan). Nothing of either clone is copied into this repository.

Upstream's state_dict is loaded into ours strictly (and its key order compared), then logits,
loss and every gradient are compared over several shapes; exits 1 above 1e-5, or when a negative
control (a perturbed A_log, a time-reversed conv kernel, Mamba's output projection zeroed)
does not fail.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baka_reference import CausalLM, Config, perturb_norms  # noqa: E402
from check_upstream_pause_rmt import FLASH, SHAPES, TINY, TOLERANCE, compare, inputs  # noqa: E402
from upstream import load_upstream  # noqa: E402

UPSTREAM_007 = "51129df"
# the last state-spaces/mamba commit before 007's head (2024-02-24)
MAMBA_COMMIT = "009bec5ee37f586844a3fc89c040a9c1a9d8badf"

# Stand-ins of compiled extensions (written here, not taken from the clone). Their functions are
# None, which is what mamba_simple.py checks to fall back to plain torch.
STAND_INS = {
    "causal_conv1d/__init__.py": "causal_conv1d_fn = None\ncausal_conv1d_update = None\n",
    "causal_conv1d/cpp_functions.py": (
        "causal_conv1d_fwd_function = None\ncausal_conv1d_bwd_function = None\n"
        "causal_conv1d_update_function = None\n"
    ),
    "causal_conv1d_cuda.py": "",
    "selective_scan_cuda.py": "",
    "mamba_ssm/__init__.py": "",
    "mamba_ssm/modules/__init__.py": "",
    "mamba_ssm/ops/__init__.py": "",
    "mamba_ssm/ops/triton/__init__.py": "",
    "mamba_ssm/ops/triton/layer_norm.py": "_layer_norm_fwd = None\n",
    "mamba_ssm/ops/triton/layernorm.py": "",
    "mamba_ssm/utils/__init__.py": "",
}
# taken from the clone (pure torch), when the commit has them
FROM_CLONE = [
    "mamba_ssm/modules/mamba_simple.py",
    "mamba_ssm/ops/selective_scan_interface.py",
    "mamba_ssm/utils/torch.py",
]


def mamba_stand_in(clone: str, commit: str):
    """Imports the clone's Mamba (slow path, reference scan); returns the mamba_simple module."""
    directory = Path(tempfile.mkdtemp(prefix="baka-mamba-ssm-"))
    for name, text in STAND_INS.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    for name in FROM_CLONE:
        show = subprocess.run(["git", "-C", clone, "show", f"{commit}:{name}"], capture_output=True)
        if show.returncode == 0:
            (directory / name).write_bytes(show.stdout)
        elif name != "mamba_ssm/utils/torch.py":
            raise SystemExit(f"{clone} has no {name} at {commit}")
    for module in [m for m in sys.modules if m.split(".")[0] in ("mamba_ssm", "causal_conv1d")]:
        del sys.modules[module]
    sys.path.insert(0, str(directory))
    interface = importlib.import_module("mamba_ssm.ops.selective_scan_interface")
    interface.selective_scan_fn = interface.selective_scan_ref  # the pure-torch scan, not the kernel
    simple = importlib.import_module("mamba_ssm.modules.mamba_simple")
    assert simple.causal_conv1d_fn is None and simple.selective_scan_fn is interface.selective_scan_ref

    class SlowPathMamba(simple.Mamba):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "use_fast_path": False})

    stand_in = types.ModuleType("mamba_ssm.modules.mamba_simple")
    stand_in.Mamba = SlowPathMamba
    return stand_in


def pair(module, seed: int, common: dict, nth: int):
    torch.manual_seed(seed)
    theirs = module.BakaNetCausalLM(
        module.BakaConfig(**TINY, **common, n_rmt_tokens=3, mamba_each_nth_layer=nth)
    ).float()
    perturb_norms(theirs, torch.Generator().manual_seed(seed + 1))
    ours = CausalLM(Config(**TINY, **common, n_rmt_tokens=3, memory_source="same-layer", mamba_each_nth_layer=nth))
    state = theirs.state_dict()
    ours.load_state_dict(state, strict=True)
    if list(state) != list(ours.state_dict()):
        raise SystemExit("state_dict key order differs from upstream's")
    return theirs, ours


def sabotage(ours: CausalLM, how: str) -> None:
    with torch.no_grad():
        for name, parameter in ours.named_parameters():
            if how == "A_log" and name.endswith("mamba.A_log"):
                parameter.add_(0.5)
            if how == "conv reversed" and name.endswith("mamba.conv1d.weight"):
                parameter.copy_(parameter.flip(-1))
            if how == "no mamba" and name.endswith("mamba.out_proj.weight"):
                parameter.zero_()


def run(label: str, module, nth: int, failures: list, how: str | None = None) -> float:
    worst_all = 0.0
    for index, (shape, batch, tokens, n_ctx, n_pauses, padded) in enumerate(SHAPES):
        theirs, ours = pair(module, 100 + index, dict(n_ctx=n_ctx, n_pauses=n_pauses), nth)
        if how:
            sabotage(ours, how)
        ids, labels = inputs(batch, tokens, padded, 200 + index)
        worst = compare(theirs, ours, ids, labels, seed=300 + index)
        worst_all = max(worst_all, worst)
        print(f"  {label} | {shape}: max |difference| {worst:.2e}")
    bad = worst_all > TOLERANCE
    expect_fail = how is not None
    verdict = "fails as it must" if expect_fail and bad else "MISMATCH" if bad != expect_fail else "ok"
    print(f"{label}: worst {worst_all:.2e} -> {verdict}")
    if bad != expect_fail:
        failures.append(label)
    return worst_all


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", help="a clone of Maykeye/BakaLLM (or $BAKA_UPSTREAM)")
    parser.add_argument("--mamba", help="a clone of state-spaces/mamba (or $MAMBA_SSM)")
    parser.add_argument("--mamba-commit", default=MAMBA_COMMIT)
    args = parser.parse_args()
    clone = args.mamba or os.environ.get("MAMBA_SSM")
    if not clone:
        raise SystemExit("pass --mamba DIR (a clone of state-spaces/mamba) or set MAMBA_SSM")
    torch.set_num_threads(1)
    simple = mamba_stand_in(clone, args.mamba_commit)
    module = load_upstream(UPSTREAM_007, args.upstream, modules={"flash_attn": FLASH, "mamba_ssm.modules.mamba_simple": simple})
    failures: list[str] = []
    run("007 Mamba in every layer", module, 1, failures)
    run("007 Mamba in every 2nd layer", module, 2, failures)
    print("negative controls (each must exceed the tolerance):")
    run("  ours with A_log + 0.5", module, 1, failures, how="A_log")
    run("  ours with the conv kernel reversed in time", module, 2, failures, how="conv reversed")
    run("  ours with Mamba's out_proj zeroed", module, 2, failures, how="no mamba")
    print("ok" if not failures else f"FAILED: {failures}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
