import { describe, expect, it } from 'vitest';
import { exponentialMovingAverage } from './smoothing';

describe('exponentialMovingAverage', () => {
  it('is the identity at weight 0 and keeps a constant series constant (bias-corrected)', () => {
    expect(exponentialMovingAverage([3, 1, 4, 1, 5], 0)).toEqual([3, 1, 4, 1, 5]);
    for (const value of exponentialMovingAverage([2, 2, 2, 2], 0.9))
      expect(value).toBeCloseTo(2, 12);
  });

  it('matches the debiased EMA recurrence', () => {
    const weight = 0.5;
    // average_t = w * average_{t-1} + (1 - w) * x_t, shown as average_t / (1 - w^t)
    const first = 0.5 * 4;
    const second = 0.5 * first + 0.5 * 8;
    expect(exponentialMovingAverage([4, 8], weight)).toEqual([first / 0.5, second / 0.75]);
  });

  it('skips NaN values without letting them poison later points', () => {
    const smoothed = exponentialMovingAverage([1, Number.NaN, 1], 0.6);
    expect(smoothed[1]).toBeNaN();
    expect(smoothed[2]).toBeCloseTo(1, 12);
  });

  it('rejects weights outside [0, 1)', () => {
    expect(() => exponentialMovingAverage([1], 1)).toThrow(/\[0, 1\)/);
    expect(() => exponentialMovingAverage([1], -0.1)).toThrow(/\[0, 1\)/);
  });
});
