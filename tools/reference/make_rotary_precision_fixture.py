"""Writes packages/model/__fixtures__/variants/rotary-bf16/: the model with bf16 rotary tables.

Run from the repository root:  python3 tools/reference/make_rotary_precision_fixture.py
Deterministic (fixed seeds, fp32, 1 thread). A small model (2 layers, dim 32, 2 heads of 16,
vocab 64, n_ctx 64) over one row of 4160 random tokens: 65 chunks with XL memory, so absolute
positions reach 4159 while reset positions stay below 128. Losses for every combination of
position_policy (reset, absolute) and rotary_precision (float32, bfloat16), for the whole row in
one call and for a second call over tokens 4096..4159 fed the (detached) memory of a first call
over tokens 0..4095.

variants/rotary-bf16/
  config.json        rotary_precision bfloat16, position_policy absolute (tests override both)
  model.safetensors  its weights (upstream state_dict names, PyTorch layout)
  expected.json      input_ids [1, 4160], split, losses["<precision>/<policy>"] = {full, carried}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baka_reference import CausalLM, Config, perturb_norms  # noqa: E402
from make_fixtures import write_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "packages" / "model" / "__fixtures__" / "variants" / "rotary-bf16"
SMALL = dict(dim_model=32, dim_ff=64, n_layers=2, n_heads=2, n_vocab=64, n_ctx=64)
LENGTH, SPLIT = 4160, 4096

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def main() -> None:
    ids = torch.randint(0, SMALL["n_vocab"], (1, LENGTH), generator=torch.Generator().manual_seed(11))
    torch.manual_seed(5)
    model = CausalLM(Config(**SMALL, rotary_precision="bfloat16", position_policy="absolute"))
    perturb_norms(model, torch.Generator().manual_seed(6))
    write_checkpoint(OUT, model, upstream_only=False)
    state = model.state_dict()
    losses = {}
    for precision in ("float32", "bfloat16"):
        for policy in ("reset", "absolute"):
            variant = CausalLM(Config(**SMALL, rotary_precision=precision, position_policy=policy))
            variant.load_state_dict(state)
            with torch.no_grad():
                _, full, _ = variant(ids, ids)
                _, _, memory = variant(ids[:, :SPLIT], ids[:, :SPLIT])
                memory = [m.detached() for m in memory]
                _, carried, _ = variant(ids[:, SPLIT:], ids[:, SPLIT:], memory)
            losses[f"{precision}/{policy}"] = {"full": full.item(), "carried": carried.item()}
            print(f"{precision}/{policy}: full {full.item():.9f}, carried {carried.item():.9f}")
    expected = {"input_ids": ids.tolist(), "split": SPLIT, "losses": losses}
    (OUT / "expected.json").write_text(json.dumps(expected) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
