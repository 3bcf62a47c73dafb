// Properties of RotaryEmbedding: orthogonality, relative positions, composition, gradients,
// table caching and tensor hygiene. Parity with the PyTorch library is in *.parity.test.ts.
//
// Shape legend: B batch, H heads, T time, D feature dim.
import { readdirSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
// Gradient kernels are registered by tfjs-node and the @tensorflow/tfjs bundle, not by core + cpu.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, it } from 'vitest';
import { type RotaryLayout, RotaryEmbedding, RotaryEmbeddingError } from './rotary-embedding';

const layouts: RotaryLayout[] = ['interleaved', 'half'];

function maxAbs(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number);
}

function randomInput(shape: number[], seed: number): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

describe.each(layouts)('RotaryEmbedding (%s layout)', (layout) => {
  it('preserves the norm of every rotated pair and passes extra features through', () => {
    const rope = new RotaryEmbedding({ dim: 16, layout });
    tf.tidy(() => {
      const x = randomInput([2, 3, 9, 24], 1); // [B, H, T, D], 8 features pass through
      const out = rope.rotate(x, { offset: 5 });
      const norms = (t: tf.Tensor) => tf.norm(tf.slice(t, [0, 0, 0, 0], [-1, -1, -1, 16]), 2, -1);
      expect(maxAbs(norms(out), norms(x))).toBeLessThan(1e-5);
      const rest = (t: tf.Tensor) => tf.slice(t, [0, 0, 0, 16], [-1, -1, -1, 8]);
      expect(maxAbs(rest(out), rest(x))).toBe(0);
      // and it actually rotates
      expect(maxAbs(out, x)).toBeGreaterThan(1e-2);
    });
    rope.dispose();
  });

  it('makes q·k depend only on the relative position', () => {
    const rope = new RotaryEmbedding({ dim: 32, layout, interpolationFactor: 2 });
    tf.tidy(() => {
      const q = randomInput([1, 1, 1, 32], 2);
      const k = randomInput([1, 1, 1, 32], 3);
      const score = (queryOffset: number, keyOffset: number) => {
        const [rq, rk] = rope.rotateQueriesAndKeys(q, k, { queryOffset, keyOffset });
        return tf.sum(tf.mul(rq, rk)).dataSync()[0] as number;
      };
      const reference = score(10, 3);
      for (const shift of [1, 40, 500]) {
        expect(Math.abs(score(10 + shift, 3 + shift) - reference)).toBeLessThan(1e-4);
      }
      // a different relative distance gives a different score
      expect(Math.abs(score(11, 3) - reference)).toBeGreaterThan(1e-3);
    });
    rope.dispose();
  });

  it('rotating by offset a then by offset b equals rotating by a + b', () => {
    const rope = new RotaryEmbedding({ dim: 16, layout });
    tf.tidy(() => {
      const x = randomInput([2, 1, 1, 16], 4); // one position, so offset = position
      for (const [a, b] of [
        [3, 4],
        [7, 1000],
        [0, 9],
      ] as const) {
        const twice = rope.rotate(rope.rotate(x, { offset: a }), { offset: b });
        const once = rope.rotate(x, { offset: a + b });
        expect(maxAbs(twice, once)).toBeLessThan(2e-5);
      }
    });
    rope.dispose();
  });

  it('lets gradients flow through rotate (d/dx ½‖rotate(x)‖² = x, orthogonal map)', () => {
    const rope = new RotaryEmbedding({ dim: 8, layout });
    tf.tidy(() => {
      const x = randomInput([2, 5, 12], 5); // [B, T, D]
      const weights = randomInput([2, 5, 12], 6);
      const normGradient = tf.grad((input: tf.Tensor) =>
        tf.mul(0.5, tf.sum(tf.square(rope.rotate(input, { offset: 7 })))),
      );
      expect(maxAbs(normGradient(x), x)).toBeLessThan(1e-5);
      // a non-symmetric objective: check against central finite differences on a few entries
      const objective = (input: tf.Tensor) =>
        tf.sum(tf.mul(rope.rotate(input, { offset: 7 }), weights));
      const gradient = tf.grad(objective)(x).dataSync();
      const base = x.dataSync();
      for (const index of [0, 3, 17, 64, 119]) {
        const plus = Float32Array.from(base);
        const minus = Float32Array.from(base);
        plus[index] = (plus[index] as number) + 1e-2;
        minus[index] = (minus[index] as number) - 1e-2;
        const numeric =
          ((objective(tf.tensor(plus, x.shape)).dataSync()[0] as number) -
            (objective(tf.tensor(minus, x.shape)).dataSync()[0] as number)) /
          2e-2;
        expect(Math.abs(numeric - (gradient[index] as number))).toBeLessThan(2e-3);
      }
    });
    rope.dispose();
  });

  it('treats seqAxis -3 ([B, T, H, D]) like -2 after a transpose', () => {
    const rope = new RotaryEmbedding({ dim: 16, layout });
    tf.tidy(() => {
      const x = randomInput([2, 6, 3, 16], 7); // [B, T, H, D]
      const viaAxis = rope.rotate(x, { offset: 11, seqAxis: -3 });
      const viaTranspose = tf.transpose(
        rope.rotate(tf.transpose(x, [0, 2, 1, 3]), { offset: 11 }),
        [0, 2, 1, 3],
      );
      expect(maxAbs(viaAxis, viaTranspose)).toBe(0);
    });
    rope.dispose();
  });
});

describe('RotaryEmbedding backends', () => {
  // 'cpu' swaps pairs with a gather (and a custom gradient), other backends too for small
  // tensors (5 positions) and with reverse/concat for large ones (700 positions).
  it.each(layouts.flatMap((layout) => [5, 700].map((length) => [layout, length] as const)))(
    'gives the same values and gradients on cpu as on the active backend (%s, %i positions)',
    async (layout, length) => {
      const active = tf.getBackend();
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        const rope = new RotaryEmbedding({ dim: 8, layout });
        const result = tf.tidy(() => {
          const x = tf.tensor3d(
            Array.from({ length: 2 * length * 12 }, (_, i) => Math.sin(i * 0.7)),
            [2, length, 12],
          );
          const w = tf.tensor3d(
            Array.from({ length: 2 * length * 12 }, (_, i) => Math.cos(i * 0.3)),
            [2, length, 12],
          );
          const value = rope.rotate(x, { offset: 9 });
          const gradient = tf.grad((input: tf.Tensor) =>
            tf.sum(tf.mul(rope.rotate(input, { offset: 9 }), w)),
          )(x);
          return [Array.from(value.dataSync()), Array.from(gradient.dataSync())];
        });
        rope.dispose();
        return result;
      };
      const onCpu = await run('cpu');
      const onActive = await run(active);
      await tf.setBackend(active);
      for (const which of [0, 1]) {
        const a = onCpu[which] as number[];
        const b = onActive[which] as number[];
        expect(Math.max(...a.map((value, i) => Math.abs(value - (b[i] as number))))).toBeLessThan(
          1e-6,
        );
      }
      // the pass-through features get the weights' gradient unchanged
      expect((onCpu[1] as number[])[8]).toBeCloseTo(Math.cos(8 * 0.3), 6);
    },
  );
});

describe('RotaryEmbedding tables', () => {
  it('builds cos/sin tables once, returns the same tensors, and grows only on demand', () => {
    const rope = new RotaryEmbedding({ dim: 8 });
    expect(rope.tableBuilds).toBe(0);
    const first = rope.tables(10);
    expect(first.cos.shape[1]).toBe(8);
    expect(first.cos.shape[0]).toBeGreaterThanOrEqual(10);
    expect(rope.tableBuilds).toBe(1);
    const x = tf.ones([1, 2, 16, 8]);
    for (let step = 0; step < 20; step++) tf.dispose(rope.rotate(x, { offset: step }));
    const again = rope.tables(20);
    expect(again.cos).toBe(first.cos);
    expect(again.sin).toBe(first.sin);
    expect(rope.tableBuilds).toBe(1);
    // a far offset grows the tables once; the old tensors are disposed
    tf.dispose(rope.rotate(x, { offset: 1000 }));
    expect(rope.tableBuilds).toBe(2);
    expect(rope.capacity).toBeGreaterThanOrEqual(1016);
    expect(first.cos.isDisposed).toBe(true);
    const grown = rope.tables(1016);
    expect(grown.cos).not.toBe(first.cos);
    tf.dispose(rope.rotate(x, { offset: 900 }));
    expect(rope.tableBuilds).toBe(2);
    // table values: row p, column c (interleaved) = cos(p · invFreq[c >> 1])
    const cos = grown.cos.arraySync();
    expect(cos[5]?.[3]).toBeCloseTo(Math.cos(5 * (rope.invFreq[1] as number)), 6);
    x.dispose();
    rope.dispose();
    expect(grown.cos.isDisposed).toBe(true);
  });

  it('can grow its tables in the middle of a gradient computation', () => {
    const rope = new RotaryEmbedding({ dim: 8 });
    tf.tidy(() => {
      const x = randomInput([1, 3, 8], 11); // [B, T, D]
      const objective = (input: tf.Tensor) =>
        tf.add(
          tf.sum(tf.square(rope.rotate(input, { offset: 0 }))),
          tf.sum(tf.square(rope.rotate(input, { offset: 5000 }))), // forces a regrowth mid-tape
        );
      rope.tables(3); // build the small tables first
      const builds = rope.tableBuilds;
      const gradient = tf.grad(objective)(x);
      expect(rope.tableBuilds).toBe(builds + 1);
      // each term is ‖x‖², so the gradient is 4x
      expect(maxAbs(gradient, tf.mul(x, 4))).toBeLessThan(1e-4);
    });
    rope.dispose();
  });

  it('keeps its tables when built inside a tf.tidy, and leaks nothing per call', () => {
    const rope = new RotaryEmbedding({ dim: 16, xpos: { scaleBase: 64 } });
    const q = tf.randomNormal([2, 2, 8, 16]);
    const k = tf.randomNormal([2, 2, 8, 16]);
    tf.tidy(() => rope.rotateQueriesAndKeys(q, k)); // first build happens inside a tidy
    expect(rope.tables(8).cos.isDisposed).toBe(false);
    const before = tf.memory().numTensors;
    for (let step = 0; step < 25; step++) {
      const [rq, rk] = rope.rotateQueriesAndKeys(q, k, { queryOffset: step, keyOffset: step });
      // exactly the two results are new
      expect(tf.memory().numTensors).toBe(before + 2);
      tf.dispose([rq, rk]);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([q, k]);
    rope.dispose();
    // q, k, the three tables and the pair-swap indices (a small tensor swaps pairs by a gather)
    expect(tf.memory().numTensors).toBe(before - 6);
  });
});

describe('RotaryEmbedding one position at a time', () => {
  // Generation rotates one position per step; those calls read kept table rows.
  it.each(layouts)(
    'equals the rows of one call over all positions, and keeps one row at a time (%s)',
    (layout) => {
      const rope = new RotaryEmbedding({ dim: 8, layout });
      const x = randomInput([1, 3, 12, 10], 5); // [B, H, T, D], 2 features pass through
      const whole = rope.rotate(x, { offset: 4 });
      rope.rotate(tf.slice(x, [0, 0, 0, 0], [1, 3, 1, 10]), { offset: 4 }).dispose();
      const before = tf.memory().numTensors;
      for (let t = 0; t < 12; t++) {
        const single = tf.tidy(() => {
          const row = tf.slice(x, [0, 0, t, 0], [1, 3, 1, 10]);
          const rotated = rope.rotate(row, { offset: 4 + t });
          return tf.max(tf.abs(tf.sub(rotated, tf.slice(whole, [0, 0, t, 0], [1, 3, 1, 10]))));
        });
        expect(single.dataSync()[0]).toBe(0); // the same arithmetic, bit for bit
        single.dispose();
        expect(tf.memory().numTensors).toBe(before); // the previous row replaced, not kept
      }
      // a gradient through a one-position call (the rows are not used under a tape)
      const gradient = tf.grad((input: tf.Tensor) => tf.sum(rope.rotate(input, { offset: 7 })))(
        tf.slice(x, [0, 0, 3, 0], [1, 3, 1, 10]),
      );
      expect(gradient.shape).toEqual([1, 3, 1, 10]);
      tf.dispose([x, whole, gradient]);
      rope.dispose();
    },
  );
});

describe('RotaryEmbedding xpos', () => {
  it('keeps scores relative: shifting both offsets changes nothing', () => {
    const rope = new RotaryEmbedding({ dim: 16, xpos: { scaleBase: 32 } });
    tf.tidy(() => {
      const q = randomInput([1, 1, 4, 16], 8);
      const k = randomInput([1, 1, 6, 16], 9);
      const scores = (shift: number) => {
        const [rq, rk] = rope.rotateQueriesAndKeys(q, k, {
          queryOffset: 2 + shift,
          keyOffset: shift,
        });
        return tf.matMul(rq, rk, false, true); // [1, 1, 4, 6]
      };
      expect(maxAbs(scores(0), scores(37))).toBeLessThan(1e-4);
      // queries are scaled up and keys down away from the centre, so norms are not preserved
      const [rq] = rope.rotateQueriesAndKeys(q, k, { queryOffset: 40 });
      expect(maxAbs(tf.norm(rq, 2, -1), tf.norm(q, 2, -1))).toBeGreaterThan(1e-3);
    });
    rope.dispose();
  });

  it('requires a role for plain rotate', () => {
    const rope = new RotaryEmbedding({ dim: 8, xpos: { scaleBase: 16 } });
    const x = tf.ones([1, 3, 8]);
    expect(() => rope.rotate(x)).toThrow(/uses xpos/);
    x.dispose();
    rope.dispose();
  });
});

describe('RotaryEmbedding errors', () => {
  it('names the bad option or shape', () => {
    expect(() => new RotaryEmbedding({ dim: 7 })).toThrow(
      /dim must be a positive even integer, got 7/,
    );
    expect(() => new RotaryEmbedding({ dim: 8, interpolationFactor: 0.5 })).toThrow(
      /interpolationFactor/,
    );
    expect(() => new RotaryEmbedding({ dim: 8, layout: 'neox' as RotaryLayout })).toThrow(/layout/);
    const rope = new RotaryEmbedding({ dim: 8 });
    const x = tf.ones([2, 3, 4]);
    expect(() => rope.rotate(x)).toThrow(
      /rotary dim 8 exceeds the feature dim of shape \[2, 3, 4\]/,
    );
    const y = tf.ones([2, 8]);
    expect(() => rope.rotate(y, { seqAxis: -1 })).toThrow(/seqAxis -1/);
    expect(() => rope.rotate(y, { offset: -1 })).toThrow(/offset/);
    try {
      rope.rotate(x);
    } catch (error) {
      expect(error).toBeInstanceOf(RotaryEmbeddingError);
      expect((error as RotaryEmbeddingError).isUserError).toBe(true);
    }
    tf.dispose([x, y]);
    rope.dispose();
  });
});

describe('browser safety', () => {
  it('library sources import nothing but tfjs-core, @baka/common and each other', () => {
    const directory = new URL('./', import.meta.url);
    const sources = readdirSync(directory).filter(
      (name) => name.endsWith('.ts') && !name.endsWith('.test.ts'),
    );
    expect(sources).toContain('rotary-embedding.ts');
    for (const name of sources) {
      const text = readFileSync(new URL(name, directory), 'utf8');
      const specifiers = [...text.matchAll(/from\s+'([^']+)'/g)].map((match) => match[1]);
      for (const specifier of specifiers) {
        expect(
          // @baka/common's root entry is browser-safe too (its own test checks it)
          specifier === '@tensorflow/tfjs-core' ||
            specifier === '@baka/common' ||
            specifier?.startsWith('./'),
          `${name}: ${specifier}`,
        ).toBe(true);
      }
      expect(text).not.toMatch(/\b(process|Buffer|require)\b[.(]/);
    }
  });
});
