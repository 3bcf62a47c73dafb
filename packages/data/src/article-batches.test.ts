import { describe, expect, it } from 'vitest';
import { articleBatches, batchesPerEpoch, IGNORE_INDEX, padDocuments } from './article-batches';
import { parseCursor } from './cursor';
import { tokenDocumentsFromArrays } from './token-documents';

/** Document i holds ids 1000·(i+1) + t for t < length (so rows are recognisable). */
function makeDocuments(lengths: number[], validFraction = 0) {
  return tokenDocumentsFromArrays(
    lengths.map((n, i) => Array.from({ length: n }, (_, t) => 1000 * (i + 1) + t)),
    { validFraction },
  );
}

describe('padDocuments', () => {
  it('right-pads with the pad id and sets padding labels to -100', () => {
    const batch = padDocuments([[5, 6, 7], [8], [9, 10]], { padId: 0 });
    expect(batch.rows).toBe(3);
    expect(batch.length).toBe(3);
    expect(Array.from(batch.ids)).toEqual([5, 6, 7, 8, 0, 0, 9, 10, 0]);
    expect(Array.from(batch.labels)).toEqual([5, 6, 7, 8, -100, -100, 9, 10, -100]);
    expect(batch.lengths).toEqual([3, 1, 2]);
  });

  it('keeps a real token 0 as a label (padding is by position, not by id)', () => {
    const batch = padDocuments([[0, 0], [3]], { padId: 0 });
    expect(Array.from(batch.labels)).toEqual([0, 0, 3, IGNORE_INDEX]);
  });
});

describe('articleBatches', () => {
  it('groups 5 documents per batch by default and covers every train document once per epoch', () => {
    const docs = makeDocuments([3, 8, 2, 5, 9, 4, 7, 1, 6, 10, 2, 3]);
    const batches = [...articleBatches(docs, { seed: 1 })];
    expect(batches.map((b) => b.rows)).toEqual([5, 5, 2]);
    const seen = batches.flatMap((b) => b.documents).sort((a, b) => a - b);
    expect(seen).toEqual([...Array(12).keys()]);
    for (const batch of batches) {
      expect(batch.length).toBe(Math.max(...batch.documents.map((d) => docs.documentLength(d))));
      batch.documents.forEach((doc, row) => {
        const n = docs.documentLength(doc);
        const rowIds = Array.from(batch.ids.subarray(row * batch.length, (row + 1) * batch.length));
        const rowLabels = Array.from(
          batch.labels.subarray(row * batch.length, (row + 1) * batch.length),
        );
        expect(rowIds.slice(0, n)).toEqual(Array.from(docs.document(doc)));
        expect(rowIds.slice(n).every((id) => id === 0)).toBe(true);
        expect(rowLabels.slice(0, n)).toEqual(Array.from(docs.document(doc)));
        expect(rowLabels.slice(n).every((id) => id === -100)).toBe(true);
      });
    }
  });

  it('is deterministic for a seed, differs across seeds and epochs', () => {
    const docs = makeDocuments(Array.from({ length: 40 }, (_, i) => 2 + (i % 7)));
    const order = (seed: number, epochs = 1) =>
      [...articleBatches(docs, { seed, epochs })].map((b) => b.documents);
    expect(order(7)).toEqual(order(7));
    expect(order(7)).not.toEqual(order(8));
    const two = order(7, 2);
    expect(two.slice(0, 8)).toEqual(order(7));
    expect(two.slice(8)).not.toEqual(two.slice(0, 8));
  });

  it('uses the train and valid splits, valid in document order', () => {
    const docs = makeDocuments(
      Array.from({ length: 20 }, () => 4),
      0.1,
    );
    expect(docs.splits).toEqual({ train: { start: 0, end: 18 }, valid: { start: 18, end: 20 } });
    const valid = [...articleBatches(docs, { seed: 3, split: 'valid', batchSize: 1 })];
    expect(valid.map((b) => b.documents)).toEqual([[18], [19]]);
    const train = [...articleBatches(docs, { seed: 3 })].flatMap((b) => b.documents);
    expect(train.every((d) => d < 18)).toBe(true);
    expect(() => [...articleBatches(docs, { seed: 3, split: 'test' })]).toThrow(/no 'test' split/);
  });

  it('resumes exactly from a cursor saved mid-way (through JSON)', () => {
    const docs = makeDocuments(Array.from({ length: 23 }, (_, i) => 1 + ((i * 5) % 11)));
    const options = { seed: 42, batchSize: 3, epochs: 3 };
    const all = [...articleBatches(docs, options)];
    expect(all.length).toBe(3 * batchesPerEpoch(docs, { batchSize: 3 }));
    for (const cut of [1, 7, 8, 13, all.length - 1]) {
      const saved = JSON.parse(JSON.stringify(all[cut - 1]?.cursor));
      const resumed = [...articleBatches(docs, { ...options, cursor: parseCursor(saved) })];
      expect(resumed.map((b) => b.documents)).toEqual(all.slice(cut).map((b) => b.documents));
      expect(resumed.map((b) => Array.from(b.ids))).toEqual(
        all.slice(cut).map((b) => Array.from(b.ids)),
      );
    }
    expect(all[7]?.cursor).toEqual({ epoch: 1, position: 0, seed: 42 });
    expect(() => [
      ...articleBatches(docs, { ...options, seed: 5, cursor: { epoch: 0, position: 1, seed: 42 } }),
    ]).toThrow(/seed 42/);
  });
});

describe('parseCursor', () => {
  it('names the bad field', () => {
    expect(() =>
      parseCursor({ epoch: 0, position: -1, seed: 1 }, 'trainer_state.json cursor'),
    ).toThrow(/trainer_state.json cursor.position/);
  });
});
