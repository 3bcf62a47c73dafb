// Upstream's batching (docs/architecture.md §3): batches of N whole documents (articles),
// right-padded to the longest with the pad id; labels are the ids with padding set to -100. The
// order of documents is a seeded shuffle per epoch, so a cursor {epoch, position, seed} resumes
// exactly.
import { type DataCursor, startCursor } from './cursor';
import { DataError } from './errors';
import { IGNORE_INDEX, mulberry32 } from '@baka/common';
import { mixSeed, shuffleInPlace } from './random';
import { type SplitName, type TokenDocuments, splitRange } from './token-documents';

/** The label value the loss ignores (defined once, in @baka/common). */
export { IGNORE_INDEX };

/** A batch of whole documents, row-major [rows, length]. */
export interface ArticleBatch {
  ids: Int32Array;
  /** ids with every padding position set to -100. */
  labels: Int32Array;
  rows: number;
  /** Columns: the longest document's token count. */
  length: number;
  /** The document index of each row (empty for `--input-ids` batches). */
  documents: number[];
  /** Real (unpadded) token count of each row. */
  lengths: number[];
  /** The cursor that resumes right after this batch. */
  cursor?: DataCursor;
}

export interface ArticleBatchOptions {
  /** Documents per batch (upstream: 5). */
  batchSize?: number;
  /** Id written into padding positions (upstream: 0). */
  padId?: number;
  /** Seed of the per-epoch document order. */
  seed: number;
  split?: SplitName;
  /** Resume from here (from a previous batch's `cursor`). */
  cursor?: DataCursor;
  /** Shuffle documents each epoch (default: true for train, false otherwise). */
  shuffle?: boolean;
  /** Iterate until this many epochs are complete (default 1). */
  epochs?: number;
  /** Drop a last batch smaller than batchSize (default false). */
  dropLast?: boolean;
}

/** Pads documents (id arrays) into one batch; labels are -100 wherever a row is padding. */
export function padDocuments(
  documents: ArrayLike<number>[],
  options: { padId?: number; documentIndices?: number[]; labels?: ArrayLike<number>[] } = {},
): ArticleBatch {
  const padId = options.padId ?? 0;
  const rows = documents.length;
  const lengths = documents.map((doc) => doc.length);
  const length = lengths.reduce((max, n) => Math.max(max, n), 0);
  const ids = new Int32Array(rows * length).fill(padId);
  const labels = new Int32Array(rows * length).fill(IGNORE_INDEX);
  documents.forEach((doc, row) => {
    for (let t = 0; t < doc.length; t++) {
      const id = doc[t] as number;
      ids[row * length + t] = id;
      labels[row * length + t] = options.labels ? (options.labels[row]![t] as number) : id;
    }
  });
  return { ids, labels, rows, length, documents: options.documentIndices ?? [], lengths };
}

/** The document order of one epoch of a split (seeded shuffle, or index order). */
export function epochOrder(
  documents: TokenDocuments,
  options: { seed: number; epoch: number; split?: SplitName; shuffle?: boolean },
): number[] {
  const split = options.split ?? 'train';
  const range = splitRange(documents, split);
  const order: number[] = [];
  for (let i = range.start; i < range.end; i++) order.push(i);
  if (options.shuffle ?? split === 'train') {
    shuffleInPlace(order, mulberry32(mixSeed(options.seed, options.epoch)));
  }
  return order;
}

/** Number of batches per epoch of a split. */
export function batchesPerEpoch(
  documents: TokenDocuments,
  options: { split?: SplitName; batchSize?: number; dropLast?: boolean } = {},
): number {
  const range = splitRange(documents, options.split ?? 'train');
  const count = range.end - range.start;
  const batchSize = options.batchSize ?? 5;
  return options.dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/** Yields article batches from `cursor` (or the start) until `epochs` epochs are complete. */
export function* articleBatches(
  documents: TokenDocuments,
  options: ArticleBatchOptions,
): Generator<ArticleBatch> {
  const batchSize = options.batchSize ?? 5;
  const epochs = options.epochs ?? 1;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new DataError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  if (!(epochs >= 0)) throw new DataError(`epochs must be >= 0, got ${epochs}`);
  const start = startCursor(options.seed, options.cursor);
  const split = options.split ?? 'train';
  const perEpoch = batchesPerEpoch(documents, { split, batchSize, dropLast: options.dropLast });
  if (perEpoch === 0) {
    throw new DataError(
      `the '${split}' split has fewer than ${batchSize} documents, so it yields no batches`,
    );
  }
  for (let epoch = start.epoch; epoch < epochs; epoch++) {
    const order = epochOrder(documents, {
      seed: start.seed,
      epoch,
      split,
      shuffle: options.shuffle,
    });
    const first = epoch === start.epoch ? start.position : 0;
    for (let position = first; position < perEpoch; position++) {
      const indices = order.slice(position * batchSize, (position + 1) * batchSize);
      const batch = padDocuments(
        indices.map((i) => documents.document(i)),
        {
          padId: options.padId,
          documentIndices: indices,
          ...(documents.labels ? { labels: indices.map((i) => documents.labels!(i)) } : {}),
        },
      );
      const last = position + 1 === perEpoch;
      batch.cursor = last
        ? { epoch: epoch + 1, position: 0, seed: start.seed }
        : { epoch, position: position + 1, seed: start.seed };
      yield batch;
    }
  }
}
