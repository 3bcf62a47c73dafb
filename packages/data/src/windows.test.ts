import { describe, expect, it } from 'vitest';
import { padDocuments } from './article-batches';
import { windows } from './windows';

const ramp = (n: number, base: number) => Array.from({ length: n }, (_, t) => base + t);

function rowsOf(w: { ids: Int32Array; rows: number; length: number }, which: 'ids' = 'ids') {
  return Array.from({ length: w.rows }, (_, r) =>
    Array.from(w[which].subarray(r * w.length, (r + 1) * w.length)),
  );
}

describe('windows (docs/architecture.md §3)', () => {
  // Rows of 10, 4, 7 and 2 real tokens (ids 100.., 200.., ...), padded to 10 with 0.
  const batch = padDocuments([ramp(10, 100), ramp(4, 200), ramp(7, 300), ramp(2, 400)], {
    padId: 0,
  });

  it('cuts stride-spaced windows, drops rows whose position 1 is padding, skips windows < 3 tokens', () => {
    const all = [...windows(batch, { window: 4 })];
    // Starts 0 and 4; the window at 8 has 2 tokens and is skipped.
    expect(all.map((w) => [w.start, w.length])).toEqual([
      [0, 4],
      [4, 4],
    ]);
    expect(all[0]?.keptRows).toEqual([0, 1, 2, 3]);
    expect(all[0]?.keptFromPrevious).toEqual([]);
    expect(rowsOf(all[0]!)).toEqual([ramp(4, 100), ramp(4, 200), ramp(4, 300), [400, 401, 0, 0]]);
    expect(Array.from(all[0]!.labels.subarray(12, 16))).toEqual([400, 401, -100, -100]);
    // At start 4: row 1 (4 tokens) is all padding, row 3 too; row 2 (7 tokens) survives.
    expect(all[1]?.keptRows).toEqual([0, 2]);
    expect(all[1]?.keptFromPrevious).toEqual([0, 2]);
    expect(rowsOf(all[1]!)).toEqual([ramp(4, 104), [304, 305, 306, 0]]);
    expect(Array.from(all[1]!.labels)).toEqual([104, 105, 106, 107, 304, 305, 306, -100]);
  });

  it('drops a row whose position 0 is real but position 1 is padding', () => {
    // Row 1 has 5 tokens: in the window starting at 4 only its position 0 is real.
    const b = padDocuments([ramp(9, 10), ramp(5, 20)]);
    const all = [...windows(b, { window: 4 })];
    expect(all.map((w) => w.keptRows)).toEqual([[0, 1], [0]]);
    expect(all[1]?.keptFromPrevious).toEqual([0]);
  });

  it('skip-first starts the first window late (the second pass of every batch)', () => {
    const all = [...windows(batch, { window: 4, skipFirst: 2 })];
    expect(all.map((w) => w.start)).toEqual([2, 6]);
    expect(all[0]?.keptRows).toEqual([0, 1, 2]); // row 3 (2 tokens) has only padding from column 2
    expect(rowsOf(all[0]!)).toEqual([ramp(4, 102), [202, 203, 0, 0], ramp(4, 302)]);
    expect(all[1]?.keptRows).toEqual([0]); // row 2 has 7 tokens: column 7 is padding
    expect(all[1]?.keptFromPrevious).toEqual([0]);
  });

  it('overlapping windows with stride < window, last window shortened to the batch', () => {
    const all = [...windows(batch, { window: 4, stride: 2 })];
    expect(all.map((w) => [w.start, w.length])).toEqual([
      [0, 4],
      [2, 4],
      [4, 4],
      [6, 4],
    ]);
    expect(all.map((w) => w.keptRows)).toEqual([[0, 1, 2, 3], [0, 1, 2], [0, 2], [0]]);
    expect(all.map((w) => w.keptFromPrevious)).toEqual([[], [0, 1, 2], [0, 2], [0]]);
    const masked = [...windows(batch, { window: 4, stride: 2, maskOverlap: true })];
    expect(Array.from(masked[0]!.labels.subarray(0, 4))).toEqual([100, 101, 102, 103]);
    expect(Array.from(masked[1]!.labels.subarray(0, 4))).toEqual([-100, -100, 104, 105]);
  });

  it('a window longer than the batch is the whole batch; a 2-token batch yields nothing', () => {
    const all = [...windows(batch, { window: 2048 })];
    expect(all.length).toBe(1);
    expect(all[0]?.length).toBe(10);
    expect(Array.from(all[0]!.ids)).toEqual(Array.from(batch.ids));
    expect([...windows(padDocuments([[1, 2]]), { window: 8 })]).toEqual([]);
  });

  it('rejects bad options', () => {
    expect(() => [...windows(batch, { window: 0 })]).toThrow(/window/);
    expect(() => [...windows(batch, { stride: 1.5 })]).toThrow(/stride/);
    expect(() => [...windows(batch, { skipFirst: -1 })]).toThrow(/skipFirst/);
  });
});
