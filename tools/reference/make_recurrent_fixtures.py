"""Writes the Block-Recurrent Transformer fixtures: packages/model/__fixtures__/variants/recurrent-{fixed,lstm}/.

Run from the repository root:  python3 tools/reference/make_recurrent_fixtures.py
The tiny model with n_ctx 6 on parity/inputs.json (3 rows x 22 tokens: four chunks 6, 6, 6, 4;
row 2 padded from position 13), 5 state vectors (not n_ctx, so S and T cannot be confused), the
norms moved off their init (the state norm too). Besides config.json, model.safetensors,
expected.safetensors (logits, loss, every gradient) and carry.safetensors (a second call over
tokens 11..21 fed the detached state and memory of a first call over 0..10), expected.safetensors
holds `first_chunk_grad` [3, 6, D]: the gradient of the last chunk's loss (positions 18..20
predicting 19..21) with respect to the first chunk's embeddings, which only the state carries
that far (`first_chunk_grad_plain`: the same model without recurrent layers, all zeros).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baka_reference import CausalLM, Config, causal_lm_loss, perturb_norms  # noqa: E402
from make_fixtures import TINY, carry_fixture, forward_fixture, write_checkpoint  # noqa: E402
from make_variant_fixtures import OUT, load_inputs  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

RECURRENT = {
    # one recurrent layer near the top (the paper's placement), the fixed (bias-only) gate
    "recurrent-fixed": dict(n_ctx=6, recurrent_layers=[1], n_state_vectors=5, state_gate="fixed"),
    # two recurrent layers with LSTM gates, over RMSNorm
    "recurrent-lstm": dict(n_ctx=6, recurrent_layers=[0, 2], n_state_vectors=5, state_gate="lstm", norm="rmsnorm"),
}
LAST_CHUNK = 18  # the fourth chunk's first position (n_ctx 6)


def first_chunk_grad(model: CausalLM, ids, labels) -> torch.Tensor:
    embedded = model.vocab_in(ids).detach().requires_grad_(True)
    y, _ = model.model(embedded)
    logits = model.vocab_out(model.norm_out(y))
    loss = causal_lm_loss(logits[:, LAST_CHUNK:], labels[:, LAST_CHUNK:])
    (grad,) = torch.autograd.grad(loss, embedded)
    return grad[:, : model.config.n_ctx].contiguous()


def main() -> None:
    ids, labels = load_inputs()
    for index, (name, overrides) in enumerate(RECURRENT.items()):
        torch.manual_seed(6000 + index)
        model = CausalLM(Config(**{**TINY, **overrides}))
        perturb_norms(model, torch.Generator().manual_seed(7000 + index))
        directory = OUT / name
        write_checkpoint(directory, model, upstream_only=False)
        loss = forward_fixture(model, ids, labels, directory / "expected.safetensors")
        carried = carry_fixture(model, ids, labels, directory / "carry.safetensors", split=11)
        grad = first_chunk_grad(model, ids, labels)
        plain = CausalLM(Config(**{**TINY, **overrides, "recurrent_layers": []}))
        plain.load_state_dict({k: v for k, v in model.state_dict().items() if ".recurrent." not in k})
        grad_plain = first_chunk_grad(plain, ids, labels)
        path = directory / "expected.safetensors"
        tensors = load_file(str(path))
        tensors.update(first_chunk_grad=grad.detach(), first_chunk_grad_plain=grad_plain.detach())
        save_file(tensors, str(path), metadata={"format": "pt"})
        print(
            f"variants/{name}: loss {loss:.6f}, carried second call {carried:.6f}, "
            f"|d loss(chunk 4) / d chunk 1| max {grad.abs().max():.3e} (without recurrence {grad_plain.abs().max():.1e})"
        )


if __name__ == "__main__":
    main()
