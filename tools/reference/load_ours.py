"""Checks that a checkpoint written by our TypeScript writer loads in PyTorch.

Reads packages/model/__fixtures__/ours-checkpoint/, ours-thin-checkpoint/, ours-rmt-checkpoint/,
ours-qknorm-checkpoint/, ours-qk-l2-checkpoint/ and ours-memtok-checkpoint/ (config.json +
model.safetensors, written by
packages/model/scripts/write-ours-checkpoint.ts), loads the tensors with a strict
`load_state_dict` into the reference model, runs parity/inputs.json through it and writes
<dir>/torch-result.safetensors (logits, loss) so the TypeScript test can compare
without Python.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baka_reference import CausalLM, Config  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[2] / "packages" / "model" / "__fixtures__"


def main() -> None:
    for name in ("ours-checkpoint", "ours-thin-checkpoint", "ours-rmt-checkpoint", "ours-qknorm-checkpoint",
                 "ours-qk-l2-checkpoint", "ours-memtok-checkpoint"):
        check(FIXTURES / name)


def check(directory: Path) -> None:
    config = json.loads((directory / "config.json").read_text())
    model_type = config.pop("model_type")
    assert model_type == ("baka_rmt" if config.get("n_rmt_tokens") else "baka_pause" if config.get("n_pauses") else "baka_xl")
    # fields the reference has no option for must hold the values it computes
    for key, value in (("rmt_grad_chunks", 0), ("n_rmt_margins", 0), ("rmt_solidifier", "none")):
        assert config.pop(key, value) == value, key
    config.pop("use_flash_attn", None)  # upstream's switch; the mask is rmt_mask
    model = CausalLM(Config(**config))
    state = load_file(str(directory / "model.safetensors"))
    model.load_state_dict(state, strict=True)  # every name and shape must match
    inputs = json.loads((FIXTURES / "parity" / "inputs.json").read_text())
    ids, labels = torch.tensor(inputs["input_ids"]), torch.tensor(inputs["labels"])
    with torch.no_grad():
        logits, loss, _ = model(ids, labels)
    save_file(
        {"logits": logits.contiguous(), "loss": loss.reshape(())},
        str(directory / "torch-result.safetensors"),
        metadata={"format": "pt", "tensors_loaded": str(len(state))},
    )
    print(f"{directory.name} loads in PyTorch: {len(state)} tensors, loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
