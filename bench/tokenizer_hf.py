"""The Hugging Face side of bench/tokenizer.ts: Python `tokenizers` (Rust) encoding a corpus.

Usage: python3 bench/tokenizer_hf.py TOKENIZER_JSON CORPUS
Prints {"version", "threads"} once, then answers each command line on stdin with one JSON line:
  single  Tokenizer.encode of the whole corpus (one thread)
  batch   encode_batch of its paragraphs (Rayon, all cores)
with {"tokens", "wall", "cpu"} (seconds; cpu is this process's user+system time). The TypeScript
side alternates its own runs with these so both see the same machine load.
"""

import json
import os
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

path, corpus_path = sys.argv[1], sys.argv[2]
tokenizer = Tokenizer.from_file(path)
text = open(corpus_path, encoding="utf-8").read()
paragraphs = text.split("\n\n")

print(json.dumps({"version": tokenizers.__version__, "threads": os.cpu_count()}), flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "quit":
        break
    wall, cpu = time.perf_counter(), time.process_time()
    if command == "single":
        tokens = len(tokenizer.encode(text).ids)
    elif command == "batch":
        tokens = sum(len(encoding.ids) for encoding in tokenizer.encode_batch(paragraphs))
    else:
        raise SystemExit(f"unknown command {command!r}")
    result = {"tokens": tokens, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    print(json.dumps(result), flush=True)
