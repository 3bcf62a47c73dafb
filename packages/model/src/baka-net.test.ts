// Equivalences (no fixtures): the chunked XL forward equals an unchunked computation written
// here from the math; memory 'none' equals independent chunks; forward and backward leak no
// tensors.
//
// Shape legend: S sequence, D dim_model, H heads, K dim_head, B batch.
import * as tf from '@tensorflow/tfjs-core';
// gradients of the core ops: tfjs-node registers them, the cpu backend does not
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { makeConfig } from './config';
import type { BakaConfig } from './config';
import { layerNorm } from './layer-norm';
import { elephant } from './mlp';
import { int2d, maxAbsDifference } from './test-fixtures';

const base = makeConfig({
  dim_model: 16,
  dim_ff: 24,
  n_layers: 3,
  n_heads: 2,
  n_vocab: 40,
  n_ctx: 4,
});

function randomIds(rows: number, length: number, seed: number): number[][] {
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state;
  };
  return Array.from({ length: rows }, () => Array.from({ length }, () => next() % base.n_vocab));
}

/**
 * The whole sequence at once, layer by layer: every position's q/k/v, rotated at its document
 * position (rotary scores depend only on distances, so this equals the per-chunk 'reset'
 * rotation), one [S, 2S] score matrix per head against [memory keys ; own keys] with a block
 * mask: own keys of the same chunk up to the query, memory keys of exactly the previous chunk.
 */
function unchunkedLogits(model: BakaCausalLM, ids: number[][]): tf.Tensor3D {
  const config = model.config;
  const { n_ctx: chunk, n_heads: heads, dim_model: dimModel } = config;
  return tf.tidy(() => {
    const batch = ids.length;
    const length = ids[0]!.length;
    const headDim = config.dim_attn / heads;
    const allowedOwn = new Float32Array(length * length);
    const allowedMemory = new Float32Array(length * length);
    for (let t = 0; t < length; t++) {
      for (let u = 0; u < length; u++) {
        const sameChunk = Math.floor(t / chunk) === Math.floor(u / chunk);
        allowedOwn[t * length + u] = sameChunk && u <= t ? 0 : -1e9;
        allowedMemory[t * length + u] =
          Math.floor(u / chunk) === Math.floor(t / chunk) - 1 ? 0 : -1e9;
      }
    }
    const maskOwn = tf.tensor2d(allowedOwn, [length, length]);
    const maskMemory = tf.tensor2d(allowedMemory, [length, length]);
    const rotate = (x: tf.Tensor4D) => model.rotary.rotate(x, { offset: 0 }); // [B, H, S, K]
    const heads4 = (x: tf.Tensor2D, width: number) =>
      tf.transpose(tf.reshape(x, [batch, length, heads, width]), [0, 2, 1, 3]) as tf.Tensor4D; // [B, H, S, width]
    let x = tf.reshape(model.embed(int2d(ids)), [batch * length, dimModel]) as tf.Tensor2D; // [B*S, D]
    let previous: { k: tf.Tensor4D; v: tf.Tensor4D } | null = null;
    for (let index = 0; index < config.n_layers; index++) {
      const get = (suffix: string) =>
        model.parameters.get(`model.layers.${index}.${suffix}`) as tf.Tensor as tf.Tensor2D;
      const w = {
        q: get('attn.q.weight'),
        k: get('attn.k.weight'),
        v: get('attn.v.weight'),
        o: get('attn.o.weight'),
      };
      const [gate, up, down] = ['fc_gate', 'fc_up', 'fc_down'].map((name) =>
        get(`mlp.${name}.weight`),
      );
      const h = layerNorm(
        x,
        get('norm_in.weight') as tf.Tensor as tf.Tensor1D,
        get('norm_in.bias') as tf.Tensor as tf.Tensor1D,
      );
      const q = rotate(heads4(tf.matMul(h, w.q, false, true), headDim));
      const kRaw = heads4(tf.matMul(h, w.k, false, true), headDim);
      const k = rotate(kRaw);
      const v = heads4(tf.matMul(h, w.v, false, true), dimModel / heads);
      const own = tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(headDim)), maskOwn); // [B, H, S, S]
      const memory = config.memory_source === 'previous-layer' ? previous : { k, v };
      let attended: tf.Tensor4D;
      if (memory === null) {
        attended = tf.matMul(tf.softmax(own), v) as tf.Tensor4D;
      } else {
        const past = tf.add(
          tf.div(tf.matMul(q, memory.k, false, true), Math.sqrt(headDim)),
          maskMemory,
        ); // [B, H, S, S]
        const weights = tf.softmax(tf.concat([past, own], 3)); // [B, H, S, 2S]
        attended = tf.matMul(weights, tf.concat([memory.v, v], 2)) as tf.Tensor4D; // [B, H, S, Kv]
      }
      const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [
        batch * length,
        dimModel,
      ]) as tf.Tensor2D;
      const attention = tf.matMul(merged, w.o, false, true);
      const mlp = tf.matMul(
        tf.mul(tf.matMul(h, up!, false, true), elephant(tf.matMul(h, gate!, false, true))),
        down!,
        false,
        true,
      );
      x = tf.add(tf.add(x, attention), mlp) as tf.Tensor2D;
      previous = { k, v };
    }
    return tf.reshape(model.head(x), [batch, length, config.n_vocab]) as tf.Tensor3D;
  });
}

describe('chunked XL forward', () => {
  it.each(['previous-layer', 'same-layer'] as const)(
    'equals an unchunked block-masked computation (%s source, 3.5 chunks)',
    (source) => {
      const model = BakaCausalLM.create({ ...base, memory_source: source }, { seed: 3 });
      const ids = randomIds(2, 14, 11);
      const input = int2d(ids);
      const { logits } = model.forward(input);
      const reference = unchunkedLogits(model, ids);
      expect(maxAbsDifference(logits.dataSync(), reference.dataSync())).toBeLessThan(1e-4);
      tf.dispose([input, logits, reference]);
      model.dispose();
    },
  );

  it('feeding the sequence in two calls with the memory equals one call', () => {
    for (const policy of ['reset', 'absolute'] as const) {
      const model = BakaCausalLM.create({ ...base, position_policy: policy }, { seed: 5 });
      const ids = randomIds(2, 12, 7);
      const whole = tf.tidy(() => model.forward(int2d(ids)).logits);
      const parts = tf.tidy(() => {
        const first = model.forward(int2d(ids.map((row) => row.slice(0, 8))));
        const second = model.forward(int2d(ids.map((row) => row.slice(8))), {
          memory: first.memory,
        });
        return tf.concat([first.logits, second.logits], 1);
      });
      expect(maxAbsDifference(parts.dataSync(), whole.dataSync())).toBeLessThan(1e-5);
      tf.dispose([whole, parts]);
      model.dispose();
    }
  });

  it("memory 'none' equals running every chunk on its own", () => {
    const model = BakaCausalLM.create({ ...base, memory: 'none' }, { seed: 9 });
    const ids = randomIds(3, 10, 5);
    const { logits, memory } = model.forward(int2d(ids));
    expect(memory).toBeNull();
    const pieces = [0, 4, 8].map(
      (start) => model.forward(int2d(ids.map((row) => row.slice(start, start + 4)))).logits,
    );
    const joined = tf.concat(pieces, 1);
    // the same math; only the matmul row blocking differs (rows 3x10 vs 3x4)
    expect(maxAbsDifference(logits.dataSync(), joined.dataSync())).toBeLessThan(1e-5);
    tf.dispose([logits, joined, ...pieces]);
    model.dispose();
  });

  it('xl memory changes the later chunks (so the equivalences above are not vacuous)', () => {
    const xl = BakaCausalLM.create(base, { seed: 9 });
    const none = BakaCausalLM.create({ ...base, memory: 'none' } as BakaConfig, { seed: 9 });
    const ids = int2d(randomIds(1, 8, 5));
    const a = xl.forward(ids).logits;
    const b = none.forward(ids).logits;
    const firstChunk = (t: tf.Tensor3D) => tf.slice(t, [0, 0, 0], [1, 4, -1]).dataSync();
    const secondChunk = (t: tf.Tensor3D) => tf.slice(t, [0, 4, 0], [1, 4, -1]).dataSync();
    expect(maxAbsDifference(firstChunk(a), firstChunk(b))).toBe(0);
    expect(maxAbsDifference(secondChunk(a), secondChunk(b))).toBeGreaterThan(1e-3);
    xl.dispose();
    none.dispose();
  });
});

describe('tensor hygiene', () => {
  it('forward, loss and gradients leave no tensors behind across steps', () => {
    const model = BakaCausalLM.create(base, { seed: 1 });
    const ids = int2d(randomIds(2, 11, 3));
    const variables = [...model.trainableParameters().values()];
    const step = () => {
      const logits = tf.tidy(() => model.forward(ids).logits);
      logits.dispose();
      const { value, grads } = tf.variableGrads(() => model.loss(ids, ids).loss, variables);
      tf.dispose([value, ...Object.values(grads)]);
      tf.tidy(() => {
        const { memory } = model.forward(ids);
        const carried = memory!.detach();
        model.loss(ids, ids, { memory: carried });
        carried.dispose();
      });
    };
    step(); // builds the cached masks and rotary tables
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    ids.dispose();
    model.dispose();
  });

  it('dispose frees every variable, table and mask', () => {
    const before = tf.memory().numTensors;
    const model = BakaCausalLM.create(base, { seed: 1 });
    const ids = int2d(randomIds(1, 9, 3));
    tf.tidy(() => {
      model.forward(ids);
    });
    model.generate([1, 2, 3], { maxNewTokens: 6, temperature: 0 });
    ids.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
