import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultTokenizerPath } from './default-path.js';
import { closeParallelEncoders, encodeBatchParallel } from './parallel-encode.js';
import { STRESS_SET } from './test-support/stress-set.js';
import { Tokenizer } from './tokenizer.js';

describe('encodeBatchParallel (workers running the TypeScript source)', () => {
  const json = readFileSync(defaultTokenizerPath(), 'utf8');
  const tokenizer = Tokenizer.fromJSON(json);
  afterAll(() => closeParallelEncoders());

  it('equals encodeBatch, in input order, and reuses its workers', async () => {
    const texts = [...STRESS_SET, ...STRESS_SET.map((text) => `${text} again`)];
    const expected = tokenizer.encodeBatch(texts).map((ids) => Array.from(ids));
    const first = await encodeBatchParallel(json, texts, { threads: 2 });
    expect(first.map((ids) => Array.from(ids))).toEqual(expected);
    expect(first.every((ids) => ids instanceof Uint32Array)).toBe(true);
    const second = await encodeBatchParallel(json, texts.slice(3), { threads: 2 });
    expect(second.map((ids) => Array.from(ids))).toEqual(expected.slice(3));
  });

  it('handles empty input and more threads than texts', async () => {
    expect(await encodeBatchParallel(json, [])).toEqual([]);
    const [only] = await encodeBatchParallel(json, ['just one'], { threads: 8 });
    expect(Array.from(only!)).toEqual(Array.from(tokenizer.encode('just one')));
  });

  it('rejects a bad thread count and reports a broken tokenizer.json from the worker', async () => {
    await expect(encodeBatchParallel(json, ['x'], { threads: 0 })).rejects.toThrow(/threads/);
    await expect(encodeBatchParallel('{"model": {"type": "Unigram"}}', ['x'])).rejects.toThrow(
      /Unigram/,
    );
  });
});
