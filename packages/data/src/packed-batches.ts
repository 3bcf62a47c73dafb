// Packed mode (nanoGPT style): the split's documents as one contiguous token stream, cut into
// [rows, length] blocks at uniformly random offsets. Faster than article batches (no padding) but
// ignores document boundaries. Batch k's offsets depend only on (seed, k), so a cursor resumes
// exactly.
import { type DataCursor, startCursor } from './cursor';
import { DataError } from './errors';
import { mulberry32 } from '@baka/common';
import { mixSeed, randomInt } from './random';
import { type SplitName, type TokenDocuments, splitRange } from './token-documents';

export interface PackedBatch {
  /** Row-major [rows, length]. */
  ids: Int32Array;
  /** = ids (the loss shifts labels by one position itself). */
  labels: Int32Array;
  rows: number;
  length: number;
  /** Stream offset of each row's first token. */
  offsets: number[];
  /** The cursor that resumes right after this batch. */
  cursor: DataCursor;
}

export interface PackedBatchOptions {
  /** Rows per batch (B). */
  batchSize: number;
  /** Tokens per row (T). */
  length: number;
  seed: number;
  split?: SplitName;
  cursor?: DataCursor;
  /** Stop after this many batches in total (counted from position 0); default: never stop. */
  batches?: number;
}

/** The global token range [start, end) covered by a split's documents. */
export function splitTokenRange(
  documents: TokenDocuments,
  split: SplitName,
): { start: number; end: number } {
  const range = splitRange(documents, split);
  const start =
    range.start < documents.numDocuments
      ? documents.documentStart(range.start)
      : documents.numTokens;
  const end =
    range.end < documents.numDocuments ? documents.documentStart(range.end) : documents.numTokens;
  return { start, end };
}

export function* packedBatches(
  documents: TokenDocuments,
  options: PackedBatchOptions,
): Generator<PackedBatch> {
  const { batchSize, length } = options;
  for (const [name, value] of [
    ['batchSize', batchSize],
    ['length', length],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new DataError(`${name} must be a positive integer, got ${value}`);
    }
  }
  const split = options.split ?? 'train';
  const cursor = startCursor(options.seed, options.cursor);
  const stream = splitTokenRange(documents, split);
  const available = stream.end - stream.start;
  if (available < length) {
    throw new DataError(
      `the '${split}' split has ${available} tokens, fewer than one row of ${length}`,
    );
  }
  const total = options.batches ?? Number.POSITIVE_INFINITY;
  for (let position = cursor.position; position < total; position++) {
    const random = mulberry32(mixSeed(cursor.seed, cursor.epoch, position));
    const ids = new Int32Array(batchSize * length);
    const offsets: number[] = [];
    for (let row = 0; row < batchSize; row++) {
      const offset = stream.start + randomInt(random, available - length + 1);
      offsets.push(offset);
      ids.set(documents.tokens(offset, offset + length), row * length);
    }
    yield {
      ids,
      labels: ids.slice(),
      rows: batchSize,
      length,
      offsets,
      cursor: { epoch: cursor.epoch, position: position + 1, seed: cursor.seed },
    };
  }
}
