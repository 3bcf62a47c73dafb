// Byte-level BPE training that reproduces Hugging Face's `BpeTrainer` (with the ByteLevel
// pre-tokenizer and `initial_alphabet = ByteLevel.alphabet()`): same vocabulary ids, same merges
// in the same order, saved as a tokenizer.json HF loads.
//
// The algorithm, as HF runs it:
// 1. ids: special tokens first, then the 256 byte-level characters sorted by code point;
// 2. every input line (with its line ending) is normalized and split by the ByteLevel regex;
//    identical words are counted once with their frequency;
// 3. pair counts over all words go into a max-heap ordered by (count desc, left id asc,
//    right id asc); each heap entry carries the set of words it was counted in;
// 4. pop the top entry; if its count is stale, push it back with the current count; stop when
//    the vocabulary is full or the count is below max(1, minFrequency); otherwise add the merged
//    token (reusing its id if the string exists already), merge it in the entry's words, and
//    push an entry for every pair that gained occurrences.
// The merged pair's own count is not decreased by the merge (HF does the same), which matters
// for identical results.
import { BYTE_TO_CHAR } from './byte-level.js';
import { TokenizerError } from './errors.js';
import { normalizeLikeHf } from './normalizers.js';
import { gpt2TokenEnd } from './gpt2-scanner.js';

export interface BpeTrainingOptions {
  /** Target vocabulary size, special tokens and the 256 byte characters included. */
  vocabSize: number;
  /** Pairs seen fewer times than this are not merged (HF's `min_frequency`, default 0). */
  minFrequency?: number;
  /** Special tokens, given the first ids in order (e.g. `<|endoftext|>`). */
  specialTokens?: string[];
  /** Normalizer of the trained tokenizer (default `'NFC'`, as GPT-NeoX). */
  normalizer?: 'NFC' | 'NFKC' | null;
  /** ByteLevel `add_prefix_space` (default false). */
  addPrefixSpace?: boolean;
}

export interface TrainingProgress {
  phase: 'merge';
  /** Vocabulary entries so far. */
  done: number;
  /** Target vocabulary size. */
  total: number;
}

interface HeapEntry {
  count: number;
  left: number;
  right: number;
  words: Set<number>;
}

/** Max-heap of merge candidates: higher count first, then the smaller (left, right) pair. */
class MergeQueue {
  private readonly items: HeapEntry[] = [];

  get size(): number {
    return this.items.length;
  }

  private before(a: HeapEntry, b: HeapEntry): boolean {
    if (a.count !== b.count) return a.count > b.count;
    if (a.left !== b.left) return a.left < b.left;
    return a.right < b.right;
  }

  push(entry: HeapEntry): void {
    const items = this.items;
    let index = items.length;
    items.push(entry);
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.before(entry, items[parent]!)) break;
      items[index] = items[parent]!;
      index = parent;
    }
    items[index] = entry;
  }

  pop(): HeapEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && this.before(items[right]!, items[left]!) ? right : left;
      if (!this.before(items[child]!, last)) break;
      items[index] = items[child]!;
      index = child;
    }
    items[index] = last;
    return top;
  }
}

const PAIR_BASE = 2 ** 21;
const pairKey = (left: number, right: number): number => left * PAIR_BASE + right;

/** Counts pre-tokenized words of the text it is fed, then trains. */
export class BpeTrainer {
  private readonly options: Required<Omit<BpeTrainingOptions, 'normalizer'>> & {
    normalizer: 'NFC' | 'NFKC' | null;
  };
  private readonly wordCounts = new Map<string, number>();

  constructor(options: BpeTrainingOptions) {
    const specialTokens = options.specialTokens ?? [];
    if (!Number.isInteger(options.vocabSize) || options.vocabSize < 1) {
      throw new TokenizerError(`vocabSize must be a positive integer, got ${options.vocabSize}`);
    }
    if (options.vocabSize >= PAIR_BASE) {
      throw new TokenizerError(`vocabSize must be below ${PAIR_BASE}, got ${options.vocabSize}`);
    }
    const minFrequency = options.minFrequency ?? 0;
    if (!Number.isInteger(minFrequency) || minFrequency < 0) {
      throw new TokenizerError(`minFrequency must be a non-negative integer, got ${minFrequency}`);
    }
    for (const token of specialTokens) {
      if (typeof token !== 'string' || token.length === 0) {
        throw new TokenizerError('special tokens must be non-empty strings');
      }
    }
    this.options = {
      vocabSize: options.vocabSize,
      minFrequency,
      specialTokens,
      normalizer: options.normalizer === undefined ? 'NFC' : options.normalizer,
      addPrefixSpace: options.addPrefixSpace ?? false,
    };
  }

  /** Adds one text; like HF's file reader it is split into lines that keep their `\n`. */
  feed(text: string): void {
    let start = 0;
    while (start < text.length) {
      const newline = text.indexOf('\n', start);
      const end = newline < 0 ? text.length : newline + 1;
      this.feedLine(text.slice(start, end));
      start = end;
    }
  }

  private feedLine(line: string): void {
    const { normalizer, addPrefixSpace } = this.options;
    if (normalizer) line = normalizeLikeHf(line, normalizer);
    if (line.length === 0) return;
    if (addPrefixSpace && !line.startsWith(' ')) line = ` ${line}`;
    const counts = this.wordCounts;
    for (let start = 0; start < line.length; ) {
      const end = gpt2TokenEnd(line, start);
      const word = line.slice(start, end);
      counts.set(word, (counts.get(word) ?? 0) + 1);
      start = end;
    }
  }

  /** Number of distinct words fed so far. */
  get distinctWords(): number {
    return this.wordCounts.size;
  }

  /** Runs the merges and returns the trained tokenizer.json object. */
  train(onProgress?: (progress: TrainingProgress) => void): Record<string, unknown> {
    const { vocabSize, minFrequency, specialTokens } = this.options;
    const tokens: string[] = [];
    const ids = new Map<string, number>();
    const add = (token: string): number => {
      const id = tokens.length;
      tokens.push(token);
      ids.set(token, id);
      return id;
    };
    for (const token of specialTokens) if (!ids.has(token)) add(token);
    const alphabet = [...BYTE_TO_CHAR].sort((a, b) => a.charCodeAt(0) - b.charCodeAt(0));
    for (const char of alphabet) if (!ids.has(char)) add(char);
    const byteIds = BYTE_TO_CHAR.map((char) => ids.get(char)!);

    // Words as symbol-id arrays with their counts.
    const encoder = new TextEncoder();
    const words: Int32Array[] = [];
    const lengths: number[] = [];
    const counts: number[] = [];
    for (const [word, count] of this.wordCounts) {
      const bytes = encoder.encode(word);
      words.push(Int32Array.from(bytes, (byte) => byteIds[byte]!));
      lengths.push(bytes.length);
      counts.push(count);
    }

    const pairCounts = new Map<number, number>();
    /** Pairs that gained occurrences since the last push, with the words they gained them in. */
    let gained = new Map<number, Set<number>>();
    const addWord = (key: number, word: number) => {
      const where = gained.get(key);
      if (where) where.add(word);
      else gained.set(key, new Set([word]));
    };
    words.forEach((symbols, index) => {
      for (let i = 0; i + 1 < lengths[index]!; i++) {
        const key = pairKey(symbols[i]!, symbols[i + 1]!);
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + counts[index]!);
        addWord(key, index);
      }
    });
    const queue = new MergeQueue();
    const pushGained = () => {
      for (const [key, where] of gained) {
        const count = pairCounts.get(key) ?? 0;
        if (count > 0) {
          queue.push({
            count,
            left: Math.floor(key / PAIR_BASE),
            right: key % PAIR_BASE,
            words: where,
          });
        }
      }
      gained = new Map();
    };
    pushGained();

    const merges: { left: number; right: number; id: number }[] = [];
    const change = (left: number, right: number, delta: number, word: number) => {
      const key = pairKey(left, right);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + delta * counts[word]!);
      if (delta > 0) addWord(key, word);
    };
    while (tokens.length < vocabSize && queue.size > 0) {
      const top = queue.pop()!;
      const current = pairCounts.get(pairKey(top.left, top.right)) ?? 0;
      if (top.count !== current) {
        top.count = current;
        queue.push(top);
        continue;
      }
      if (top.count < 1 || minFrequency > top.count) break;
      const merged = tokens[top.left]! + tokens[top.right]!;
      const id = ids.get(merged) ?? add(merged);
      merges.push({ left: top.left, right: top.right, id });
      for (const index of top.words) {
        const symbols = words[index]!;
        let length = lengths[index]!;
        for (let i = 0; i + 1 < length; i++) {
          if (symbols[i] !== top.left || symbols[i + 1] !== top.right) continue;
          if (i > 0) {
            change(symbols[i - 1]!, top.left, -1, index);
            change(symbols[i - 1]!, id, 1, index);
          }
          symbols[i] = id;
          symbols.copyWithin(i + 1, i + 2, length);
          length--;
          if (i + 1 < length) {
            change(top.right, symbols[i + 1]!, -1, index);
            change(id, symbols[i + 1]!, 1, index);
          }
        }
        lengths[index] = length;
      }
      pushGained();
      onProgress?.({ phase: 'merge', done: tokens.length, total: vocabSize });
    }

    // HF keeps one rank per pair (the last); merges are saved in rank order.
    const lastRank = new Map<number, number>();
    merges.forEach((merge, rank) => {
      lastRank.set(pairKey(merge.left, merge.right), rank);
    });
    const savedMerges = merges
      .filter((merge, rank) => lastRank.get(pairKey(merge.left, merge.right)) === rank)
      .map((merge) => [tokens[merge.left]!, tokens[merge.right]!]);
    return this.tokenizerJson(tokens, savedMerges);
  }

  private tokenizerJson(tokens: string[], merges: string[][]): Record<string, unknown> {
    const { specialTokens, normalizer, addPrefixSpace } = this.options;
    const vocab: Record<string, number> = {};
    tokens.forEach((token, id) => {
      vocab[token] = id;
    });
    const byteLevel = (prefix: boolean) => ({
      type: 'ByteLevel',
      add_prefix_space: prefix,
      trim_offsets: true,
      use_regex: true,
    });
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [...new Set(specialTokens)].map((content) => ({
        id: vocab[content],
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: normalizer ? { type: normalizer } : null,
      pre_tokenizer: byteLevel(addPrefixSpace),
      post_processor: byteLevel(true),
      decoder: byteLevel(true),
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges,
      },
    };
  }
}

/** Trains a byte-level BPE on `texts` and returns the tokenizer.json object. */
export function trainBpe(
  texts: Iterable<string>,
  options: BpeTrainingOptions,
  onProgress?: (progress: TrainingProgress) => void,
): Record<string, unknown> {
  const trainer = new BpeTrainer(options);
  for (const text of texts) trainer.feed(text);
  return trainer.train(onProgress);
}
