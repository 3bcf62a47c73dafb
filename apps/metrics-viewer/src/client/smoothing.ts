// Exponential moving average with bias correction (as TensorBoard smooths scalars): the first
// values are not pulled toward zero. NaN values are skipped and stay NaN.

export function exponentialMovingAverage(values: ArrayLike<number>, weight: number): number[] {
  if (!(weight >= 0 && weight < 1))
    throw new Error(`smoothing weight must be in [0, 1), got ${weight}`);
  const smoothed = new Array<number>(values.length);
  let average = 0;
  let count = 0;
  for (let index = 0; index < values.length; index++) {
    const value = values[index]!;
    if (!Number.isFinite(value)) {
      smoothed[index] = Number.NaN;
      continue;
    }
    count++;
    average = average * weight + (1 - weight) * value;
    smoothed[index] = weight === 0 ? value : average / (1 - weight ** count);
  }
  return smoothed;
}
