// Largest-Triangle-Three-Buckets downsampling (Steinarsson, 2013): keeps the first and last point
// and, from each of `threshold - 2` equal-count buckets in between, the point that forms the
// largest triangle with the point kept from the previous bucket and the mean of the next bucket.
// It preserves the visual shape of a curve (peaks, dips) far better than taking every n-th point.

/**
 * Indices (ascending) of the points LTTB keeps out of `x`/`y` (same length, `x` sorted ascending).
 * Returns every index when there are no more points than `threshold`.
 */
export function largestTriangleThreeBuckets(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  threshold: number,
): Uint32Array {
  const length = x.length;
  if (y.length !== length) {
    throw new Error(`lttb: x has ${length} points but y has ${y.length}`);
  }
  if (!Number.isInteger(threshold) || threshold < 3) {
    throw new Error(`lttb: threshold must be an integer >= 3, got ${threshold}`);
  }
  if (length <= threshold) {
    const all = new Uint32Array(length);
    for (let index = 0; index < length; index++) all[index] = index;
    return all;
  }
  const kept = new Uint32Array(threshold);
  const bucketSize = (length - 2) / (threshold - 2);
  let previous = 0;
  kept[0] = 0;
  for (let bucket = 0; bucket < threshold - 2; bucket++) {
    // The mean of the next bucket (or the last point, for the final bucket).
    const nextStart = Math.floor((bucket + 1) * bucketSize) + 1;
    const nextEnd = Math.min(Math.floor((bucket + 2) * bucketSize) + 1, length);
    let meanX = 0;
    let meanY = 0;
    for (let index = nextStart; index < nextEnd; index++) {
      meanX += x[index]!;
      meanY += y[index]!;
    }
    const nextCount = nextEnd - nextStart;
    meanX /= nextCount;
    meanY /= nextCount;

    const start = Math.floor(bucket * bucketSize) + 1;
    const end = Math.floor((bucket + 1) * bucketSize) + 1;
    const previousX = x[previous]!;
    const previousY = y[previous]!;
    let largestArea = -1;
    let chosen = start;
    for (let index = start; index < end; index++) {
      // Twice the triangle's area; the factor does not change which point wins.
      const area = Math.abs(
        (previousX - meanX) * (y[index]! - previousY) -
          (previousX - x[index]!) * (meanY - previousY),
      );
      if (area > largestArea) {
        largestArea = area;
        chosen = index;
      }
    }
    kept[bucket + 1] = chosen;
    previous = chosen;
  }
  kept[threshold - 1] = length - 1;
  return kept;
}

/**
 * The mean of `values` over each of the buckets `largestTriangleThreeBuckets` uses for the same
 * length and threshold (first and last point alone), so a downsampled curve can also be shown
 * as a box-filtered one: smoothing the means gives a steady line where smoothing LTTB's extreme
 * picks would not.
 */
export function bucketMeans(values: ArrayLike<number>, threshold: number): Float64Array {
  const length = values.length;
  if (length <= threshold) return Float64Array.from({ length }, (_, index) => values[index]!);
  const means = new Float64Array(threshold);
  const bucketSize = (length - 2) / (threshold - 2);
  means[0] = values[0]!;
  for (let bucket = 0; bucket < threshold - 2; bucket++) {
    const start = Math.floor(bucket * bucketSize) + 1;
    const end = Math.floor((bucket + 1) * bucketSize) + 1;
    let sum = 0;
    for (let index = start; index < end; index++) sum += values[index]!;
    means[bucket + 1] = sum / (end - start);
  }
  means[threshold - 1] = values[length - 1]!;
  return means;
}
