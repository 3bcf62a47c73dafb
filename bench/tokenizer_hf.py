"""The Hugging Face side of bench/tokenizer.ts: times Python `tokenizers` (Rust) encoding a corpus.

Usage: python3 bench/tokenizer_hf.py TOKENIZER_JSON CORPUS RUNS
Prints one JSON object: the version, and for `single` (Tokenizer.encode of the whole text on one
thread) and `batch` (encode_batch of the paragraphs, Rayon on all cores) the token count and the
seconds of every run.
"""

import json
import os
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

path, corpus_path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
tokenizer = Tokenizer.from_file(path)
text = open(corpus_path, encoding="utf-8").read()
paragraphs = text.split("\n\n")


def timed(encode):
    seconds, tokens = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        tokens = encode()
        seconds.append(time.perf_counter() - start)
    return {"tokens": tokens, "seconds": seconds}


single = timed(lambda: len(tokenizer.encode(text).ids))
batch = timed(lambda: sum(len(e.ids) for e in tokenizer.encode_batch(paragraphs)))
print(
    json.dumps(
        {
            "version": tokenizers.__version__,
            "threads": os.cpu_count(),
            "single": single,
            "batch": batch,
        }
    )
)
