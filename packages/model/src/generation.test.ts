import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { makeConfig } from './config';
import type { BakaConfig } from './config';
import { IncrementalDecoder, tensorsIn } from './generation';
import { argmax, sampleToken } from './sampling';
import { int2d, maxAbsDifference } from './test-fixtures';

const base = makeConfig({
  dim_model: 16,
  dim_ff: 32,
  n_layers: 3,
  n_heads: 2,
  n_vocab: 48,
  n_ctx: 4,
});

function lastLogits(model: BakaCausalLM, ids: number[]): Float32Array {
  return tf
    .tidy(() => {
      const { logits } = model.forward(int2d([ids]));
      return tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1]);
    })
    .dataSync() as Float32Array;
}

const variants: [string, Partial<BakaConfig>][] = [
  ['xl previous-layer reset', {}],
  ['xl same-layer absolute', { memory_source: 'same-layer', position_policy: 'absolute' }],
  ['none', { memory: 'none' }],
];

describe.each(variants)('generation (%s)', (_, options) => {
  it('greedy generation equals full recomputation token by token, across chunk boundaries', () => {
    const model = BakaCausalLM.create({ ...base, ...options }, { seed: 21 });
    const prompt = [3, 14, 15, 9, 2, 6]; // 1.5 chunks
    const streamed: number[] = [];
    const generated = model.generate(prompt, {
      maxNewTokens: 11,
      temperature: 0,
      onToken: (id) => streamed.push(id),
    });
    expect(generated).toHaveLength(11);
    expect(streamed).toEqual(generated);
    const sequence = [...prompt];
    for (const token of generated) {
      expect(token).toBe(argmax(lastLogits(model, sequence)));
      sequence.push(token);
    }
    model.dispose();
  });

  it('the incremental logits equal the full forward at every position', () => {
    const model = BakaCausalLM.create({ ...base, ...options }, { seed: 4 });
    const ids = [5, 1, 8, 13, 21, 34, 7, 11, 40, 2, 17];
    const decoder = new IncrementalDecoder(model);
    const full = tf.tidy(() => model.forward(int2d([ids])).logits);
    const fullValues = full.dataSync();
    // first three at once (prefill), then one at a time
    const steps = [ids.slice(0, 3), ...ids.slice(3).map((id) => [id])];
    let position = 0;
    for (const step of steps) {
      const logits = decoder.append(step);
      position += step.length;
      const expected = fullValues.subarray((position - 1) * base.n_vocab, position * base.n_vocab);
      expect(maxAbsDifference(logits, expected)).toBeLessThan(1e-4);
    }
    decoder.dispose();
    full.dispose();
    model.dispose();
  });
});

describe('sampling', () => {
  it('is deterministic for a seed and varies with it', () => {
    const model = BakaCausalLM.create(base, { seed: 2 });
    const run = (seed: number) =>
      model.generate([1, 2, 3], { maxNewTokens: 12, temperature: 1.5, seed });
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
    model.dispose();
  });

  it('top-k 1 is greedy; top-p keeps the nucleus only', () => {
    const logits = Float32Array.from([0, 5, 1, 4.9, -3]);
    const random = () => 0.999;
    expect(sampleToken(logits, { topK: 1 }, random)).toBe(1);
    // p(1) ~ 0.51, p(3) ~ 0.46: top-p 0.5 keeps only token 1, top-p 0.9 keeps 1 and 3
    expect(sampleToken(logits, { topP: 0.5 }, random)).toBe(1);
    expect(sampleToken(logits, { topP: 0.9 }, random)).toBe(3);
    expect(sampleToken(logits, { temperature: 0 }, random)).toBe(1);
  });

  it('stops at a stop token and rejects bad options', () => {
    const model = BakaCausalLM.create(base, { seed: 2 });
    const greedy = model.generate([1, 2], { maxNewTokens: 5, temperature: 0 });
    const stopped = model.generate([1, 2], {
      maxNewTokens: 5,
      temperature: 0,
      stopTokens: [greedy[1]!],
    });
    expect(stopped).toEqual(greedy.slice(0, 2));
    expect(() => model.generate([], { maxNewTokens: 3 })).toThrow(/at least one token/);
    expect(() => model.generate([1], { maxNewTokens: 3, topP: 0 })).toThrow(/topP/);
    expect(() => model.generate([99], { maxNewTokens: 3 })).toThrow(/outside the vocabulary/);
    model.dispose();
  });

  it('holds the same number of tensors at the same place of every chunk, none after dispose', () => {
    const model = BakaCausalLM.create(base, { seed: 2 });
    const ids = Array.from({ length: 4 * base.n_ctx }, (_, index) => (7 * index) % base.n_vocab);
    const warm = new IncrementalDecoder(model); // builds the masks and rotary tables
    for (const id of ids) warm.append([id]);
    warm.dispose();
    const before = tf.memory().numTensors;
    const decoder = new IncrementalDecoder(model);
    const counts = ids.map((id) => {
      decoder.append([id]);
      return tf.memory().numTensors;
    });
    // from the second chunk on (memory present), every chunk repeats the first one's counts
    for (let step = 2 * base.n_ctx; step < ids.length; step++) {
      expect(counts[step], `step ${step}`).toBe(counts[step - base.n_ctx]);
    }
    decoder.dispose();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('leaves no tensors behind', () => {
    const model = BakaCausalLM.create(base, { seed: 2 });
    model.generate([1, 2, 3], { maxNewTokens: 9, temperature: 0 }); // builds tables and masks
    const before = tf.memory().numTensors;
    model.generate([1, 2, 3], { maxNewTokens: 9, temperature: 0.8, topK: 5, seed: 3 });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('tensorsIn (what a decoder keeps of a prepared layer)', () => {
  it('finds tensors in nested plain objects and arrays, once, and skips class instances', () => {
    const a = tf.zeros([2]);
    const b = tf.ones([3]);
    const c = tf.zeros([1]);
    class Owned {
      readonly table = c;
    }
    const found = tensorsIn({ a, nested: { list: [b, a], empty: null }, owned: new Owned() });
    expect([...found]).toEqual([a, b]);
    // a model's prepared layers: the stacked q/k/v is found, the rotary tables' owner is not entered
    const model = BakaCausalLM.create(base, { seed: 1 });
    const { weights } = model.prepareLayer(0);
    const tensors = tensorsIn(weights);
    expect(tensors.has(weights.qkv!)).toBe(true);
    expect(tensors.has(weights.mlp!.down)).toBe(true);
    const variables = new Set<tf.Tensor>(model.parameters.values());
    expect([...tensors].filter((tensor) => !variables.has(tensor))).toEqual(
      [weights.qkv!, weights.mlp!.gateUp].filter((tensor) => !variables.has(tensor)),
    );
    tf.dispose([a, b, c, weights.qkv!, weights.mlp!.gateUp]);
    model.dispose();
  });
});
