"""Loads upstream BakaLLM's own model code (a branch's baka3.py) to check our reference against it.

Upstream's module imports its training dependencies at the top (wandb, transformers' ACT2FN, mmh3,
its data module). None of them is needed to build and run the model, so stand-ins are registered
in sys.modules first. Nothing of upstream's is copied here: the file is read from a local clone
of GitHub Maykeye/BakaLLM (`--upstream DIR`, or $BAKA_UPSTREAM) at the commit asked for.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path


def _stand_ins() -> None:
    for name in ("wandb", "mmh3"):
        sys.modules.setdefault(name, types.ModuleType(name))
    if "transformers.activations" not in sys.modules:
        transformers = types.ModuleType("transformers")
        activations = types.ModuleType("transformers.activations")
        activations.ACT2FN = {}
        transformers.activations = activations
        transformers.set_seed = None  # 005 imports it for its main()
        sys.modules["transformers"] = transformers
        sys.modules["transformers.activations"] = activations
    data = types.ModuleType("bakadata")
    for attribute in ("get_dl", "get_tokenizer", "batch_iterator", "MiniBatch"):
        setattr(data, attribute, None)
    sys.modules["bakadata"] = data
    logger = types.ModuleType("float_logger")  # 005's training logger
    logger.flog = None
    sys.modules["float_logger"] = logger


def load_upstream(commit: str, clone: str | None = None, file: str = "baka3.py", modules: dict | None = None) -> types.ModuleType:
    """Imports `file` of upstream's clone at `commit` as a fresh module (`modules`: more stand-ins)."""
    clone = clone or os.environ.get("BAKA_UPSTREAM")
    if not clone:
        raise SystemExit("pass --upstream DIR (a clone of Maykeye/BakaLLM) or set BAKA_UPSTREAM")
    source = subprocess.check_output(["git", "-C", clone, "show", f"{commit}:{file}"])
    _stand_ins()
    sys.modules.update(modules or {})
    directory = Path(tempfile.mkdtemp(prefix="baka-upstream-"))
    path = directory / f"upstream_{commit[:10]}.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
