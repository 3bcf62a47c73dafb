"""PyTorch side of the model benchmark: one measurement per process (so the peak resident memory
belongs to that measurement alone). Imports the project's reference model from tools/reference/
read-only.

    python3 bench/torch/worker.py '<json list of tasks>'

Prints `RESULT <json list of results>` as its last stdout line. Tasks (field `kind`):
  checkpoint  write config.json + model.safetensors for `config` (seeded init) into `dir`
  train       forward + backward + clip 1.0 + AdamW per window of `batch` x `window` ids
  eval        loss without gradients over documents of each length in `lengths` (batch 1)
  generate    feed `tokens` ids one at a time through the KV-cache decoder, time each
  first-token a `prompt`-token prompt through a fresh decoder in one call up to the next-token
              logits on the host, `reps` times (the first in the process included)
  matmul      median time of a `size` x `size` fp32 matmul (the machine's peak)
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "reference"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from baka_reference import CausalLM, Config  # noqa: E402
from decoder import TorchDecoder  # noqa: E402

CONFIG_FIELDS = set(Config.__dataclass_fields__)


def status_bytes(field: str) -> int:
    """A memory line of /proc/self/status (VmHWM: peak resident, VmRSS: resident now)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return -1


def read_ids(path: str) -> torch.Tensor:
    data = Path(path).read_bytes()
    return torch.frombuffer(bytearray(data), dtype=torch.int32).to(torch.int64)


def make_config(fields: dict) -> Config:
    return Config(**{key: value for key, value in fields.items() if key in CONFIG_FIELDS})


def load_model(directory: str) -> CausalLM:
    config = json.loads((Path(directory) / "config.json").read_text())
    model = CausalLM(make_config(config))
    state = load_file(str(Path(directory) / "model.safetensors"))
    model.load_state_dict(state)
    return model


def task_checkpoint(task: dict) -> dict:
    torch.manual_seed(task.get("seed", 0))
    model = CausalLM(make_config(task["config"]))
    directory = Path(task["dir"])
    temporary = directory.with_name(directory.name + f".tmp-{os.getpid()}")
    temporary.mkdir(parents=True, exist_ok=True)
    config = model.config.to_json_dict()
    (temporary / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    state = {name: t.detach().contiguous().clone() for name, t in model.state_dict().items()}
    save_file(state, str(temporary / "model.safetensors"), metadata={"format": "pt"})
    if directory.exists():  # another run wrote it meanwhile: keep theirs
        shutil.rmtree(temporary)
    else:
        os.replace(temporary, directory)
    params = sum(t.numel() for name, t in state.items() if not name.endswith("rot.freqs"))
    return {"dir": str(directory), "parameters": params}


def task_train(task: dict) -> dict:
    model = load_model(task["checkpoint"])
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    ids = read_ids(task["ids"])
    batch, window = task["batch"], task["window"]
    warmup, steps = task["warmup"], task["steps"]
    times, losses, norms = [], [], []
    for step in range(warmup + steps):
        start = (task.get("offset", 0) + step * batch * window) % (ids.numel() - batch * window)
        rows = ids[start : start + batch * window].view(batch, window)  # [B, T]
        began = time.perf_counter()
        _, loss, _ = model(rows, rows, None)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        value = loss.item()
        elapsed = time.perf_counter() - began
        losses.append(value)
        norms.append(norm.item())
        if step >= warmup:
            times.append(elapsed)
    return {"seconds": times, "losses": losses, "gradNorms": norms, "tokensPerStep": batch * window}


def task_eval(task: dict) -> dict:
    model = load_model(task["checkpoint"])
    model.eval()
    ids = read_ids(task["ids"])
    out = []
    with torch.no_grad():
        for length in task["lengths"]:
            times, losses = [], []
            for rep in range(task["warmup"] + task["reps"]):
                start = (rep * length) % (ids.numel() - length)
                doc = ids[start : start + length].view(1, length)  # [1, L]
                began = time.perf_counter()
                _, loss, _ = model(doc, doc, None)
                value = loss.item()
                elapsed = time.perf_counter() - began
                losses.append(value)
                if rep >= task["warmup"]:
                    times.append(elapsed)
            out.append({"length": length, "seconds": times, "losses": losses})
    return {"lengths": out}


def task_generate(task: dict) -> dict:
    model = load_model(task["checkpoint"])
    model.eval()
    ids = read_ids(task["ids"])[: task["tokens"]].tolist()
    decoder = TorchDecoder(model)
    times = []
    last = None
    for token in ids:
        began = time.perf_counter()
        logits = decoder.append(token)
        chosen = int(torch.argmax(logits))  # what a sampler would read: the logits on the host
        times.append(time.perf_counter() - began)
        last = (chosen, float(logits.sum()))
    result = {"seconds": times, "lastArgmax": last[0], "lastLogitSum": last[1]}
    if task.get("check"):
        with torch.no_grad():
            full, _, _ = model(torch.tensor([ids]), None, None)
        result["maxAbsDifference"] = float((full[0, -1] - logits).abs().max())
    return result


def task_first_token(task: dict) -> dict:
    model = load_model(task["checkpoint"])
    model.eval()
    prompt = read_ids(task["ids"])[: task["prompt"]].tolist()
    times = []
    chosen = -1
    for _ in range(task["reps"]):
        began = time.perf_counter()
        decoder = TorchDecoder(model)
        logits = decoder.append(prompt)
        chosen = int(torch.argmax(logits))  # the sampler's read of the logits on the host
        times.append(time.perf_counter() - began)
        del decoder
    result = {"seconds": times, "argmax": chosen}
    if task.get("check"):
        with torch.no_grad():
            full, _, _ = model(torch.tensor([prompt]), None, None)
        result["maxAbsDifference"] = float((full[0, -1] - logits).abs().max())
    return result


def task_matmul(task: dict) -> dict:
    size = task["size"]
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    times = []
    for rep in range(task["warmup"] + task["reps"]):
        began = time.perf_counter()
        c = a @ b
        float(c[0, 0])
        elapsed = time.perf_counter() - began
        if rep >= task["warmup"]:
            times.append(elapsed)
    median = statistics.median(times)
    return {"seconds": times, "gflops": 2 * size**3 / median / 1e9}


TASKS = {
    "checkpoint": task_checkpoint,
    "train": task_train,
    "eval": task_eval,
    "generate": task_generate,
    "first-token": task_first_token,
    "matmul": task_matmul,
}


def main() -> None:
    """argv[1]: a JSON list of tasks, run in order in this process; one RESULT line with a list."""
    tasks = json.loads(sys.argv[1])
    start_rss = status_bytes("VmRSS")  # resident once Python and torch are loaded
    results = []
    for task in tasks:
        torch.set_num_threads(int(task.get("threads", os.cpu_count() or 1)))
        began = time.perf_counter()
        result = TASKS[task["kind"]](task)
        result.update(
            {
                "side": "torch",
                "kind": task["kind"],
                "threads": torch.get_num_threads(),
                "version": f"torch {torch.__version__}",
                # VmHWM: the process's peak so far (exact for the first task of the list)
                "peakRssBytes": status_bytes("VmHWM"),
                "startRssBytes": start_rss,
                "wallSeconds": time.perf_counter() - began,
            }
        )
        results.append(result)
    sys.stdout.write("RESULT " + json.dumps(results) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
