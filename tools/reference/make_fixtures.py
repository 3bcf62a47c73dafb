"""Writes the @baka/model parity fixtures into packages/model/__fixtures__/.

Run from the repository root:  python3 tools/reference/make_fixtures.py
Deterministic (fixed seeds, fp32, 1 thread). Re-running rewrites identical files. Afterwards, if
packages/model/__fixtures__/ours-checkpoint/ exists (written by our TypeScript writer), runs
load_ours.py so the "our checkpoint loads in PyTorch" result is refreshed too.

Outputs
  tiny-torch/                 a PyTorch-written checkpoint (upstream-style config.json, no option
                              fields) + input-ids.json + expected.json (loss, tokens) for `baka eval`
  parity/inputs.json          input ids [B, S] and labels (-100 on the padded row's padding)
  parity/<combo>.safetensors  logits [B, S, V], loss [], grad.<parameter name> for every trained
                              parameter, for each option combination
  parity/carry-<combo>.safetensors  a second forward call fed the first call's memory
  train-4-steps/              init checkpoint, batch.json, expected.json (per-step losses, grad
                              norms, windows), final.safetensors after 4 AdamW steps
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baka_reference import CausalLM, Config, LayerMemory, perturb_norms, train_batch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "packages" / "model" / "__fixtures__"

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

TINY = dict(dim_model=32, dim_ff=64, n_layers=3, n_heads=4, n_vocab=80, n_ctx=8)

COMBOS = [
    ("xl", "previous-layer", "reset"),
    ("xl", "previous-layer", "absolute"),
    ("xl", "same-layer", "reset"),
    ("xl", "same-layer", "absolute"),
    ("none", "previous-layer", "reset"),
    ("none", "previous-layer", "absolute"),
]


def combo_name(memory: str, source: str, policy: str) -> str:
    return f"none-{policy}" if memory == "none" else f"xl-{source}-{policy}"


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=None, separators=(",", ":")) + "\n")


def state_dict_f32(model: CausalLM) -> dict[str, torch.Tensor]:
    return {name: t.detach().contiguous().clone() for name, t in model.state_dict().items()}


def write_checkpoint(directory: Path, model: CausalLM, upstream_only: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    config = model.config.to_json_dict(upstream_only=upstream_only)
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(state_dict_f32(model), str(directory / "model.safetensors"), metadata={"format": "pt"})


def make_model(seed: int, **overrides) -> CausalLM:
    torch.manual_seed(seed)
    model = CausalLM(Config(**{**TINY, **overrides}))
    generator = torch.Generator().manual_seed(seed + 1)
    perturb_norms(model, generator)
    return model


def parity_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """3 rows x 22 tokens (chunks 8, 8, 6); row 2 is padded (id 0, label -100) from position 13."""
    generator = torch.Generator().manual_seed(2024)
    ids = torch.randint(1, TINY["n_vocab"], (3, 22), generator=generator)
    ids[2, 13:] = 0
    labels = ids.clone()
    labels[2, 13:] = -100
    return ids, labels


def set_options(model: CausalLM, memory: str, source: str, policy: str) -> None:
    model.config.memory = memory
    model.config.memory_source = source
    model.config.position_policy = policy


def forward_fixture(model: CausalLM, ids, labels, path: Path) -> float:
    model.zero_grad(set_to_none=True)
    logits, loss, _ = model(ids, labels)
    loss.backward()
    tensors = {"logits": logits.detach().contiguous(), "loss": loss.detach().reshape(())}
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            tensors[f"grad.{name}"] = parameter.grad.detach().contiguous().clone()
    save_file(tensors, str(path), metadata={"format": "pt"})
    return loss.item()


def carry_fixture(model: CausalLM, ids, labels, path: Path, split: int) -> float:
    """Call 1 on tokens [0, split), call 2 on [split, S) with call 1's memory (detached)."""
    with torch.no_grad():
        _, _, memory = model(ids[:, :split], labels[:, :split])
        memory = [m.detached() for m in memory]
        logits, loss, _ = model(ids[:, split:], labels[:, split:], memory)
    save_file(
        {"logits": logits.contiguous(), "loss": loss.reshape(())},
        str(path),
        metadata={"format": "pt", "split": str(split)},
    )
    return loss.item()


def train_fixture(directory: Path) -> list[float]:
    model = make_model(99)
    write_checkpoint(directory / "init", model, upstream_only=False)
    generator = torch.Generator().manual_seed(7)
    ids = torch.randint(1, TINY["n_vocab"], (2, 32), generator=generator)
    attention_mask = torch.ones_like(ids)
    ids[1, 14:] = 0  # row 1 is padded from position 14: dropped from windows [16,32) and [24,32)
    attention_mask[1, 14:] = 0
    labels = ids.clone()
    labels[attention_mask == 0] = -100
    window = 16
    write_json(
        directory / "batch.json",
        {
            "input_ids": ids.tolist(),
            "labels": labels.tolist(),
            "attention_mask": attention_mask.tolist(),
            "pad_id": 0,
            "window": window,
            "epochs": 1,
            "passes": [0, window // 2],
            "optimizer": {"name": "AdamW", "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01},
            "clip_grad_norm": 1.0,
        },
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    steps = []
    for skip in (0, window // 2):
        steps += train_batch(model, optimizer, ids, labels, attention_mask, window, skip)
    write_json(directory / "expected.json", {"steps": steps, "losses": [s["loss"] for s in steps]})
    trained = {name: t for name, t in state_dict_f32(model).items()}
    save_file(trained, str(directory / "final.safetensors"), metadata={"format": "pt"})
    return [s["loss"] for s in steps]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    ids, labels = parity_inputs()
    write_json(OUT / "parity" / "inputs.json", {"input_ids": ids.tolist(), "labels": labels.tolist()})

    model = make_model(1234)
    write_checkpoint(OUT / "tiny-torch", model, upstream_only=True)
    for memory, source, policy in COMBOS:
        set_options(model, memory, source, policy)
        name = combo_name(memory, source, policy)
        loss = forward_fixture(model, ids, labels, OUT / "parity" / f"{name}.safetensors")
        print(f"parity/{name}: loss {loss:.6f}")
    for memory, source, policy in (("xl", "previous-layer", "absolute"), ("xl", "same-layer", "reset")):
        set_options(model, memory, source, policy)
        name = combo_name(memory, source, policy)
        loss = carry_fixture(model, ids, labels, OUT / "parity" / f"carry-{name}.safetensors", split=11)
        print(f"parity/carry-{name}: loss {loss:.6f}")

    # `baka eval` fixture: the unpadded rows, labels = input ids, default options
    set_options(model, "xl", "previous-layer", "reset")
    eval_ids = ids[:2]
    with torch.no_grad():
        _, loss, _ = model(eval_ids, eval_ids)
    write_json(OUT / "tiny-torch" / "input-ids.json", eval_ids.tolist())
    write_json(OUT / "tiny-torch" / "expected.json", {"loss": loss.item(), "tokens": int(eval_ids[:, 1:].numel())})
    print(f"tiny-torch eval: loss {loss.item():.6f}")

    losses = train_fixture(OUT / "train-4-steps")
    print(f"train-4-steps: losses {losses}")

    ours = OUT / "ours-checkpoint"
    if (ours / "model.safetensors").exists():
        subprocess.run([sys.executable, str(Path(__file__).with_name("load_ours.py"))], check=True)
    else:
        print("ours-checkpoint/ not found: write it with the TypeScript writer, then run load_ours.py")


if __name__ == "__main__":
    main()
