import { tokenDocumentsFromArrays } from '@baka/data';
import { describe, expect, it } from 'vitest';
import {
  plannedUnits,
  startPosition,
  type TrainingUnit,
  trainingUnits,
  type UnitOptions,
} from './training-units';

// 13 documents of varied lengths (ids 1..n, so no id is the pad id 0).
const lengths = [5, 17, 9, 30, 2, 12, 26, 8, 19, 4, 11, 23, 7];
const documents = tokenDocumentsFromArrays(
  lengths.map((n, d) => Array.from({ length: n }, (_, i) => 1 + ((d * 7 + i) % 50))),
);
const upstream: UnitOptions = { mode: 'upstream', window: 8, batchSize: 5, epochs: 2, seed: 3 };
const packed: UnitOptions = { mode: 'packed', window: 6, batchSize: 2, epochs: 2, seed: 3 };

const summary = (u: TrainingUnit) => ({
  ids: Array.from(u.ids),
  rows: u.rows,
  length: u.length,
  where: u.where,
});

describe('training units', () => {
  it('upstream: every batch twice, from 0 and from window/2, windows of <= window tokens', () => {
    const units = [...trainingUnits(documents, startPosition(3), upstream)];
    expect(units.length).toBe(plannedUnits(documents, upstream));
    const first = units.filter((u) => u.where.epoch === 0 && u.where.batch === 0);
    const passes = first.map((u) => u.where.pass);
    expect(passes).toEqual([...passes].sort());
    expect(passes).toContain(1);
    for (const u of units) {
      expect(u.length).toBeGreaterThanOrEqual(3);
      expect(u.length).toBeLessThanOrEqual(8);
      expect(u.ids.length).toBe(u.rows * u.length);
      expect(u.rows).toBeGreaterThan(0);
      expect(u.keptFromPrevious === null).toBe(u.where.window === 0);
    }
    // Three batches per epoch (13 documents, 5 per batch), two epochs.
    expect(new Set(units.map((u) => `${u.where.epoch}/${u.where.batch}`)).size).toBe(6);
    expect(units.at(-1)!.next).toEqual({
      batch: { epoch: 2, position: 0, seed: 3 },
      pass: 0,
      window: 0,
    });
  });

  it('upstream: resuming from any unit.next yields exactly the remaining units', () => {
    const all = [...trainingUnits(documents, startPosition(3), upstream)];
    for (const k of [0, 1, 2, 5, 9, all.length - 2]) {
      const rest = [...trainingUnits(documents, all[k]!.next, upstream)];
      expect(rest.map(summary)).toEqual(all.slice(k + 1).map(summary));
    }
  });

  it('packed: fixed-size blocks, resumable, as many per epoch as cover the tokens', () => {
    const all = [...trainingUnits(documents, startPosition(3), packed)];
    const tokens = lengths.reduce((a, b) => a + b, 0);
    expect(all.length).toBe(2 * Math.ceil(tokens / 12));
    expect(all.length).toBe(plannedUnits(documents, packed));
    for (const u of all) expect([u.rows, u.length, u.tokens]).toEqual([2, 6, 12]);
    for (const k of [0, 7, all.length - 2]) {
      const rest = [...trainingUnits(documents, all[k]!.next, packed)];
      expect(rest.map(summary)).toEqual(all.slice(k + 1).map(summary));
    }
  });

  it('counts non-padding tokens', () => {
    const units = [...trainingUnits(documents, startPosition(3), upstream)];
    for (const u of units) {
      expect(u.tokens).toBe(Array.from(u.labels).filter((l) => l !== -100).length);
    }
    expect(units.some((u) => u.tokens < u.rows * u.length)).toBe(true);
  });
});

describe('fixed batch (--input-ids)', () => {
  it('trains the given rows in order, two passes per epoch, resumable', () => {
    const ids = Int32Array.from({ length: 2 * 12 }, (_, i) => 1 + (i % 30));
    const labels = ids.slice();
    labels.fill(-100, 12 + 5); // row 1 is padding from position 5
    ids.fill(0, 12 + 5);
    const batch = { ids, labels, rows: 2, length: 12, documents: [], lengths: [12, 5] };
    const options: UnitOptions = {
      mode: 'upstream',
      window: 6,
      batchSize: 2,
      epochs: 2,
      seed: 0,
      batch,
    };
    const all = [...trainingUnits(documents, startPosition(0), options)];
    expect(all.length).toBe(plannedUnits(documents, options));
    // pass 0: [0,6) rows 0-1, [6,12) row 0; pass 1: [3,9) rows 0-1, [9,12) row 0; twice.
    expect(all.map((u) => [u.where.pass, u.rows, u.length])).toEqual([
      [0, 2, 6],
      [0, 1, 6],
      [1, 2, 6],
      [1, 1, 3],
      [0, 2, 6],
      [0, 1, 6],
      [1, 2, 6],
      [1, 1, 3],
    ]);
    expect(Array.from(all[0]!.ids.subarray(0, 6))).toEqual([1, 2, 3, 4, 5, 6]);
    for (const k of [0, 3, 5]) {
      const rest = [...trainingUnits(documents, all[k]!.next, options)];
      expect(rest.map(summary)).toEqual(all.slice(k + 1).map(summary));
    }
  });
});
