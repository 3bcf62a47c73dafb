import { describe, expect, it } from 'vitest';
import { packedBatches, splitTokenRange } from './packed-batches';
import { tokenDocumentsFromArrays } from './token-documents';

// 10 documents of 50 tokens: token value = its global stream position.
const docs = tokenDocumentsFromArrays(
  Array.from({ length: 10 }, (_, d) => Array.from({ length: 50 }, (_, t) => d * 50 + t)),
  { validFraction: 0.2 },
);

describe('packedBatches', () => {
  it('cuts [B, T] blocks of the contiguous stream at random offsets inside the split', () => {
    const range = splitTokenRange(docs, 'train');
    expect(range).toEqual({ start: 0, end: 400 });
    const batches = [...packedBatches(docs, { batchSize: 4, length: 16, seed: 9, batches: 50 })];
    expect(batches.length).toBe(50);
    const offsets = new Set<number>();
    for (const batch of batches) {
      expect(batch.ids.length).toBe(4 * 16);
      expect(Array.from(batch.labels)).toEqual(Array.from(batch.ids));
      batch.offsets.forEach((offset, row) => {
        offsets.add(offset);
        expect(offset).toBeGreaterThanOrEqual(0);
        expect(offset + 16).toBeLessThanOrEqual(400);
        // Contiguous across document boundaries.
        expect(Array.from(batch.ids.subarray(row * 16, row * 16 + 16))).toEqual(
          Array.from({ length: 16 }, (_, t) => offset + t),
        );
      });
    }
    expect(offsets.size).toBeGreaterThan(100);
    const valid = [
      ...packedBatches(docs, { batchSize: 2, length: 8, seed: 9, split: 'valid', batches: 20 }),
    ];
    expect(valid.every((b) => b.offsets.every((o) => o >= 400 && o + 8 <= 500))).toBe(true);
  });

  it('is deterministic and resumes exactly from a cursor', () => {
    const options = { batchSize: 3, length: 8, seed: 5, batches: 12 };
    const all = [...packedBatches(docs, options)];
    const again = [...packedBatches(docs, options)];
    expect(again.map((b) => b.offsets)).toEqual(all.map((b) => b.offsets));
    const cursor = JSON.parse(JSON.stringify(all[4]!.cursor));
    const resumed = [...packedBatches(docs, { ...options, cursor })];
    expect(resumed.map((b) => b.offsets)).toEqual(all.slice(5).map((b) => b.offsets));
    const other = [...packedBatches(docs, { ...options, seed: 6 })];
    expect(other.map((b) => b.offsets)).not.toEqual(all.map((b) => b.offsets));
  });

  it('errors when the split is shorter than one row', () => {
    expect(() => [
      ...packedBatches(docs, { batchSize: 1, length: 101, seed: 1, split: 'valid' }),
    ]).toThrow(/'valid' split has 100 tokens/);
  });
});
