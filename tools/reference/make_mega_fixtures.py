"""Writes packages/model/__fixtures__/variants/mega/ (Mega layers, mega.py) and checks the EMA.

Run from the repository root:  python3 tools/reference/make_mega_fixtures.py
First checks our EMA recurrence (one position at a time) against the paper's convolution-kernel
form, with and without a carried state, and stops if they differ by more than 1e-5. Then writes,
like make_variant_fixtures.py, config.json, model.safetensors, expected.safetensors (logits,
loss and every gradient over parity/inputs.json: 3 rows x 22 tokens, chunks 8, 8, 6, a padded
row) and carry.safetensors (a second call from token 11 fed the first call's detached memory,
EMA states included).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baka_reference import CausalLM, Config, perturb_norms  # noqa: E402
from make_fixtures import TINY, carry_fixture, forward_fixture, write_checkpoint  # noqa: E402
from make_variant_fixtures import OUT, load_inputs  # noqa: E402
from mega import DampedEMA  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

# layers 0 and 2 are Mega layers (EMA dims 4, z 12 > dim_head 8, values 24 != dim_model), layer 1
# standard; same-layer XL memory (a Mega layer's keys are one head of z features)
MEGA = dict(n_layers=3, layer_kinds=["mega", "standard", "mega"], memory_source="same-layer",
            ema_dim=4, mega_z_dim=12, mega_h_dim=24)


def check_ema() -> float:
    generator = torch.Generator().manual_seed(11)
    torch.manual_seed(12)
    ema = DampedEMA(6, 5)
    h = torch.randn(2, 40, 6, generator=generator)
    state = torch.randn(2, 6, 5, generator=generator)
    worst = 0.0
    for start in (None, state):
        sequential, _ = ema.ema_sequential(h, start)
        worst = max(worst, (sequential - ema.ema_by_kernel(h, start)).abs().max().item())
    if worst > 1e-5:
        raise SystemExit(f"EMA recurrence and kernel form differ by {worst:.3g}")
    # negative control: a wrong decay must show
    with torch.no_grad():
        ema.alpha.add_(0.5)
    wrong, _ = DampedEMA.ema_sequential(ema, h, None)
    with torch.no_grad():
        ema.alpha.sub_(0.5)
    if (wrong - ema.ema_by_kernel(h, None)).abs().max().item() < 1e-3:
        raise SystemExit("EMA check is vacuous")
    return worst


def perturb_mega(model: CausalLM, generator: torch.Generator) -> None:
    """qk_beta starts at 0 and the EMA's omega multiplies its input: noise makes a dropped bias
    or a swapped q/k affine show; delta + 1 spreads the decays so the EMA state matters."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("qk_beta") or name.endswith("qk_gamma"):
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
            if name.endswith("ema.delta"):
                parameter.add_(torch.randn(parameter.shape, generator=generator))


def main() -> None:
    print(f"EMA recurrence vs kernel form: max |difference| {check_ema():.3g}")
    ids, labels = load_inputs()
    torch.manual_seed(3100)
    model = CausalLM(Config(**{**TINY, **MEGA}))
    perturb_norms(model, torch.Generator().manual_seed(4100))
    perturb_mega(model, torch.Generator().manual_seed(5100))
    directory = OUT / "mega"
    write_checkpoint(directory, model, upstream_only=False)
    loss = forward_fixture(model, ids, labels, directory / "expected.safetensors")
    carried = carry_fixture(model, ids, labels, directory / "carry.safetensors", split=11)
    print(f"variants/mega: loss {loss:.6f}, carried second call {carried:.6f}")


if __name__ == "__main__":
    main()
