// The rows of a run's columns that a series request asks for: x within [from, to], step after
// `afterStep`, and a finite value. Without gaps this is a view into the cached columns (no copy),
// found by binary search when x is sorted, which is what keeps a million-row request cheap.

export interface SeriesWindow {
  xs: Float64Array;
  ys: Float64Array;
}

/** First index in `values[0, length)` (ascending) whose value is > `bound` (or >= when inclusive). */
function lowerBound(
  values: Float64Array,
  length: number,
  bound: number,
  inclusive: boolean,
): number {
  let low = 0;
  let high = length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const value = values[middle]!;
    if (inclusive ? value < bound : value <= bound) low = middle + 1;
    else high = middle;
  }
  return low;
}

function isSorted(values: Float64Array, start: number, end: number): boolean {
  for (let index = start + 1; index < end; index++) {
    if (values[index]! < values[index - 1]!) return false;
  }
  return true;
}

export function seriesWindow(
  steps: Float64Array,
  xs: Float64Array,
  ys: Float64Array,
  length: number,
  range: { from: number; to: number; afterStep: number },
): SeriesWindow {
  // Steps are the primary key, so they ascend.
  let start = range.afterStep > -Infinity ? lowerBound(steps, length, range.afterStep, false) : 0;
  let end = length;
  const ranged = range.from > -Infinity || range.to < Infinity;
  const sorted = !ranged || isSorted(xs, start, end);
  if (ranged && sorted) {
    start = Math.max(start, lowerBound(xs, length, range.from, true));
    end = Math.min(end, lowerBound(xs, length, range.to, false));
  }
  let clean = sorted;
  for (let index = start; clean && index < end; index++) {
    if (Number.isNaN(ys[index]!) || Number.isNaN(xs[index]!)) clean = false;
  }
  if (clean)
    return {
      xs: xs.subarray(start, Math.max(start, end)),
      ys: ys.subarray(start, Math.max(start, end)),
    };
  const keptX: number[] = [];
  const keptY: number[] = [];
  for (let index = start; index < end; index++) {
    const x = xs[index]!;
    const y = ys[index]!;
    if (Number.isNaN(x) || Number.isNaN(y) || x < range.from || x > range.to) continue;
    keptX.push(x);
    keptY.push(y);
  }
  return { xs: Float64Array.from(keptX), ys: Float64Array.from(keptY) };
}
