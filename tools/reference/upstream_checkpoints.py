"""Writes checkpoints with upstream's own 004/005/007 code, for our loader tests (fp32, CPU).

  BAKA_UPSTREAM=/path/to/BakaLLM-clone MAMBA_SSM=/path/to/state-spaces-mamba-clone \
    python3 tools/reference/upstream_checkpoints.py
  (also run at the end of make_variant_fixtures.py when $BAKA_UPSTREAM is set; upstream-007 also
  needs $MAMBA_SSM, see check_upstream_mamba.py for its stand-in mamba_ssm)

variants/upstream-004/ (c097063, model_type baka_pause) and variants/upstream-005/ (5c883bc,
model_type baka_rmt, flash attention replaced by the checker's plain-torch stand-in) and
variants/upstream-007/ (51129df, model_type baka_mamba: 005 + Mamba in layers 0 and 2,
mamba_each_nth_layer 2, mamba_ssm's slow path with its reference scan):
  config.json        dataclasses.asdict(upstream's BakaConfig) + model_type (a class attribute
                     upstream, so asdict leaves it out)
  model.safetensors  upstream's state_dict as its model holds it after its own init (seeded)
  input-ids.json     [2, 40] ids: n_ctx 9, so chunks 9, 9, 9, 9, 4 (n_pauses 4 does not divide 9)
  expected.json      upstream's loss with labels = input ids, and the number of predicted positions
Our reference loads each strictly and its loss difference is printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baka_reference import CausalLM, Config  # noqa: E402
from check_upstream_mamba import MAMBA_COMMIT, UPSTREAM_007, mamba_stand_in  # noqa: E402
from check_upstream_pause_rmt import FLASH  # noqa: E402
from upstream import load_upstream  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "packages" / "model" / "__fixtures__" / "variants"
SHAPE = dict(dim_model=32, dim_ff=64, n_layers=3, n_heads=4, n_vocab=80, n_ctx=9, n_pauses=4)
BRANCHES = {
    "upstream-004": ("c097063", dict(), dict(norm="rmsnorm")),
    "upstream-005": ("5c883bc", dict(n_rmt_tokens=3), dict(memory_source="same-layer")),
    "upstream-007": (UPSTREAM_007, dict(n_rmt_tokens=3, mamba_each_nth_layer=2), dict(memory_source="same-layer")),
}


def ours_from_upstream(config: dict, extra: dict) -> Config:
    """Our config for an upstream one (the fields we share, plus what model_type implies)."""
    names = {f.name for f in dataclasses.fields(Config)}
    return Config(**{**{k: v for k, v in config.items() if k in names}, **extra})


def main() -> None:
    if not os.environ.get("BAKA_UPSTREAM"):
        print("upstream-00x/: skipped (set BAKA_UPSTREAM to a clone of Maykeye/BakaLLM)")
        return
    torch.set_num_threads(1)
    ids = torch.randint(1, SHAPE["n_vocab"], (2, 40), generator=torch.Generator().manual_seed(41))
    for index, (name, (commit, upstream_extra, ours_extra)) in enumerate(BRANCHES.items()):
        modules = {"flash_attn": FLASH}
        if "mamba_each_nth_layer" in upstream_extra:
            if not os.environ.get("MAMBA_SSM"):
                print(f"{name}/: skipped (set MAMBA_SSM to a clone of state-spaces/mamba)")
                continue
            modules["mamba_ssm.modules.mamba_simple"] = mamba_stand_in(os.environ["MAMBA_SSM"], MAMBA_COMMIT)
        module = load_upstream(commit, modules=modules)
        torch.manual_seed(500 + index)
        model = module.BakaNetCausalLM(module.BakaConfig(**SHAPE, **upstream_extra)).float()
        with torch.no_grad():
            loss = model(ids, ids).loss.item()
        config = {**dataclasses.asdict(model.config), "model_type": model.config.model_type}
        directory = OUT / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
        (directory / "input-ids.json").write_text(json.dumps(ids.tolist(), separators=(",", ":")) + "\n")
        expected = {"loss": loss, "tokens": int(ids[:, 1:].numel()), "upstream_commit": commit}
        (directory / "expected.json").write_text(json.dumps(expected) + "\n")
        ours = CausalLM(ours_from_upstream(config, ours_extra))
        ours.load_state_dict(state, strict=True)
        with torch.no_grad():
            _, ours_loss, _ = ours(ids, ids)
        print(f"variants/{name}: upstream loss {loss:.6f}, ours {ours_loss.item():.6f} (|diff| {abs(loss - ours_loss.item()):.1e})")


if __name__ == "__main__":
    main()
