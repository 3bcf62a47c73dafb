"""Trains a byte-level BPE with Hugging Face `tokenizers` (Python, 0.23.x) on the committed corpus
and saves it, plus the ids of a test text, as fixtures for @baka/tokenizer's trainer test.

Run from the repository root: python3 tools/tokenizer/train-bpe-fixture.py
Writes packages/tokenizer/src/__fixtures__/<run>.tokenizer.json and <run>.json for each run.
"""

import json
from pathlib import Path

import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

FIXTURES = Path("packages/tokenizer/src/__fixtures__")
CORPUS = FIXTURES / "train-corpus.txt"
# Two runs: one stops at the vocabulary size, one at the minimum frequency.
RUNS = {
    "hf-trained-bpe": {
        "vocab_size": 1000,
        "min_frequency": 2,
        "special_tokens": ["<|endoftext|>", "<|padding|>"],
    },
    "hf-trained-bpe-min-frequency": {
        "vocab_size": 5000,
        "min_frequency": 25,
        "special_tokens": ["<|endoftext|>"],
    },
}
TEST_TEXT = (
    "ROMEO: But soft, what light through yonder window breaks?\n"
    "Ça va? 日本語 😀 <|endoftext|> numbers 2024 and  double spaces\n"
)


def train(name: str, settings: dict) -> None:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=settings["vocab_size"],
        min_frequency=settings["min_frequency"],
        special_tokens=settings["special_tokens"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(CORPUS)], trainer)
    tokenizer.save(str(FIXTURES / f"{name}.tokenizer.json"))

    ids = tokenizer.encode(TEST_TEXT).ids
    (FIXTURES / f"{name}.json").write_text(
        json.dumps(
            {
                "tokenizers_version": tokenizers.__version__,
                "corpus": CORPUS.name,
                "settings": settings,
                "normalizer": "NFC",
                "test_text": TEST_TEXT,
                "test_ids": ids,
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"{name}: vocab {tokenizer.get_vocab_size()}, test text -> {len(ids)} ids")


for name, settings in RUNS.items():
    train(name, settings)
