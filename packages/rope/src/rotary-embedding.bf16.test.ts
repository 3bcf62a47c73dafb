// precision 'bfloat16': exact parity with rotary-embedding-torch 0.3.x run on a `.bfloat16()`
// module (fixture from tools/reference/make_rope_bf16_fixture.py, which checks our torch reading
// of that arithmetic against the library's own 0.3.0 and 0.3.6 code), negative controls, the
// window cache and its tensor hygiene.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type RotaryEmbeddingOptions,
  RotaryEmbedding,
  RotaryEmbeddingError,
  roundToBfloat16,
} from './rotary-embedding';

interface FixtureTensor {
  shape: number[];
  data: number[];
}
interface Bf16Case {
  name: string;
  options: RotaryEmbeddingOptions & { dim: number };
  offset: number;
  length: number;
  positions: number[];
  angleFrequencies: number[];
  cos: FixtureTensor; // [T, R/2]
  sin: FixtureTensor; // [T, R/2]
  expected: FixtureTensor; // [1, T, R]
}

const fixture = JSON.parse(
  readFileSync(new URL('./__fixtures__/rotary-bf16.json', import.meta.url), 'utf8'),
) as { library: string; cases: Bf16Case[] };

const byName = (name: string): Bf16Case => {
  const found = fixture.cases.find((c) => c.name === name);
  if (found === undefined) throw new Error(`fixture has no case ${name}`);
  return found;
};

/** The fixture's input: x[0, i, c] = (((7 i + 13 c) mod 17) - 8) / 8. */
function fixtureInput(length: number, dim: number): tf.Tensor3D {
  const values = new Float32Array(length * dim);
  for (let i = 0; i < length; i++) {
    for (let c = 0; c < dim; c++) values[i * dim + c] = (((7 * i + 13 * c) % 17) - 8) / 8;
  }
  return tf.tensor3d(values, [1, length, dim]);
}

/** Pairs (1, 0) rotate to (cos, sin) exactly: the tables as rotate applies them, [1, T, R]. */
function unitPairs(length: number, dim: number): tf.Tensor3D {
  const values = new Float32Array(length * dim);
  for (let index = 0; index < values.length; index += 2) values[index] = 1;
  return tf.tensor3d(values, [1, length, dim]);
}

/** Number of elements that differ and the largest |difference| against float32(expected). */
function compare(
  actual: tf.Tensor,
  expected: FixtureTensor,
): { mismatches: number; maxAbs: number } {
  expect(actual.shape).toEqual(expected.shape);
  const values = actual.dataSync();
  let mismatches = 0;
  let maxAbs = 0;
  for (let i = 0; i < values.length; i++) {
    const want = Math.fround(expected.data[i] as number);
    const got = values[i] as number;
    if (got !== want) mismatches += 1;
    maxAbs = Math.max(maxAbs, Math.abs(got - want));
  }
  return { mismatches, maxAbs };
}

/** The [1, T, R] interleaved (cos, sin) a rotation of unit pairs must give for a case. */
function expectedTables(testCase: Bf16Case): FixtureTensor {
  const half = testCase.options.dim / 2;
  const data: number[] = [];
  for (let row = 0; row < testCase.length; row++) {
    for (let pair = 0; pair < half; pair++) {
      data.push(testCase.cos.data[row * half + pair] as number);
      data.push(testCase.sin.data[row * half + pair] as number);
    }
  }
  return { shape: [1, testCase.length, testCase.options.dim], data };
}

describe('roundToBfloat16', () => {
  it('rounds float32 to the nearest bfloat16, ties to even', () => {
    expect(roundToBfloat16(255)).toBe(255);
    expect(roundToBfloat16(257)).toBe(256); // tie between 256 and 258: even mantissa
    expect(roundToBfloat16(259)).toBe(260); // tie between 258 and 260: even mantissa
    expect(roundToBfloat16(4008)).toBe(4000); // tie between 4000 and 4016
    expect(roundToBfloat16(4009)).toBe(4016);
    expect(roundToBfloat16(4300)).toBe(4288);
    expect(roundToBfloat16(-4009)).toBe(-4016);
    expect(roundToBfloat16(1 + 2 ** -8)).toBe(1);
    expect(roundToBfloat16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6);
    expect(roundToBfloat16(0.1)).toBe(0.10009765625);
    expect(roundToBfloat16(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(roundToBfloat16(Number.NaN)).toBeNaN();
  });
});

const backends = [...new Set([tf.getBackend(), 'cpu'])];

describe.each(backends)(`parity with ${fixture.library} on %s`, (backend) => {
  const previous = tf.getBackend();
  const worst = { tables: 0, rotated: 0 };
  beforeAll(async () => {
    await tf.setBackend(backend);
  });
  afterAll(async () => {
    await tf.setBackend(previous);
    console.log(
      `rope bf16 parity (${backend}): ${fixture.cases.length} cases, max |difference| tables ${worst.tables}, rotated ${worst.rotated}`,
    );
  });

  it('has cases for reset and absolute positions in the thousands', () => {
    const names = fixture.cases.map((c) => c.name);
    for (const needle of [
      'offset0-len301',
      'offset300-len301',
      'offset4000-len301',
      'offset4008',
    ]) {
      expect(names.some((name) => name.startsWith(needle))).toBe(true);
    }
  });

  for (const testCase of fixture.cases) {
    it(`${testCase.name}: positions, frequencies, cos/sin and rotation are bit-exact`, () => {
      const rope = new RotaryEmbedding(testCase.options);
      expect(rope.precision).toBe('bfloat16');
      expect(Array.from(rope.angleFrequencies)).toEqual(
        testCase.angleFrequencies.map((f) => Math.fround(f)),
      );
      const positions = Array.from({ length: testCase.length }, (_, i) =>
        rope.position(testCase.offset, i),
      );
      expect(positions).toEqual(testCase.positions.map((p) => Math.fround(p)));
      tf.tidy(() => {
        const { dim } = testCase.options;
        const tables = compare(
          rope.rotate(unitPairs(testCase.length, dim), { offset: testCase.offset }),
          expectedTables(testCase),
        );
        const rotated = compare(
          rope.rotate(fixtureInput(testCase.length, dim), { offset: testCase.offset }),
          testCase.expected,
        );
        worst.tables = Math.max(worst.tables, tables.maxAbs);
        worst.rotated = Math.max(worst.rotated, rotated.maxAbs);
        expect(tables.mismatches).toBe(0);
        expect(rotated.mismatches).toBe(0);
      });
      rope.dispose();
    });
  }
});

describe('negative controls', () => {
  it('float32 tables differ from the bfloat16 ones at offset 4000 (and at 0)', () => {
    for (const name of ['offset4000-len301', 'offset0-len301']) {
      const testCase = byName(name);
      const { precision: _, ...float32Options } = testCase.options;
      const rope = new RotaryEmbedding(float32Options);
      expect(rope.precision).toBe('float32');
      tf.tidy(() => {
        const { dim } = testCase.options;
        const tables = compare(
          rope.rotate(unitPairs(testCase.length, dim), { offset: testCase.offset }),
          expectedTables(testCase),
        );
        const rotated = compare(
          rope.rotate(fixtureInput(testCase.length, dim), { offset: testCase.offset }),
          testCase.expected,
        );
        console.log(
          `${name}: float32 vs bf16 max |difference| tables ${tables.maxAbs.toFixed(4)}, rotated ${rotated.maxAbs.toFixed(4)}`,
        );
        expect(tables.maxAbs).toBeGreaterThan(name === 'offset0-len301' ? 0.5 : 1.5);
        expect(rotated.maxAbs).toBeGreaterThan(0.5);
      });
      rope.dispose();
    }
  });

  it('rounds index and offset separately: the table of offset + i alone would be wrong', () => {
    for (const name of ['offset4000-len301', 'offset4008-len40']) {
      const testCase = byName(name);
      const singleRounding = testCase.positions.map((_, i) => roundToBfloat16(testCase.offset + i));
      const differing = singleRounding.filter((p, i) => p !== testCase.positions[i]).length;
      expect(differing).toBeGreaterThan(0);
      // so the rows of a table started at 0 (positions bf16(p)) are not what the library used
      const rope = new RotaryEmbedding(testCase.options);
      tf.tidy(() => {
        const { dim } = testCase.options;
        const fromZero = tf.slice(
          rope.rotate(unitPairs(testCase.offset + testCase.length, dim), { offset: 0 }),
          [0, testCase.offset, 0],
          [1, testCase.length, dim],
        );
        expect(compare(fromZero, expectedTables(testCase)).mismatches).toBeGreaterThan(0);
      });
      rope.dispose();
    }
  });
});

describe("precision 'bfloat16' options and caching", () => {
  it('defaults to float32 and rejects an unknown precision and xpos', () => {
    const rope = new RotaryEmbedding({ dim: 8 });
    expect(rope.precision).toBe('float32');
    expect(rope.angleFrequencies).toEqual(rope.invFreq);
    expect(
      () => new RotaryEmbedding({ dim: 8, precision: 'float16' as unknown as 'float32' }),
    ).toThrow(RotaryEmbeddingError);
    expect(
      () => new RotaryEmbedding({ dim: 8, precision: 'bfloat16', xpos: { scaleBase: 512 } }),
    ).toThrow(/xpos/);
    rope.dispose();
  });

  it('keeps invFreq in float32 (checkpoints) and rounds only the angle frequencies', () => {
    const float32 = new RotaryEmbedding({ dim: 32 });
    const bfloat16 = new RotaryEmbedding({ dim: 32, precision: 'bfloat16' });
    expect(bfloat16.invFreq).toEqual(float32.invFreq);
    expect(Array.from(bfloat16.angleFrequencies)).toEqual(
      Array.from(float32.invFreq).map(roundToBfloat16),
    );
    expect(Array.from(bfloat16.angleFrequencies)).not.toEqual(Array.from(float32.invFreq));
  });

  it('the half layout uses the same bf16 values, paired across halves', () => {
    const testCase = byName('offset4000-len301');
    const rope = new RotaryEmbedding({ ...testCase.options, layout: 'half' });
    tf.tidy(() => {
      const { dim } = testCase.options;
      const half = dim / 2;
      const ones = new Float32Array(testCase.length * dim);
      for (let row = 0; row < testCase.length; row++) ones.fill(1, row * dim, row * dim + half);
      // pairs (x_j, x_{j+R/2}) = (1, 0) rotate to (cos_j, sin_j)
      const out = rope.rotate(tf.tensor3d(ones, [1, testCase.length, dim]), {
        offset: testCase.offset,
      });
      const data: number[] = [];
      for (let row = 0; row < testCase.length; row++) {
        const base = row * half;
        data.push(...testCase.cos.data.slice(base, base + half));
        data.push(...testCase.sin.data.slice(base, base + half));
      }
      expect(compare(out, { shape: [1, testCase.length, dim], data }).mismatches).toBe(0);
    });
    rope.dispose();
  });

  it('reuses window tables, evicts the least recently used and frees everything on dispose', () => {
    const before = tf.memory().numTensors;
    const rope = new RotaryEmbedding({ dim: 8, precision: 'bfloat16' });
    const x = tf.ones([2, 5, 8]);
    const first = rope.rotate(x, { offset: 4000 });
    const again = rope.rotate(x, { offset: 4000 });
    expect(rope.windowBuilds).toBe(1);
    expect(rope.tableBuilds).toBe(0); // rotate never builds the offset-0 capacity tables
    for (let offset = 0; offset < 20; offset++) rope.rotate(x, { offset }).dispose();
    expect(rope.windowBuilds).toBe(21);
    const rebuilt = rope.rotate(x, { offset: 4000 }); // evicted by then: built again, same values
    expect(rope.windowBuilds).toBe(22);
    expect(Array.from(rebuilt.dataSync())).toEqual(Array.from(first.dataSync()));
    expect(Array.from(again.dataSync())).toEqual(Array.from(first.dataSync()));
    for (const t of [first, again, rebuilt, x]) t.dispose();
    rope.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gradients stay valid when a window used by the tape is evicted before backward', () => {
    const rope = new RotaryEmbedding({ dim: 8, precision: 'bfloat16' });
    const reference = new RotaryEmbedding({ dim: 8, precision: 'bfloat16' });
    tf.tidy(() => {
      const x = tf.variable(fixtureInput(6, 8));
      const weights = fixtureInput(6, 8);
      const { grads } = tf.variableGrads(() => {
        const out = rope.rotate(x, { offset: 3000 });
        // evict the offset-3000 window while the tape holds it
        for (let offset = 0; offset < 20; offset++) rope.rotate(tf.zeros([1, 2, 8]), { offset });
        return tf.sum(tf.mul(out, weights)) as tf.Scalar;
      });
      // f(x) = sum(w * R x) is linear in x, so f(x) = sum(x * df/dx) (df/dx = R^T w)
      const gradient = grads[x.name] as tf.Tensor;
      const value = tf.sum(tf.mul(reference.rotate(x, { offset: 3000 }), weights));
      const viaGradient = tf.sum(tf.mul(x, gradient));
      expect(tf.max(tf.abs(gradient)).dataSync()[0]).toBeGreaterThan(0.1);
      expect(
        Math.abs((value.dataSync()[0] as number) - (viaGradient.dataSync()[0] as number)),
      ).toBeLessThan(1e-4);
      x.dispose();
    });
    rope.dispose();
    reference.dispose();
  });
});
