// Upstream's training windows over an article batch (docs/architecture.md §3): windows of `window`
// tokens every `stride` tokens, starting at `skipFirst`. Windows shorter than 3 tokens are skipped,
// and a row whose position 1 (inside the window) is padding is dropped, since it has nothing to
// predict. Each window reports which rows of the previous window survive, so carried memory can
// drop them.
import { type ArticleBatch, IGNORE_INDEX } from './article-batches';
import { DataError } from './errors';

export interface Window {
  /** Row-major [rows, length]: the kept rows, columns start..start+length of the batch. */
  ids: Int32Array;
  labels: Int32Array;
  rows: number;
  length: number;
  /** First column of the window in the batch. */
  start: number;
  /** Indices into the batch rows of the rows kept in this window. */
  keptRows: number[];
  /** Indices into the previous window's rows of the rows kept here (empty for the first window). */
  keptFromPrevious: number[];
}

export interface WindowOptions {
  /** Window length in tokens (upstream: 2048). */
  window?: number;
  /** Distance between window starts (default = window). */
  stride?: number;
  /** Columns skipped before the first window (upstream's second pass: window / 2). */
  skipFirst?: number;
  /**
   * Set the labels of the first `window - stride` positions of every window after the first to
   * -100, so overlapping windows score each token once (upstream's windowed evaluation).
   */
  maskOverlap?: boolean;
}

/** Real token count of each row: `batch.lengths`, or derived from the labels (-100 = padding). */
function rowLengths(batch: ArticleBatch): number[] {
  if (batch.lengths && batch.lengths.length === batch.rows) return batch.lengths;
  const lengths: number[] = [];
  for (let row = 0; row < batch.rows; row++) {
    let n = batch.length;
    while (n > 0 && batch.labels[row * batch.length + n - 1] === IGNORE_INDEX) n--;
    lengths.push(n);
  }
  return lengths;
}

export function* windows(batch: ArticleBatch, options: WindowOptions = {}): Generator<Window> {
  const window = options.window ?? 2048;
  const stride = options.stride ?? window;
  const skipFirst = options.skipFirst ?? 0;
  for (const [name, value, min] of [
    ['window', window, 1],
    ['stride', stride, 1],
    ['skipFirst', skipFirst, 0],
  ] as const) {
    if (!Number.isInteger(value) || value < min) {
      throw new DataError(`${name} must be an integer >= ${min}, got ${value}`);
    }
  }
  const lengths = rowLengths(batch);
  let previous: number[] | null = null;
  for (let start = skipFirst; start < batch.length; start += stride) {
    const end = Math.min(start + window, batch.length);
    const length = end - start;
    if (length < 3) continue;
    const keptRows: number[] = [];
    for (let row = 0; row < batch.rows; row++) {
      if ((lengths[row] as number) > start + 1) keptRows.push(row);
    }
    const ids = new Int32Array(keptRows.length * length);
    const labels = new Int32Array(keptRows.length * length);
    keptRows.forEach((row, r) => {
      const from = row * batch.length + start;
      ids.set(batch.ids.subarray(from, from + length), r * length);
      labels.set(batch.labels.subarray(from, from + length), r * length);
    });
    if (options.maskOverlap && previous !== null) {
      const overlap = Math.min(Math.max(window - stride, 0), length);
      for (let r = 0; r < keptRows.length; r++)
        labels.fill(IGNORE_INDEX, r * length, r * length + overlap);
    }
    const keptFromPrevious =
      previous === null
        ? []
        : keptRows.map((row) => (previous as number[]).indexOf(row)).filter((i) => i >= 0);
    yield { ids, labels, rows: keptRows.length, length, start, keptRows, keptFromPrevious };
    previous = keptRows;
  }
}
