// Multi-query associative recall: a generated corpus on which memory must matter. Every chunk of
// a document writes key-value pairs and asks for the values of pairs written a chosen number of
// chunks earlier, so an answer is predictable only by a model that can still see (or remember)
// that earlier chunk. The corpus is ids in a vocabulary of its own (one character per symbol, with
// a bundled character-level tokenizer), deterministic from a seed; its documents also know where
// their answers are (`answers`), which the trainer's answer evaluation scores.
//
// A document is `chunks` chunks of `chunk` tokens. Chunk c holds, in this order:
//   ? k v ...   queries for pairs of chunk c - d, every d >= 1 of `distances` (shuffled)
//   k v ...     `pairs` new pairs: distinct keys per document, random values (shuffled)
//   ? k v ...   queries for pairs of this chunk (distance 0), when 0 is one of the distances
//   . . .       filler up to `chunk` tokens
// Every pair is assigned one distance (each distance `pairs / distances` times per chunk) and is
// asked for exactly once, in chunk c + d, unless that is past the document's end.

import { fileURLToPath } from 'node:url';
import { IGNORE_INDEX, mulberry32 } from '@baka/common';
import { DataError } from './errors';
import { mixSeed, shuffleInPlace } from './random';
import { type TokenDocuments, tokenDocumentsFromArrays } from './token-documents';

export const RECALL_FILLER = '.';
export const RECALL_QUERY = '?';
/** 52 keys. */
export const RECALL_KEYS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
/** 32 values: digits and Greek letters (chance accuracy 1/32). */
export const RECALL_VALUES = '0123456789αβγδεζηθικλμνξοπρστυφχ';
/** The vocabulary in id order: filler 0 (also the pad id), query marker 1, keys, values. */
export const RECALL_SYMBOLS: readonly string[] = [
  RECALL_FILLER,
  RECALL_QUERY,
  ...RECALL_KEYS,
  ...RECALL_VALUES,
];
const QUERY_ID = 1;
const FIRST_KEY = 2;
const FIRST_VALUE = FIRST_KEY + RECALL_KEYS.length;

export interface RecallOptions {
  seed: number;
  /** Tokens per chunk; the model's n_ctx should equal it. */
  chunk: number;
  /** New pairs per chunk (a multiple of the number of distances). */
  pairs: number;
  /** How many chunks after its pair each query comes (0 = the same chunk). */
  distances: number[];
  /** Chunks per document. */
  chunks: number;
  /** Documents of the train split and of the valid split. */
  train: number;
  valid: number;
  /** Which tokens are labels: only the answers (1, the default) or every token (0). */
  answersOnly: number;
}

export const RECALL_DEFAULTS: RecallOptions = {
  seed: 0,
  chunk: 20,
  pairs: 4,
  distances: [0, 1, 2, 3],
  chunks: 8,
  train: 4000,
  valid: 100,
  answersOnly: 1,
};

/** The corpus name's prefix: `recall` or `recall:key=value,...`. */
export const RECALL_CORPUS = 'recall';

/** Whether a corpus name is the recall corpus (with or without options). */
export function isRecallCorpus(corpus: string): boolean {
  return corpus === RECALL_CORPUS || corpus.startsWith(`${RECALL_CORPUS}:`);
}

function integer(key: string, text: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
    throw new DataError(`recall corpus: ${key} expects an integer >= ${min}, got '${text}'`);
  }
  return value;
}

/** `0-3` or `0,2,4` (`;`-free, so `0-3` is the usual form inside the corpus name). */
function parseDistances(text: string): number[] {
  const range = /^(\d+)-(\d+)$/.exec(text);
  const list = range
    ? Array.from(
        { length: Math.max(0, Number(range[2]) - Number(range[1]) + 1) },
        (_, i) => Number(range[1]) + i,
      )
    : text.split('+').map((part) => integer('distances', part, 0));
  if (list.length === 0 || new Set(list).size !== list.length) {
    throw new DataError(
      `recall corpus: distances expects a range like 0-3 or distinct values like 0+2+4, got '${text}'`,
    );
  }
  return list.sort((a, b) => a - b);
}

/**
 * The options of a recall corpus name: `recall` (the defaults) or
 * `recall:seed=1,chunk=32,pairs=4,distances=0-3,chunks=8,train=4000,valid=100` (any subset).
 */
export function parseRecallCorpus(corpus: string): RecallOptions {
  if (!isRecallCorpus(corpus)) throw new DataError(`'${corpus}' is not a recall corpus`);
  const options: RecallOptions = { ...RECALL_DEFAULTS, distances: [...RECALL_DEFAULTS.distances] };
  const rest = corpus.slice(RECALL_CORPUS.length + 1);
  for (const item of rest === '' ? [] : rest.split(',')) {
    const [key, value, extra] = item.split('=');
    if (value === undefined || extra !== undefined || !(key! in RECALL_DEFAULTS)) {
      throw new DataError(
        `recall corpus: expected key=value with a key of ${Object.keys(RECALL_DEFAULTS).join(', ')}, got '${item}'`,
      );
    }
    if (key === 'distances') options.distances = parseDistances(value);
    else {
      const min = key === 'seed' || key === 'valid' || key === 'answersOnly' ? 0 : 1;
      (options as unknown as Record<string, number>)[key!] = integer(key!, value, min);
    }
  }
  if (options.answersOnly > 1) {
    throw new DataError(`recall corpus: answersOnly expects 0 or 1, got ${options.answersOnly}`);
  }
  checkRecallOptions(options);
  return options;
}

/** Refuses options that do not fit: one line naming the field. */
export function checkRecallOptions(options: RecallOptions): void {
  const { chunk, pairs, distances, chunks } = options;
  if (pairs % distances.length !== 0) {
    throw new DataError(
      `recall corpus: pairs (${pairs}) must be a multiple of the number of distances (${distances.length})`,
    );
  }
  if (5 * pairs > chunk) {
    throw new DataError(
      `recall corpus: chunk (${chunk}) must hold pairs and their queries, at least 5 x pairs = ${5 * pairs} tokens`,
    );
  }
  const farthest = distances[distances.length - 1]!;
  if (farthest >= chunks) {
    throw new DataError(
      `recall corpus: distances up to ${farthest} need more than ${chunks} chunks per document`,
    );
  }
  if (pairs * chunks > RECALL_KEYS.length) {
    throw new DataError(
      `recall corpus: pairs x chunks (${pairs * chunks}) is more than the ${RECALL_KEYS.length} distinct keys a document can use`,
    );
  }
}

/** Document `index` (train documents first, then valid), a pure function of (seed, index). */
export function recallDocument(options: RecallOptions, index: number): Uint32Array {
  const { chunk, pairs, distances, chunks } = options;
  const random = mulberry32(mixSeed(options.seed, index, 0x7ec411));
  const keys = shuffleInPlace(
    Array.from({ length: RECALL_KEYS.length }, (_, i) => FIRST_KEY + i),
    random,
  );
  const ids = new Uint32Array(chunk * chunks); // zeros: filler
  // written[c]: the pairs of chunk c as [key, value, distance]
  const written: [number, number, number][][] = [];
  for (let c = 0; c < chunks; c++) {
    const assigned = Array.from({ length: pairs }, (_, i) => distances[i % distances.length]!);
    const block = shuffleInPlace(assigned, random).map((distance, i): [number, number, number] => [
      keys[c * pairs + i]!,
      FIRST_VALUE + Math.floor(random() * RECALL_VALUES.length),
      distance,
    ]);
    written.push(block);
    const earlier = shuffleInPlace(
      distances
        .filter((d) => d >= 1 && d <= c)
        .flatMap((d) => written[c - d]!.filter((pair) => pair[2] === d)),
      random,
    );
    const now = shuffleInPlace(
      block.filter((pair) => pair[2] === 0),
      random,
    );
    const body = [
      ...earlier.flatMap(([key, value]) => [QUERY_ID, key, value]),
      ...block.flatMap(([key, value]) => [key, value]),
      ...now.flatMap(([key, value]) => [QUERY_ID, key, value]),
    ];
    ids.set(body, c * chunk);
  }
  return ids;
}

/** One answer of a document: the position of the value token and its distance in chunks. */
export interface RecallAnswer {
  position: number;
  distance: number;
}

/**
 * The answers of a document, read from its ids: every `? k v` whose key was written earlier as a
 * pair; `distance` is the chunk of the answer minus the chunk of the pair's value, for chunks of
 * `chunkLength` tokens (the model's n_ctx, whatever the corpus was generated with).
 */
export function recallAnswers(ids: ArrayLike<number>, chunkLength: number): RecallAnswer[] {
  const pairValue = new Map<number, number>(); // key id -> position of its pair's value
  const answers: RecallAnswer[] = [];
  for (let i = 0; i + 1 < ids.length; i++) {
    const id = ids[i]!;
    if (id === QUERY_ID && i + 2 < ids.length) {
      const written = pairValue.get(ids[i + 1]!);
      if (written !== undefined) {
        const position = i + 2;
        answers.push({
          position,
          distance: Math.floor(position / chunkLength) - Math.floor(written / chunkLength),
        });
      }
      i += 2;
    } else if (id >= FIRST_KEY && id < FIRST_VALUE) {
      pairValue.set(id, i + 1);
      i += 1;
    }
  }
  return answers;
}

/** Token documents that also say where their answers are (see `recallAnswers`). */
export interface AnsweredDocuments extends TokenDocuments {
  answers(index: number, chunkLength: number): RecallAnswer[];
}

/** The recall corpus: `train` then `valid` documents, generated in memory. */
export function recallDocuments(options: RecallOptions): AnsweredDocuments {
  checkRecallOptions(options);
  const total = options.train + options.valid;
  const documents = Array.from({ length: total }, (_, i) => recallDocument(options, i));
  const splits =
    options.valid > 0
      ? { train: { start: 0, end: options.train }, valid: { start: options.train, end: total } }
      : { train: { start: 0, end: total } };
  const base = tokenDocumentsFromArrays(documents, { splits });
  const answers = (index: number, chunkLength: number) =>
    recallAnswers(base.document(index), chunkLength);
  if (!options.answersOnly) return { ...base, answers };
  return {
    ...base,
    answers,
    labels: (index) => {
      const labels = new Int32Array(base.documentLength(index)).fill(IGNORE_INDEX);
      const ids = base.document(index);
      for (const { position } of answers(index, 1)) labels[position] = ids[position]!;
      return labels;
    },
  };
}

/** Whether token documents carry answer positions (the recall corpus's do). */
export function hasAnswers(documents: TokenDocuments): documents is AnsweredDocuments {
  return typeof (documents as Partial<AnsweredDocuments>).answers === 'function';
}

/** One line for messages: what the corpus holds. */
export function describeRecall(options: RecallOptions): string {
  return `recall (generated, seed ${options.seed}): ${options.train} train + ${options.valid} valid documents of ${options.chunks} chunks x ${options.chunk} tokens, ${options.pairs} pairs per chunk, queries at distances ${options.distances.join(', ')} chunks`;
}

/** The tokenizer.json of the recall vocabulary: one character per id, no merges. */
export function recallTokenizerJson(): Record<string, unknown> {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(RECALL_SYMBOLS.map((symbol, id) => [symbol, id])),
      merges: [],
    },
  };
}

/** The bundled recall tokenizer file (what `recallTokenizerJson()` returns, as a file). */
export function recallTokenizerPath(): string {
  // src/ and dist/ both sit one level below the package root.
  return fileURLToPath(new URL('../corpora/recall-tokenizer.json', import.meta.url));
}
