"""Writes the parity fixtures of the model variants into packages/model/__fixtures__/variants/.

Run from the repository root:  python3 tools/reference/make_variant_fixtures.py
Deterministic (fixed seeds, fp32, 1 thread). The inputs are parity/inputs.json (3 rows x 22 tokens,
chunks 8, 8, 6, row 2 padded from position 13), so every variant is checked over three chunks
with XL memory and a padded row.

variants/<name>/
  config.json        our config of the variant (model_type baka_xl + the variant's fields)
  model.safetensors  its weights (upstream state_dict names, PyTorch layout)
  expected.safetensors  logits [3, 22, V], loss [], grad.<parameter> for every trained parameter
  carry.safetensors  logits and loss of a second call over tokens 11..21 fed the (detached)
                     memory of a first call over tokens 0..10 (metadata `split`; for RMT the
                     memory includes the write tokens m)
  train-upstream.json  (rmt only) upstream 005's procedure on the same rows: windows of 16,
                     passes skipping 0 and n_ctx // 2 tokens, AdamW defaults, clip 0.5; per-step
                     loss, grad norm, window start/length/rows
Then qk-*/ and split-norm/ (make_qk_norm_fixtures.py), upstream-004/, upstream-005/ and upstream-007/ (see upstream_checkpoints.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baka_reference import CausalLM, Config, perturb_norms  # noqa: E402
from baka_reference import train_batch  # noqa: E402
from make_fixtures import TINY, carry_fixture, forward_fixture, write_checkpoint, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "packages" / "model" / "__fixtures__"
OUT = FIXTURES / "variants"

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

# name -> config overrides of the TINY model
VARIANTS = {
    # thin layers (upstream 00x_thin): attention-only layers 1 and 3, a thick first MLP and an
    # hourglass third one; thin layers keep upstream's rotary frequencies x 1e-4
    "thin-layers": dict(
        n_layers=4,
        layer_kinds=["standard", "attention-only", "standard", "attention-only"],
        layer_dim_ff=[128, 64, 48, 64],
    ),
    # upstream 004_pause head: 3 pauses per chunk (step 8 // 3 = 2: slots 0, 2, 4), RMSNorm,
    # previous-layer XL
    "pause": dict(n_pauses=3, norm="rmsnorm"),
    # upstream 005_rmt head: 2 pauses (slots 0, 4), 3 RMT tokens, same-layer XL, LayerNorm,
    # flash attention's bottom-right causal mask
    "rmt": dict(n_pauses=2, n_rmt_tokens=3, memory_source="same-layer"),
    # upstream 007_mamba's layer: y + Mamba(LayerNorm(y)) in layers 0 and 2 (i % 2 == 0), on the
    # 003 model (no pauses or RMT); A_log, D and dt moved off their init (perturb_mamba)
    "mamba": dict(mamba_each_nth_layer=2),
    # ours: the same Mamba layers carrying their conv window and scan state from chunk to chunk
    # (and, in the returned memory, into the second call of carry.safetensors)
    "mamba-carry": dict(mamba_each_nth_layer=2, mamba_carry_state=True),
    # Memory Transformer tokens (memory_tokens.py): 2 learned tokens in front of every chunk, kept
    # out of the XL memory; a group of 2 in front of every 3 tokens with absolute positions (the
    # memory entry ends where its chunk ends); persistent memory k/v; all of them at once with
    # the memory tokens' k/v in the XL memory
    "memory-tokens": dict(n_memory_tokens=2),
    "memory-tokens-every": dict(n_memory_tokens=2, memory_tokens_every=3, position_policy="absolute"),
    "mem-kv": dict(n_mem_kv=3),
    "memory-combined": dict(n_memory_tokens=2, memory_tokens_every=4, memory_tokens_in_xl=True, n_mem_kv=2),
    # persistent memory k/v on 005's pauses and RMT with its hand-built mask (the read block's
    # columns sit behind the persistent ones)
    "mem-kv-rmt": dict(n_mem_kv=2, n_pauses=2, n_rmt_tokens=3, rmt_mask="upstream", memory_source="same-layer"),
}


def load_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    data = json.loads((FIXTURES / "parity" / "inputs.json").read_text())
    return torch.tensor(data["input_ids"]), torch.tensor(data["labels"])


def main(only: list[str]) -> None:
    """Writes every variant, or only the names given (then without the upstream checkpoints)."""
    ids, labels = load_inputs()
    for index, (name, overrides) in enumerate(VARIANTS.items()):
        if only and name not in only:
            continue
        torch.manual_seed(3000 + index)
        model = CausalLM(Config(**{**TINY, **overrides}))
        perturb_norms(model, torch.Generator().manual_seed(4000 + index))
        perturb_mamba(model, torch.Generator().manual_seed(5000 + index))
        directory = OUT / name
        write_checkpoint(directory, model, upstream_only=False)
        loss = forward_fixture(model, ids, labels, directory / "expected.safetensors")
        carried = carry_fixture(model, ids, labels, directory / "carry.safetensors", split=11)
        print(f"variants/{name}: loss {loss:.6f}, carried second call {carried:.6f}")
        if name == "mamba-carry":
            check_mamba_continuation(model)
        if name == "rmt":
            train_upstream(model, ids, labels, directory / "train-upstream.json")
    if only:
        return
    import make_qk_norm_fixtures
    import upstream_checkpoints

    make_qk_norm_fixtures.main()
    upstream_checkpoints.main()


def perturb_mamba(model: CausalLM, generator: torch.Generator) -> None:
    """A_log's rows all start as log(1..N) and D as ones: noise makes a transposed A or a lost D
    show. dt starts at 1e-3..1e-1, where every decay is ~1 and the scan barely reaches the logits:
    dt_proj.bias + 2 puts dt near 2 (decays down to e^-30), so the logits depend on the scan."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("mamba.A_log") or name.endswith("mamba.D"):
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
            if name.endswith("mamba.dt_proj.bias"):
                parameter.add_(2.0)


def check_mamba_continuation(model: CausalLM) -> None:
    """The block run over a sequence in two calls, the second continuing the first's state, equals
    one call over the whole (so a carried state is the recurrence continued, not an approximation);
    and starting the second call from zero instead does not (negative control)."""
    block = next(layer.mamba for layer in model.model.layers if layer.mamba is not None)
    h = torch.randn(2, 23, model.config.dim_model, generator=torch.Generator().manual_seed(17))
    with torch.no_grad():
        whole, _ = block(h)
        first, state = block(h[:, :10])
        second, _ = block(h[:, 10:], state)
        fresh, _ = block(h[:, 10:])
    error = (torch.cat((first, second), dim=1) - whole).abs().max().item()
    control = (fresh - whole[:, 10:]).abs().max().item()
    assert error < 1e-5 and control > 1e-3, (error, control)
    print(f"mamba-carry: two calls vs one {error:.1e} (restarting from zero: {control:.1e})")


def train_upstream(model: CausalLM, ids, labels, path: Path) -> None:
    """005's training procedure from the checkpoint just written (memory not carried: upstream)."""
    attention_mask = (labels != -100).long()
    optimizer = torch.optim.AdamW(model.parameters())
    window, steps = 16, []
    for skip in (0, model.config.n_ctx // 2):
        steps += train_batch(model, optimizer, ids, labels, attention_mask, window, skip, clip=0.5)
    procedure = {"window": window, "passes": [0, model.config.n_ctx // 2], "clip_grad_norm": 0.5,
                 "optimizer": "torch.optim.AdamW defaults"}
    write_json(path, {**procedure, "steps": steps, "losses": [s["loss"] for s in steps]})
    print(f"{path.parent.name}/train-upstream.json: losses {[round(s['loss'], 6) for s in steps]}")


if __name__ == "__main__":
    main(sys.argv[1:])
