"""Probe how Hugging Face `tokenizers` (Rust: Oniguruma + unicode-normalization tables) classifies
code points, for generate-unicode-tables.ts.

Usage: python3 hf-unicode-probe.py STRINGS.json > OUT.json
STRINGS.json is {"strings": [...]}; OUT.json holds, as lists of [first, last] code point ranges,
the sets HF's ByteLevel regex treats as \\p{L}, \\p{N} and \\s, the set Oniguruma's \\w matches, the characters the Punctuation and Digits pre-tokenizers split on, and for every input string its
NFC, NFD, NFKC and NFKD under HF's normalizers.
"""

import json
import sys

from tokenizers import Regex, normalizers, pre_tokenizers

byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
# Split patterns are Oniguruma regexes too: a word character is removed entirely.
word_split = pre_tokenizers.Split(Regex(r"\w"), behavior="removed")
# The Punctuation and Digits pre-tokenizers use Rust character tables of their own.
punctuation = pre_tokenizers.Punctuation(behavior="isolated")
digits = pre_tokenizers.Digits(individual_digits=True)


def pieces(text: str) -> int:
    return len(byte_level.pre_tokenize_str(text))


def ranges(flags):
    out = []
    for cp in flags:
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


letter, number, whitespace, word, punct, digit = [], [], [], [], [], []
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF:
        continue
    c = chr(cp)
    if not word_split.pre_tokenize_str(c):
        word.append(cp)
    if len(punctuation.pre_tokenize_str("a" + c + "a")) == 3:
        punct.append(cp)
    if len(digits.pre_tokenize_str(c + c)) == 2:
        digit.append(cp)
    # 'a' + c is one word only when c is a letter; '1' + c only when c is a number.
    if pieces("a" + c) == 1:
        letter.append(cp)
    elif pieces("1" + c) == 1:
        number.append(cp)
    # Punctuation-like characters join the following '!'; whitespace does not (the space is
    # special: ' ?' lets it prefix punctuation).
    elif c == " " or pieces(c + "!") == 2:
        whitespace.append(cp)

strings = json.load(open(sys.argv[1], encoding="utf-8"))["strings"]
forms = {name: getattr(normalizers, name)() for name in ("NFC", "NFD", "NFKC", "NFKD")}
result = {
    "tokenizers_version": __import__("tokenizers").__version__,
    "letter": ranges(letter),
    "number": ranges(number),
    "whitespace": ranges(whitespace),
    "word": ranges(word),
    "punctuation": ranges(punct),
    "digit": ranges(digit),
    "normalized": {name: [n.normalize_str(s) for s in strings] for name, n in forms.items()},
}
json.dump(result, sys.stdout, ensure_ascii=True)
