"""Fixture for @baka/trainer's AdamW and gradient clipping, from torch.optim.AdamW.

Writes packages/trainer/__fixtures__/adamw.json: a few parameters of different shapes, their
initial values, the gradients given at each step, and the parameters (plus exp_avg / exp_avg_sq)
after every step, for two settings:
  - "defaults": lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, no clipping
  - "clipped":  lr 3e-3, betas (0.8, 0.99), eps 1e-6, weight decay 0.1, clip_grad_norm_(max_norm=1.0)
    before every step, with the total norm and clip coefficient recorded.
The TypeScript test replays the same gradients and compares to ~1e-6.

Run from the repository root: python3 tools/reference/adamw_fixture.py
"""

import json
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parents[2] / "packages/trainer/__fixtures__/adamw.json"
SHAPES = {"embed.weight": [7, 3], "layer.norm.bias": [3], "layer.fc.weight": [4, 3], "head.weight": [2, 2, 3]}
STEPS = 6


def run(setting: dict, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    params = {name: torch.nn.Parameter(torch.randn(shape, generator=gen)) for name, shape in SHAPES.items()}
    initial = {name: p.detach().flatten().tolist() for name, p in params.items()}
    opt = torch.optim.AdamW(
        list(params.values()),
        lr=setting["lr"],
        betas=tuple(setting["betas"]),
        eps=setting["eps"],
        weight_decay=setting["weight_decay"],
        foreach=False,
    )
    steps = []
    for step in range(STEPS):
        # Gradients grow with the step so clipping is active on some steps and not on others.
        scale = 0.05 * (step + 1) ** 2
        grads = {name: torch.randn(shape, generator=gen) * scale for name, shape in SHAPES.items()}
        record = {"grads": {name: g.flatten().tolist() for name, g in grads.items()}}
        for name, p in params.items():
            p.grad = grads[name].clone()
        if setting["max_norm"] is not None:
            total = torch.nn.utils.clip_grad_norm_(list(params.values()), setting["max_norm"])
            record["total_norm"] = float(total)
            record["clipped_grads"] = {name: p.grad.flatten().tolist() for name, p in params.items()}
        opt.step()
        record["params"] = {name: p.detach().flatten().tolist() for name, p in params.items()}
        record["exp_avg"] = {name: opt.state[p]["exp_avg"].flatten().tolist() for name, p in params.items()}
        record["exp_avg_sq"] = {name: opt.state[p]["exp_avg_sq"].flatten().tolist() for name, p in params.items()}
        steps.append(record)
    return {"setting": setting, "shapes": SHAPES, "initial": initial, "steps": steps}


def main() -> None:
    settings = {
        "defaults": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01, "max_norm": None},
        "clipped": {"lr": 3e-3, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.1, "max_norm": 1.0},
    }
    fixture = {
        "torch_version": torch.__version__,
        "cases": {name: run(setting, seed) for seed, (name, setting) in enumerate(settings.items())},
    }
    OUT.write_text(json.dumps(fixture))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
