import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readInputIds } from './input-ids';
import { windows } from './windows';

const dir = mkdtempSync(join(tmpdir(), 'baka-input-ids-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('readInputIds', () => {
  it('reads equal-length rows as one batch with labels = ids', () => {
    const batch = readInputIds(file('ok.json', '[[1,2,3,4],[5,6,7,0]]'));
    expect(batch.rows).toBe(2);
    expect(batch.length).toBe(4);
    expect(Array.from(batch.ids)).toEqual([1, 2, 3, 4, 5, 6, 7, 0]);
    expect(Array.from(batch.labels)).toEqual([1, 2, 3, 4, 5, 6, 7, 0]);
    // Token 0 in the data is not padding: the row keeps every window.
    expect([...windows(batch, { window: 3 })].map((w) => w.keptRows)).toEqual([[0, 1]]);
  });

  it('errors name the file and the bad row', () => {
    expect(() => readInputIds(join(dir, 'missing.json'))).toThrow(/missing.json/);
    const bad = file('bad.json', '[[1,2]');
    expect(() => readInputIds(bad)).toThrow(new RegExp(`${bad}: not valid JSON`));
    expect(() => readInputIds(file('ragged.json', '[[1,2,3],[4,5,6],[7,8]]'))).toThrow(
      /ragged.json: row 2 has 2 ids, but row 0 has 3/,
    );
    expect(() => readInputIds(file('neg.json', '[[1,2],[3,-4]]'))).toThrow(
      /neg.json: row 1, position 1/,
    );
    expect(() => readInputIds(file('str.json', '[[1,"a"]]'))).toThrow(/row 0, position 1/);
    expect(() => readInputIds(file('flat.json', '[1,2,3]'))).toThrow(
      /flat.json: row 0 is not an array/,
    );
    expect(() => readInputIds(file('empty.json', '[]'))).toThrow(
      /empty.json: expected a non-empty/,
    );
  });
});
