import { describe, expect, it } from 'vitest';
import { seriesWindow } from './series-window';

const all = { from: -Infinity, to: Infinity, afterStep: -Infinity };
const f64 = (values: number[]) => Float64Array.from(values);

describe('seriesWindow', () => {
  const steps = f64([0, 1, 2, 3, 4, 5, 6, 7]);
  const xs = f64([0, 10, 20, 30, 40, 50, 60, 70]);
  const ys = f64([9, 8, 7, 6, 5, 4, 3, 2]);

  it('is a view of the whole run without copying when nothing is filtered', () => {
    const window = seriesWindow(steps, xs, ys, 8, all);
    expect(Array.from(window.xs)).toEqual(Array.from(xs));
    expect(window.xs.buffer).toBe(xs.buffer);
  });

  it('selects an inclusive x range and rows after a step by binary search', () => {
    expect(Array.from(seriesWindow(steps, xs, ys, 8, { ...all, from: 15, to: 50 }).xs)).toEqual([
      20, 30, 40, 50,
    ]);
    expect(Array.from(seriesWindow(steps, xs, ys, 8, { ...all, afterStep: 5 }).ys)).toEqual([3, 2]);
    expect(
      Array.from(seriesWindow(steps, xs, ys, 8, { from: 0, to: 35, afterStep: 1 }).xs),
    ).toEqual([20, 30]);
    expect(seriesWindow(steps, xs, ys, 8, { ...all, from: 71, to: 90 }).xs.length).toBe(0);
    // Only the first `length` entries of the (over-allocated) columns count.
    expect(Array.from(seriesWindow(steps, xs, ys, 3, all).xs)).toEqual([0, 10, 20]);
  });

  it('drops rows whose value is missing (NaN)', () => {
    const gappy = f64([1, Number.NaN, 3, Number.NaN, 5, 6, 7, 8]);
    const window = seriesWindow(steps, xs, gappy, 8, { ...all, to: 45 });
    expect(Array.from(window.xs)).toEqual([0, 20, 40]);
    expect(Array.from(window.ys)).toEqual([1, 3, 5]);
  });

  it('filters by value when x is not sorted (a resumed run whose clock restarted)', () => {
    const elapsed = f64([0, 1, 2, 3, 0.5, 1.5, 2.5, 3.5]);
    const window = seriesWindow(steps, elapsed, ys, 8, { ...all, from: 1, to: 2 });
    expect(Array.from(window.xs)).toEqual([1, 2, 1.5]);
    expect(Array.from(window.ys)).toEqual([8, 7, 4]);
  });
});
