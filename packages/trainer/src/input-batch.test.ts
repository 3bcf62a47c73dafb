import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTrainingBatch, readTrainingBatch } from './input-batch';

describe('--input-ids batches', () => {
  it('a plain array: labels = ids, full-length rows', () => {
    const batch = parseTrainingBatch(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      'x.json',
    );
    expect([batch.rows, batch.length]).toEqual([2, 3]);
    expect(Array.from(batch.labels)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(batch.lengths).toEqual([3, 3]);
  });

  it('the reference object: labels with -100 and attention_mask give row lengths', () => {
    const batch = parseTrainingBatch(
      {
        input_ids: [
          [1, 2, 3, 4],
          [5, 6, 0, 0],
        ],
        labels: [
          [1, 2, 3, 4],
          [5, 6, -100, -100],
        ],
      },
      'x.json',
    );
    expect(Array.from(batch.labels)).toEqual([1, 2, 3, 4, 5, 6, -100, -100]);
    expect(batch.lengths).toEqual([4, 2]);
    const masked = parseTrainingBatch(
      {
        input_ids: [
          [1, 2, 3],
          [4, 0, 0],
        ],
        attention_mask: [
          [1, 1, 1],
          [1, 0, 0],
        ],
      },
      'x.json',
    );
    expect(Array.from(masked.labels)).toEqual([1, 2, 3, 4, -100, -100]);
    expect(masked.lengths).toEqual([3, 1]);
  });

  it('reads the model fixture batch.json', () => {
    const path = new URL('../../model/__fixtures__/train-4-steps/batch.json', import.meta.url);
    const batch = readTrainingBatch(path.pathname);
    expect([batch.rows, batch.length]).toEqual([2, 32]);
    expect(batch.lengths).toEqual([32, 14]);
  });

  it('errors name the file and the field', () => {
    expect(() => parseTrainingBatch({ ids: [] }, 'b.json')).toThrow(
      /b.json: expected .* 'input_ids'/,
    );
    expect(() => parseTrainingBatch({ input_ids: [[1, 2]], labels: [[1]] }, 'b.json')).toThrow(
      /b.json: 'labels' row 0/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'baka-batch-'));
    writeFileSync(join(dir, 'bad.json'), '{not json');
    expect(() => readTrainingBatch(join(dir, 'bad.json'))).toThrow(/bad.json: not valid JSON/);
    expect(() => readTrainingBatch(join(dir, 'missing.json'))).toThrow(
      /--input-ids file not found/,
    );
  });
});
