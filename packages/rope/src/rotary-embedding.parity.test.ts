// Parity with rotary-embedding-torch 0.9.1 (fp32), fixtures from tools/rope/make_fixtures.py.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RotaryEmbeddingOptions, RotaryEmbedding } from './rotary-embedding';

interface FixtureTensor {
  shape: number[];
  data: number[];
}
interface RotateCase {
  name: string;
  kind: 'rotate';
  options: RotaryEmbeddingOptions;
  offset: number;
  seqAxis: number;
  invFreq: number[];
  input: FixtureTensor;
  expected: FixtureTensor;
}
interface PairCase {
  name: string;
  kind: 'rotateQueriesAndKeys' | 'cachedKeys';
  options: RotaryEmbeddingOptions;
  queryLength?: number;
  keyLength?: number;
  invFreq: number[];
  queries: FixtureTensor;
  keys: FixtureTensor;
  expectedQueries: FixtureTensor;
  expectedKeys: FixtureTensor;
}

const fixture = JSON.parse(
  readFileSync(new URL('./__fixtures__/rotary-parity.json', import.meta.url), 'utf8'),
) as { library: string; cases: (RotateCase | PairCase)[] };

const TOLERANCE = 1e-5;
// The active test backend plus the pure-JS cpu backend: RotaryEmbedding swaps pairs with a
// different kernel on 'cpu' than elsewhere, and both must match the reference.
const backends = [...new Set([tf.getBackend(), 'cpu'])];

function toTensor(t: FixtureTensor): tf.Tensor {
  return tf.tensor(t.data, t.shape, 'float32');
}

function maxAbsDifference(actual: tf.Tensor, expected: FixtureTensor): number {
  expect(actual.shape).toEqual(expected.shape);
  const values = actual.dataSync();
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    max = Math.max(max, Math.abs((values[i] as number) - (expected.data[i] as number)));
  }
  return max;
}

function checkInvFreq(rope: RotaryEmbedding, invFreq: number[]): void {
  expect(rope.invFreq.length).toBe(invFreq.length);
  for (let j = 0; j < invFreq.length; j++) {
    expect(rope.invFreq[j]).toBe(Math.fround(invFreq[j] as number));
  }
}

describe.each(backends)(`parity with ${fixture.library} on %s`, (backend) => {
  const previous = tf.getBackend();
  beforeAll(async () => {
    await tf.setBackend(backend);
  });
  afterAll(async () => {
    await tf.setBackend(previous);
    const worst = errors.reduce((a, b) => (b.maxAbs > a.maxAbs ? b : a), { name: '-', maxAbs: 0 });
    console.log(
      `rope parity: ${errors.length} checks, max-abs error ${worst.maxAbs.toExponential(3)} (${worst.name})`,
    );
  });

  const errors: { name: string; maxAbs: number }[] = [];

  it('has cases for every feature the issue lists', () => {
    const names = fixture.cases.map((c) => c.name).join(' ');
    for (const needle of [
      'offset0',
      'offset7',
      'offset1000',
      'partial',
      'interpolate',
      'xpos',
      'half',
      'dim64',
    ]) {
      expect(names).toContain(needle);
    }
  });

  for (const testCase of fixture.cases) {
    it(testCase.name, () => {
      const rope = new RotaryEmbedding(testCase.options);
      checkInvFreq(rope, testCase.invFreq);
      tf.tidy(() => {
        if (testCase.kind === 'rotate') {
          const out = rope.rotate(toTensor(testCase.input), {
            offset: testCase.offset,
            seqAxis: testCase.seqAxis,
          });
          const maxAbs = maxAbsDifference(out, testCase.expected);
          errors.push({ name: `${backend} ${testCase.name}`, maxAbs });
          expect(maxAbs).toBeLessThan(TOLERANCE);
          return;
        }
        const queries = toTensor(testCase.queries);
        const keys = toTensor(testCase.keys);
        let rotated: [tf.Tensor, tf.Tensor];
        if (testCase.kind === 'rotateQueriesAndKeys') {
          rotated = rope.rotateQueriesAndKeys(queries, keys);
        } else {
          // rotate_queries_with_cached_keys: queries are the last positions of the keys; with
          // xpos the library centres queries at q_len // 2 and keys at k_len // 2.
          const queryLength = testCase.queryLength as number;
          const keyLength = testCase.keyLength as number;
          const xpos = testCase.options.xpos !== undefined;
          rotated = [
            rope.rotate(queries, {
              offset: keyLength - queryLength,
              ...(xpos
                ? { xpos: { role: 'query' as const, center: Math.floor(queryLength / 2) } }
                : {}),
            }),
            rope.rotate(keys, {
              offset: 0,
              ...(xpos
                ? { xpos: { role: 'key' as const, center: Math.floor(keyLength / 2) } }
                : {}),
            }),
          ];
        }
        const queryError = maxAbsDifference(rotated[0], testCase.expectedQueries);
        const keyError = maxAbsDifference(rotated[1], testCase.expectedKeys);
        errors.push({ name: `${backend} ${testCase.name} queries`, maxAbs: queryError });
        errors.push({ name: `${backend} ${testCase.name} keys`, maxAbs: keyError });
        expect(queryError).toBeLessThan(TOLERANCE);
        expect(keyError).toBeLessThan(TOLERANCE);
      });
      rope.dispose();
    });
  }
});
