// What one optimizer step (or micro-step) trains on, in order, resumable from a TrainingPosition.
//
// Upstream mode (docs/architecture.md §3): article batches of `batchSize` documents; each batch is
// trained twice, once in windows from token 0 and once from window/2; one unit per window. Packed
// mode: random contiguous blocks of the token stream, one unit per block.
import {
  type ArticleBatch,
  articleBatches,
  batchesPerEpoch,
  epochOrder,
  IGNORE_INDEX,
  packedBatches,
  splitRange,
  splitTokenRange,
  type TokenDocuments,
  windows,
} from '@baka/data';
import { TrainerError, type TrainingPosition } from './trainer-state';

export type TrainingMode = 'upstream' | 'packed';

export interface UnitOptions {
  mode: TrainingMode;
  /** Window length in tokens (upstream: 2048); the block length in packed mode. */
  window: number;
  /** Documents per article batch (upstream: 5) or rows per packed batch. */
  batchSize: number;
  /** Epochs over the training split. */
  epochs: number;
  seed: number;
  /** Pad id of article batches (upstream: 0). */
  padId?: number;
  /**
   * Train on this one batch every epoch instead of the documents (`--input-ids`): rows and labels
   * exactly as given, two passes per epoch like any article batch.
   */
  batch?: ArticleBatch | null;
}

/** One window (upstream) or block (packed) to train on. Row-major [rows, length]. */
export interface TrainingUnit {
  ids: Int32Array;
  labels: Int32Array;
  rows: number;
  length: number;
  /** Non-padding tokens in the unit (labels != -100). */
  tokens: number;
  /**
   * Rows of the previous unit that continue in this one (for carried memory), or null when this
   * unit starts fresh (first window of a pass, or packed mode).
   */
  keptFromPrevious: number[] | null;
  /** The position right after this unit (what a checkpoint taken after it records). */
  next: TrainingPosition;
  /** For progress lines: epoch, batch index in the epoch, pass, window index, windows in pass. */
  where: {
    epoch: number;
    batch: number;
    batches: number;
    pass: number;
    window: number;
    windows: number;
  };
}

export function startPosition(seed: number): TrainingPosition {
  return { batch: { epoch: 0, position: 0, seed }, pass: 0, window: 0 };
}

function countTokens(labels: Int32Array): number {
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== IGNORE_INDEX) n++;
  return n;
}

/** Windows of one pass over a batch with `length` columns: starts skip, skip+w, ... with >= 3 tokens. */
function windowsInPass(length: number, window: number, skip: number): number {
  return length - 3 >= skip ? Math.floor((length - 3 - skip) / window) + 1 : 0;
}

/** Units of one article batch from (pass, window) on, in upstream order. */
function* batchUnits(
  batch: ArticleBatch,
  from: { pass: number; window: number },
  window: number,
  where: { epoch: number; batch: number; batches: number },
  current: TrainingPosition['batch'],
  after: TrainingPosition['batch'],
): Generator<TrainingUnit> {
  for (let pass = from.pass; pass < 2; pass++) {
    const skipFirst = pass === 0 ? 0 : Math.floor(window / 2);
    // A window past every row's end keeps no rows; it has nothing to train on.
    const list = [...windows(batch, { window, skipFirst })].filter((unit) => unit.rows > 0);
    for (let w = pass === from.pass ? from.window : 0; w < list.length; w++) {
      const unit = list[w]!;
      const next: TrainingPosition =
        w + 1 < list.length
          ? { batch: current, pass, window: w + 1 }
          : pass === 0
            ? { batch: current, pass: 1, window: 0 }
            : { batch: after, pass: 0, window: 0 };
      yield {
        ids: unit.ids,
        labels: unit.labels,
        rows: unit.rows,
        length: unit.length,
        tokens: countTokens(unit.labels),
        keptFromPrevious: w === 0 ? null : unit.keptFromPrevious,
        next,
        where: { ...where, pass, window: w, windows: list.length },
      };
    }
  }
}

/** Every remaining unit of the run from `position`, until `options.epochs` are done. */
export function* trainingUnits(
  documents: TokenDocuments,
  position: TrainingPosition,
  options: UnitOptions,
): Generator<TrainingUnit> {
  if (options.batch) {
    yield* fixedBatchUnits(options.batch, position, options);
    return;
  }
  if (options.mode === 'packed') {
    if (documents.labels) {
      throw new TrainerError(
        "mode=packed trains on every token of the stream and would drop the documents' own labels (the recall corpus keeps only its answers); use mode=upstream",
      );
    }
    yield* packedUnits(documents, position, options);
    return;
  }
  const batches = batchesPerEpoch(documents, { split: 'train', batchSize: options.batchSize });
  let current = position.batch;
  let first = true;
  for (const batch of articleBatches(documents, {
    batchSize: options.batchSize,
    padId: options.padId ?? 0,
    seed: options.seed,
    split: 'train',
    cursor: position.batch,
    epochs: options.epochs,
  })) {
    const after = batch.cursor!;
    const from = first ? { pass: position.pass, window: position.window } : { pass: 0, window: 0 };
    first = false;
    yield* batchUnits(
      batch,
      from,
      options.window,
      { epoch: current.epoch, batch: current.position, batches },
      current,
      after,
    );
    current = after;
  }
}

/** The same batch once per epoch; the cursor's epoch counts epochs, position stays 0. */
function* fixedBatchUnits(
  batch: ArticleBatch,
  position: TrainingPosition,
  options: UnitOptions,
): Generator<TrainingUnit> {
  for (let epoch = position.batch.epoch; epoch < options.epochs; epoch++) {
    const current = { epoch, position: 0, seed: options.seed };
    const after = { epoch: epoch + 1, position: 0, seed: options.seed };
    const from = epoch === position.batch.epoch ? position : { pass: 0, window: 0 };
    yield* batchUnits(batch, from, options.window, { epoch, batch: 0, batches: 1 }, current, after);
  }
}

/** Packed blocks per epoch: enough blocks to cover the training tokens once. */
export function packedBatchesPerEpoch(documents: TokenDocuments, options: UnitOptions): number {
  const range = splitTokenRange(documents, 'train');
  return Math.max(1, Math.ceil((range.end - range.start) / (options.batchSize * options.window)));
}

function* packedUnits(
  documents: TokenDocuments,
  position: TrainingPosition,
  options: UnitOptions,
): Generator<TrainingUnit> {
  const perEpoch = packedBatchesPerEpoch(documents, options);
  for (let epoch = position.batch.epoch; epoch < options.epochs; epoch++) {
    const cursor =
      epoch === position.batch.epoch ? position.batch : { epoch, position: 0, seed: options.seed };
    for (const block of packedBatches(documents, {
      batchSize: options.batchSize,
      length: options.window,
      seed: options.seed,
      split: 'train',
      cursor,
      batches: perEpoch,
    })) {
      const last = block.cursor.position >= perEpoch;
      yield {
        ids: block.ids,
        labels: block.labels,
        rows: block.rows,
        length: block.length,
        tokens: block.ids.length,
        keptFromPrevious: null,
        next: {
          batch: last ? { epoch: epoch + 1, position: 0, seed: options.seed } : block.cursor,
          pass: 0,
          window: 0,
        },
        where: {
          epoch,
          batch: block.cursor.position - 1,
          batches: perEpoch,
          pass: 0,
          window: 0,
          windows: 1,
        },
      };
    }
  }
}

/** Units (windows or blocks) in the whole run, from the document lengths alone (no tokens read). */
export function plannedUnits(documents: TokenDocuments, options: UnitOptions): number {
  if (options.batch) {
    const length = Math.max(0, ...(options.batch.lengths ?? [options.batch.length]));
    const half = Math.floor(options.window / 2);
    return (
      options.epochs *
      (windowsInPass(length, options.window, 0) + windowsInPass(length, options.window, half))
    );
  }
  if (options.mode === 'packed') return packedBatchesPerEpoch(documents, options) * options.epochs;
  const range = splitRange(documents, 'train');
  if (range.end <= range.start) return 0;
  const perEpoch = batchesPerEpoch(documents, { split: 'train', batchSize: options.batchSize });
  let total = 0;
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const order = epochOrder(documents, { seed: options.seed, epoch, split: 'train' });
    for (let b = 0; b < perEpoch; b++) {
      let longest = 0;
      for (const index of order.slice(b * options.batchSize, (b + 1) * options.batchSize)) {
        longest = Math.max(longest, documents.documentLength(index));
      }
      total += windowsInPass(longest, options.window, 0);
      total += windowsInPass(longest, options.window, Math.floor(options.window / 2));
    }
  }
  return total;
}

/**
 * Refuses data too small to form one training unit (a 0-step run would save untrained weights
 * and exit 0): upstream mode needs a training document of at least 3 tokens, packed mode at
 * least `window` tokens in the training split, `--input-ids` a row of at least 3 tokens.
 */
export function checkTrainingData(
  documents: TokenDocuments,
  options: UnitOptions,
  corpus: string | null,
): void {
  if (options.batch) {
    if (plannedUnits(documents, options) > 0) return;
    throw new TrainerError(
      `the --input-ids batch is too short to train on: rows of ${options.batch.length} tokens, one window needs at least 3`,
    );
  }
  const name = corpus === null ? 'the training documents' : `corpus ${corpus}`;
  const range = documents.splits.train ?? { start: 0, end: 0 };
  const trainDocuments = Math.max(0, range.end - range.start);
  const stream = trainDocuments > 0 ? splitTokenRange(documents, 'train') : { start: 0, end: 0 };
  const tokens = stream.end - stream.start;
  const has = `its training split has ${tokens} token${tokens === 1 ? '' : 's'} in ${trainDocuments} document${trainDocuments === 1 ? '' : 's'}`;
  if (options.mode === 'packed') {
    if (tokens >= options.window) return;
    throw new TrainerError(
      `${name} is too small to form one training window: ${has}; packed mode needs at least --window ${options.window} tokens`,
    );
  }
  if (trainDocuments > 0 && plannedUnits(documents, options) > 0) return;
  throw new TrainerError(
    `${name} is too small to form one training window: ${has}; upstream mode needs a training document of at least 3 tokens`,
  );
}
