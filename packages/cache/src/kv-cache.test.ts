// KVCache: incremental decoding reproduces a chunked XL full pass (XLMemory + positions) for
// every memory source, position policy and memory limit; rows; leaks.
//
// Shape legend: B batch, S sequence, T chunk/step tokens, D model dim, H heads, K head dim,
// P memory length.
import { RotaryEmbedding } from '@baka/rope';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { KVCache, type KVCacheOptions } from './kv-cache';
import { type PositionPolicy, positions } from './positions';
import { type MemorySource, XLMemory } from './xl-memory';

const B = 2;
const D = 8;
const H = 2;
const K = D / H;
const LAYERS = 3;
const rope = new RotaryEmbedding({ dim: K });
const weights = Array.from({ length: LAYERS }, (_, layer) =>
  [0, 1, 2].map((which) => tf.keep(tf.randomNormal([D, D], 0, 0.5, 'float32', 10 * layer + which))),
);

let worstRelative = 0;

afterAll(() => {
  console.log(
    `KVCache vs full pass: worst max-abs difference / output scale ${worstRelative.toExponential(2)}`,
  );
  rope.dispose();
  tf.dispose(weights.flat());
});

function heads(x: tf.Tensor3D): tf.Tensor4D {
  const [batch, tokens] = x.shape;
  return tf.transpose(tf.reshape(x, [batch, tokens, H, K]), [0, 2, 1, 3]); // [B, H, T, K]
}

function projections(x: tf.Tensor3D, layer: number): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
  const [batch, tokens] = x.shape;
  const flat = tf.reshape(x, [batch * tokens, D]); // [B·T, D]
  const [wq, wk, wv] = weights[layer] as tf.Tensor[];
  const project = (w: tf.Tensor) =>
    heads(tf.reshape(tf.matMul(flat, w as tf.Tensor2D), [batch, tokens, D]));
  return [project(wq as tf.Tensor), project(wk as tf.Tensor), project(wv as tf.Tensor)];
}

/** Attention of queries [B, H, t, K] over keys [B, H, L, K]; query j sees keys 0..diagonal+j. */
function attention(
  q: tf.Tensor4D,
  keys: tf.Tensor4D,
  values: tf.Tensor4D,
  queryOffset: number,
  keyOffset: number,
  diagonal: number,
): tf.Tensor3D {
  const [batch, , tokens] = q.shape;
  const length = keys.shape[2];
  const rq = rope.rotate(q, { offset: queryOffset });
  const rk = rope.rotate(keys, { offset: keyOffset });
  const scores = tf.mul(tf.matMul(rq, rk, false, true), 1 / Math.sqrt(K)); // [B, H, t, L]
  const mask = new Float32Array(tokens * length);
  for (let j = 0; j < tokens; j++)
    for (let m = 0; m < length; m++) mask[j * length + m] = m <= diagonal + j ? 0 : -1e9;
  const probabilities = tf.softmax(tf.add(scores, tf.tensor2d(mask, [tokens, length])));
  const out = tf.matMul(probabilities, values); // [B, H, t, K]
  return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [batch, tokens, D]); // [B, t, D]
}

interface Setup {
  chunkLength: number;
  memory: 'xl' | 'none';
  source: MemorySource;
  policy: PositionPolicy;
  maxMemoryLength?: number;
}

/** The reference: the whole sequence in chunks of chunkLength with XL memory between chunks. */
function fullPass(x: tf.Tensor3D, setup: Setup): tf.Tensor3D {
  return tf.tidy(() => {
    const memory = new XLMemory({
      nLayers: LAYERS,
      source: setup.source,
      ...(setup.maxMemoryLength === undefined ? {} : { maxLength: setup.maxMemoryLength }),
    });
    const outputs: tf.Tensor3D[] = [];
    const length = x.shape[1];
    for (let start = 0; start < length; start += setup.chunkLength) {
      const tokens = Math.min(setup.chunkLength, length - start);
      let y = tf.slice(x, [0, start, 0], [-1, tokens, -1]) as tf.Tensor3D; // [B, T, D]
      for (let layer = 0; layer < LAYERS; layer++) {
        const [q, k, v] = projections(y, layer);
        const past = setup.memory === 'xl' ? memory.pastFor(layer) : null;
        const pastLength = past === null ? 0 : past.k.shape[2];
        const keys = past === null ? k : (tf.concat([past.k, k], 2) as tf.Tensor4D); // [B, H, P+T, K]
        const values = past === null ? v : (tf.concat([past.v, v], 2) as tf.Tensor4D);
        const offsets = positions(setup.policy, pastLength, tokens, start);
        y = tf.add(
          y,
          attention(q, keys, values, offsets.queryOffset, offsets.keyOffset, pastLength),
        ) as tf.Tensor3D;
        memory.update(layer, k, v, start);
      }
      outputs.push(y);
    }
    return tf.concat(outputs, 1) as tf.Tensor3D; // [B, S, D]
  });
}

/** The prompt in steps of `room` tokens, then one token at a time. */
function incremental(
  x: tf.Tensor3D,
  setup: Setup,
  promptLength: number,
): { output: tf.Tensor3D; cache: KVCache } {
  const options: KVCacheOptions = {
    nLayers: LAYERS,
    chunkLength: setup.chunkLength,
    memory: setup.memory,
    source: setup.source,
    policy: setup.policy,
    ...(setup.maxMemoryLength === undefined ? {} : { maxMemoryLength: setup.maxMemoryLength }),
  };
  const cache = new KVCache(options);
  const outputs: tf.Tensor3D[] = [];
  const length = x.shape[1];
  while (cache.position < length) {
    const remainingPrompt = promptLength - cache.position;
    const tokens = remainingPrompt > 0 ? Math.min(cache.room, remainingPrompt) : 1;
    const start = cache.position;
    outputs.push(
      tf.tidy(() => {
        let y = tf.slice(x, [0, start, 0], [-1, tokens, -1]) as tf.Tensor3D; // [B, t, D]
        for (let layer = 0; layer < LAYERS; layer++) {
          const [q, k, v] = projections(y, layer);
          const step = cache.attend(layer, k, v);
          y = tf.add(
            y,
            attention(q, step.keys, step.values, step.queryOffset, step.keyOffset, step.diagonal),
          ) as tf.Tensor3D;
        }
        return y;
      }),
    );
    expect(cache.position).toBe(start + tokens);
  }
  const output = tf.concat(outputs, 1) as tf.Tensor3D;
  tf.dispose(outputs);
  return { output, cache };
}

/**
 * The same feeding through the state-view API: every layer's view is taken first (state in), the
 * layers run, then each appends its new k/v (state out), optionally handing over the joined
 * [past ; new] it built.
 */
function incrementalByView(
  x: tf.Tensor3D,
  setup: Setup,
  promptLength: number,
  handOverJoined: boolean,
): { output: tf.Tensor3D; cache: KVCache } {
  const cache = new KVCache({
    nLayers: LAYERS,
    chunkLength: setup.chunkLength,
    memory: setup.memory,
    source: setup.source,
    policy: setup.policy,
    ...(setup.maxMemoryLength === undefined ? {} : { maxMemoryLength: setup.maxMemoryLength }),
  });
  const outputs: tf.Tensor3D[] = [];
  const length = x.shape[1];
  while (cache.position < length) {
    const remainingPrompt = promptLength - cache.position;
    const tokens = remainingPrompt > 0 ? Math.min(cache.room, remainingPrompt) : 1;
    const start = cache.position;
    outputs.push(
      tf.tidy(() => {
        const views = Array.from({ length: LAYERS }, (_, layer) => cache.view(layer));
        const written: {
          k: tf.Tensor4D;
          v: tf.Tensor4D;
          keys: tf.Tensor4D;
          values: tf.Tensor4D;
        }[] = [];
        let y = tf.slice(x, [0, start, 0], [-1, tokens, -1]) as tf.Tensor3D; // [B, t, D]
        views.forEach(({ past, keyOffset }, layer) => {
          const [q, k, v] = projections(y, layer);
          const pastLength = past === null ? 0 : past.k.shape[2];
          const keys = past === null ? k : (tf.concat([past.k, k], 2) as tf.Tensor4D); // [B, H, L+t, K]
          const values = past === null ? v : (tf.concat([past.v, v], 2) as tf.Tensor4D);
          y = tf.add(
            y,
            attention(q, keys, values, keyOffset + pastLength, keyOffset, pastLength),
          ) as tf.Tensor3D;
          written.push({ k, v, keys, values });
        });
        written.forEach(({ k, v, keys, values }, layer) => {
          cache.append(layer, k, v, handOverJoined ? { joined: { k: keys, v: values } } : {});
        });
        return y;
      }),
    );
    expect(cache.position).toBe(start + tokens);
  }
  const output = tf.concat(outputs, 1) as tf.Tensor3D;
  tf.dispose(outputs);
  return { output, cache };
}

const setups: Setup[] = [
  { chunkLength: 4, memory: 'xl', source: 'previous-layer', policy: 'reset' },
  { chunkLength: 4, memory: 'xl', source: 'previous-layer', policy: 'absolute' },
  { chunkLength: 5, memory: 'xl', source: 'same-layer', policy: 'reset' },
  { chunkLength: 5, memory: 'xl', source: 'same-layer', policy: 'absolute' },
  { chunkLength: 4, memory: 'xl', source: 'previous-layer', policy: 'reset', maxMemoryLength: 2 },
  { chunkLength: 3, memory: 'none', source: 'previous-layer', policy: 'reset' },
];

describe('KVCache reproduces the chunked full pass', () => {
  for (const setup of setups) {
    const name = `${setup.memory} ${setup.source} ${setup.policy} n_ctx=${setup.chunkLength}${setup.maxMemoryLength === undefined ? '' : ` M=${setup.maxMemoryLength}`}`;
    it(name, () => {
      const x = tf.randomNormal([B, 14, D], 0, 1, 'float32', 7) as tf.Tensor3D; // [B, S, D]
      const reference = fullPass(x, setup);
      const scale = tf.tidy(() => tf.max(tf.abs(reference)).dataSync()[0] as number);
      for (const promptLength of [1, 6, 14]) {
        const { output, cache } = incremental(x, setup, promptLength);
        const difference = tf.tidy(
          () => tf.max(tf.abs(tf.sub(output, reference))).dataSync()[0] as number,
        );
        // fp32: the incremental path multiplies differently shaped matrices, which native
        // TensorFlow (oneDNN) sums in another order; through 3 layers of softmax attention that
        // gives up to ~1e-6 of the output scale (|y| ~10). The cpu backend matches exactly. A
        // wrong position, mask or memory shows up at ~1e-1 (see the 'memory matters' test).
        worstRelative = Math.max(worstRelative, difference / scale);
        expect(difference / scale, `prompt ${promptLength}`).toBeLessThan(1e-5);
        tf.dispose(output);
        cache.dispose();
      }
      tf.dispose([x, reference]);
    });
  }

  for (const setup of [setups[0], setups[3], setups[4], setups[5]] as Setup[]) {
    const name = `view + append: ${setup.memory} ${setup.source} ${setup.policy} n_ctx=${setup.chunkLength}${setup.maxMemoryLength === undefined ? '' : ` M=${setup.maxMemoryLength}`}`;
    it(name, () => {
      const x = tf.randomNormal([B, 14, D], 0, 1, 'float32', 7) as tf.Tensor3D; // [B, S, D]
      const reference = fullPass(x, setup);
      const scale = tf.tidy(() => tf.max(tf.abs(reference)).dataSync()[0] as number);
      for (const handOverJoined of [false, true]) {
        for (const promptLength of [1, 6, 14]) {
          const before = tf.memory().numTensors;
          const { output, cache } = incrementalByView(x, setup, promptLength, handOverJoined);
          const difference = tf.tidy(
            () => tf.max(tf.abs(tf.sub(output, reference))).dataSync()[0] as number,
          );
          worstRelative = Math.max(worstRelative, difference / scale);
          expect(difference / scale, `prompt ${promptLength}`).toBeLessThan(1e-5);
          tf.dispose(output);
          cache.dispose();
          expect(tf.memory().numTensors).toBe(before);
        }
      }
      tf.dispose([x, reference]);
    });
  }

  it('memory actually matters: without it, outputs after the first chunk differ', () => {
    const x = tf.randomNormal([B, 8, D], 0, 1, 'float32', 3) as tf.Tensor3D;
    const withMemory = fullPass(x, setups[0] as Setup);
    const without = fullPass(x, { ...(setups[0] as Setup), memory: 'none' });
    const firstChunk = tf.tidy(
      () =>
        tf.max(tf.abs(tf.slice(tf.sub(withMemory, without), [0, 0, 0], [-1, 4, -1]))).dataSync()[0],
    );
    const secondChunk = tf.tidy(
      () =>
        tf.max(tf.abs(tf.slice(tf.sub(withMemory, without), [0, 4, 0], [-1, 4, -1]))).dataSync()[0],
    );
    expect(firstChunk).toBe(0);
    expect(secondChunk).toBeGreaterThan(1e-3);
    tf.dispose([x, withMemory, without]);
  });
});

describe('KVCache bookkeeping', () => {
  it('moves a full chunk into memory, trims it, and reports positions', () => {
    const cache = new KVCache({
      nLayers: 2,
      chunkLength: 3,
      source: 'same-layer',
      policy: 'absolute',
      maxMemoryLength: 2,
    });
    const token = (value: number) => tf.fill([1, 1, 1, 2], value) as tf.Tensor4D;
    const seen: {
      queryOffset: number;
      keyOffset: number;
      pastLength: number;
      diagonal: number;
      keys: number[];
    }[] = [];
    for (let position = 0; position < 5; position++) {
      expect(cache.room).toBe(3 - (position % 3));
      for (let layer = 0; layer < 2; layer++) {
        tf.tidy(() => {
          const step = cache.attend(layer, token(10 * layer + position), token(-position));
          if (layer === 1) {
            const keys = Array.from(step.keys.dataSync()).filter((_, i) => i % 2 === 0);
            seen.push({ ...step, keys } as never);
          }
        });
      }
    }
    expect(cache.position).toBe(5);
    expect(cache.chunkStart).toBe(3);
    expect(cache.memory.length).toBe(2);
    expect(cache.memory.pastFor(1)?.start).toBe(1);
    expect(
      seen.map(({ queryOffset, keyOffset, pastLength, diagonal, keys }) => ({
        queryOffset,
        keyOffset,
        pastLength,
        diagonal,
        keys,
      })),
    ).toEqual([
      { queryOffset: 0, keyOffset: 0, pastLength: 0, diagonal: 0, keys: [10] },
      { queryOffset: 1, keyOffset: 0, pastLength: 0, diagonal: 1, keys: [10, 11] },
      { queryOffset: 2, keyOffset: 0, pastLength: 0, diagonal: 2, keys: [10, 11, 12] },
      // chunk 2: memory = layer 1's tokens 1, 2 (last M = 2 of chunk 0..2), at positions 1, 2
      { queryOffset: 3, keyOffset: 1, pastLength: 2, diagonal: 2, keys: [11, 12, 13] },
      { queryOffset: 4, keyOffset: 1, pastLength: 2, diagonal: 3, keys: [11, 12, 13, 14] },
    ]);
    cache.dispose();
  });

  it('rejects steps that cross a chunk, skip a layer or disagree in length', () => {
    const cache = new KVCache({ nLayers: 2, chunkLength: 3 });
    const tokens = (count: number) => tf.zeros([1, 1, count, 2]) as tf.Tensor4D;
    tf.tidy(() => {
      expect(() => cache.attend(0, tokens(4), tokens(4))).toThrow(/a step holds 1..3 tokens here/);
      expect(() => cache.attend(1, tokens(1), tokens(1))).toThrow(/expected layer 0 next/);
      cache.attend(0, tokens(2), tokens(2));
      expect(() => cache.attend(1, tokens(1), tokens(1))).toThrow(
        /layer 1 got 1 tokens, layer 0 had 2/,
      );
      expect(() => cache.selectRows([0])).toThrow(/a step is in progress/);
      cache.attend(1, tokens(2), tokens(2));
      expect(cache.room).toBe(1);
    });
    cache.dispose();
  });

  it('views are taken before appending, and a joined pair must be [past ; new]', () => {
    const cache = new KVCache({ nLayers: 2, chunkLength: 3 });
    const tokens = (count: number) => tf.zeros([1, 1, count, 2]) as tf.Tensor4D;
    tf.tidy(() => {
      expect(cache.view(0)).toEqual({ past: null, keyOffset: 0 });
      cache.append(0, tokens(2), tokens(2));
      expect(() => cache.view(0)).toThrow(/already appended in this step/);
      expect(cache.view(1).past).toBeNull();
      cache.append(1, tokens(2), tokens(2));
      expect(cache.view(0).past?.k.shape).toEqual([1, 1, 2, 2]);
      expect(() =>
        cache.append(0, tokens(1), tokens(1), { joined: { k: tokens(2), v: tokens(2) } }),
      ).toThrow(/are not \[past ; new\] \(3 positions\)/);
      expect(() => cache.view(3)).toThrow(/layer 3 is not in 0..1/);
    });
    cache.dispose();
  });

  it('selectRows keeps the chosen rows of memory and of the current chunk', () => {
    const cache = new KVCache({ nLayers: 1, chunkLength: 2, source: 'same-layer' });
    const rowsToken = (position: number) =>
      tf.tensor4d(
        [0, 1, 2].map((row) => 10 * row + position),
        [3, 1, 1, 1],
      ); // [B, H, 1, K]
    for (let position = 0; position < 3; position++)
      tf.tidy(() => cache.attend(0, rowsToken(position), rowsToken(position)).keys);
    cache.selectRows([2, 0]);
    const step = cache.attend(
      0,
      tf.tensor4d([73, 3], [2, 1, 1, 1]),
      tf.tensor4d([73, 3], [2, 1, 1, 1]),
    );
    // memory = tokens 0, 1; current chunk = token 2 then the new token 3
    expect(Array.from(step.keys.dataSync())).toEqual([20, 21, 22, 73, 0, 1, 2, 3]);
    tf.dispose([step.keys, step.values]);
    cache.dispose();
  });

  it('leaks nothing: the tensor count is periodic in the chunk and back to zero after dispose', () => {
    const before = tf.memory().numTensors;
    const cache = new KVCache({ nLayers: 3, chunkLength: 4, maxMemoryLength: 3 });
    const counts: number[] = [];
    for (let position = 0; position < 40; position++) {
      tf.tidy(() => {
        for (let layer = 0; layer < 3; layer++) {
          const k = tf.randomNormal([2, 2, 1, 4]) as tf.Tensor4D;
          cache.attend(layer, k, k);
        }
      });
      counts.push(tf.memory().numTensors - before);
    }
    // after the first chunk, every chunk has the same pattern of held tensors
    for (let position = 8; position < 40; position++)
      expect(counts[position]).toBe(counts[position - 4]);
    expect(Math.max(...counts)).toBeLessThanOrEqual(3 * 2 * 2);
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
