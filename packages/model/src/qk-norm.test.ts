// Norms inside attention (qk_norm: layernorm, rmsnorm, l2, upstream 000_OLD's negator) and split
// input norms (split_norm, upstream 00x_split_ln). Parity with our PyTorch reference's fixtures
// variants/qk-* and variants/split-norm (the reference itself is checked against upstream's code
// by tools/reference/check_upstream_negator.py and check_upstream_split_ln.py); the XL memory
// keeps the normalised keys unrotated; generation, checkpoints, tensor hygiene and config errors.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
// gradients of the core ops: tfjs-node registers them, the cpu backend does not
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { afterAll, describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { loadCheckpoint, readCheckpointTensors, saveCheckpoint } from './checkpoint';
import { type BakaConfig, makeConfig, parseConfigSettings } from './config';
import { XLState } from './kinds/xl';
import { XLMemory } from './memory';
import type { SequenceState } from './sequence-state';
import {
  expectCheckpointRoundTrip,
  expectGradientParity,
  expectGreedyEqualsRecomputation,
  expectIncrementalEqualsFull,
  expectLogitParity,
  FIXTURES,
  fixtureTensors,
  int2d,
  logitsAndLoss,
  maxAbsDifference,
  parityInputs,
} from './test-fixtures';

const inputs = parityInputs();
const work = mkdtempSync(join(tmpdir(), 'baka-qk-norm-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const FIXTURE_NAMES = [
  'qk-layernorm',
  'qk-rmsnorm',
  'qk-l2',
  'qk-negator',
  'qk-split-combo',
  'split-norm',
] as const;

/** Logits [1, S, V] of a full pass as one flat array. */
function allLogits(model: BakaCausalLM, ids: number[]): Float32Array {
  return tf.tidy(() => model.forward(int2d([ids])).logits).dataSync() as Float32Array;
}

describe('qk_norm and split_norm: parity with the PyTorch reference', () => {
  it.each(FIXTURE_NAMES)(
    '%s: logits and loss over three chunks with a padded row match to 1e-4',
    async (name) => {
      const expected = fixtureTensors(`variants/${name}/expected.safetensors`);
      const model = await loadCheckpoint(`${FIXTURES}variants/${name}`);
      expectLogitParity(model, expected, name);
      model.dispose();
    },
  );

  it.each(FIXTURE_NAMES)(
    '%s: every parameter gradient matches to 1e-4 (relative to the largest entry)',
    async (name) => {
      const expected = fixtureTensors(`variants/${name}/expected.safetensors`);
      const model = await loadCheckpoint(`${FIXTURES}variants/${name}`);
      const worst = expectGradientParity(model, expected);
      console.log(`${name}: gradients worst relative error ${worst.toExponential(2)}`);
      model.dispose();
    },
  );

  it.each(FIXTURE_NAMES)(
    '%s: a second call fed the first call’s memory matches PyTorch',
    async (name) => {
      const carried = fixtureTensors(`variants/${name}/carry.safetensors`);
      const model = await loadCheckpoint(`${FIXTURES}variants/${name}`);
      const split = 11;
      const result = tf.tidy(() => {
        const first = int2d(inputs.inputIds.map((row) => row.slice(0, split)));
        const second = int2d(inputs.inputIds.map((row) => row.slice(split)));
        const secondLabels = int2d(inputs.labels.map((row) => row.slice(split)));
        const memory = (model.forward(first).memory as SequenceState).detach();
        const { loss } = model.loss(second, secondLabels, { memory });
        const { logits } = model.forward(second, { memory });
        return { logits: logits.dataSync(), loss: loss.dataSync()[0] as number };
      });
      expect(maxAbsDifference(result.logits, carried.get('logits')!.data)).toBeLessThan(1e-4);
      expect(Math.abs(result.loss - carried.get('loss')!.data[0]!)).toBeLessThan(1e-4);
      model.dispose();
    },
  );

  it('the tensors are named model.layers.{i}.attn.* / mlp.norm_in.* with the documented shapes', async () => {
    const shapes = (name: string) =>
      new Map(
        [...readCheckpointTensors(`${FIXTURES}variants/${name}`)].map(([k, t]) => [k, t.shape]),
      );
    const negator = shapes('qk-negator');
    expect(negator.get('model.layers.0.attn.negator')).toEqual([]);
    expect(negator.get('model.layers.0.attn.q_norm.weight')).toEqual([16]); // 2 x dim_head, shared
    expect(negator.get('model.layers.0.attn.k_norm.bias')).toEqual([16]);
    expect(shapes('qk-rmsnorm').get('model.layers.2.attn.k_norm.weight')).toEqual([4, 8]); // per head
    expect(shapes('qk-rmsnorm').has('model.layers.2.attn.k_norm.bias')).toBe(false);
    expect(shapes('qk-l2').get('model.layers.1.attn.qk_scale')).toEqual([4]);
    const split = shapes('split-norm');
    expect(split.has('model.layers.0.norm_in.weight')).toBe(false);
    expect(split.get('model.layers.0.attn.norm_in.bias')).toEqual([32]);
    expect(split.get('model.layers.0.mlp.norm_in.weight')).toEqual([32]);
    const combo = shapes('qk-split-combo');
    expect(combo.get('model.layers.1.attn.q_norm.weight')).toEqual([4, 16]);
    expect(combo.has('model.layers.1.attn.norm_in.weight')).toBe(true);
    expect(combo.has('model.layers.1.mlp.norm_in.weight')).toBe(false); // attention-only layer
    expect(combo.has('model.layers.1.attn.norm_in.bias')).toBe(false); // rmsnorm
  });

  it('negative controls: each option changes the numbers the fixtures pin', async () => {
    const expected = (name: string) =>
      fixtureTensors(`variants/${name}/expected.safetensors`).get('logits')!.data;
    const variant = (name: string, config: Partial<BakaConfig>, rename = (n: string) => n) => {
      const dir = `${FIXTURES}variants/${name}`;
      const tensors = readCheckpointTensors(dir);
      const base = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      return BakaCausalLM.fromTensors(
        { ...base, ...config },
        new Map([...tensors].map(([n, t]) => [n, tensors.get(rename(n)) ?? t])),
      );
    };
    const cases: [string, BakaCausalLM][] = [
      // the negator's statistics over all heads instead of each head's
      ['qk-negator', variant('qk-negator', { qk_norm_scope: 'all' })],
      // LayerNorm without its per-head separation: statistics over all heads
      ['qk-layernorm', variant('qk-layernorm', { qk_norm_scope: 'all' })],
      // q and k normalised with each other's weights
      [
        'qk-layernorm',
        variant('qk-layernorm', {}, (n) =>
          n.includes('.q_norm.')
            ? n.replace('.q_norm.', '.k_norm.')
            : n.replace('.k_norm.', '.q_norm.'),
        ),
      ],
      // the MLP reading attention's norm (one shared norm)
      ['split-norm', variant('split-norm', {}, (n) => n.replace('mlp.norm_in', 'attn.norm_in'))],
    ];
    for (const [name, model] of cases) {
      const difference = maxAbsDifference(logitsAndLoss(model).logits, expected(name));
      expect(difference, name).toBeGreaterThan(1e-3);
      model.dispose();
    }
  });
});

/** A small model with every norm weight, bias, negator and scale moved off its init. */
function perturbedModel(fields: Partial<BakaConfig>, seed: number): BakaCausalLM {
  const config = makeConfig({
    dim_model: 16,
    n_layers: 3,
    n_heads: 2,
    n_vocab: 48,
    n_ctx: 4,
    ...fields,
  });
  const model = BakaCausalLM.create(config, { seed });
  let index = 0;
  for (const [name, variable] of model.parameters) {
    if (/norm|negator|qk_scale/.test(name)) {
      variable.assign(
        tf.tidy(() =>
          tf.add(variable, tf.randomNormal(variable.shape, 0, 0.3, 'float32', seed + index++)),
        ),
      );
    }
  }
  return model;
}

const OPTIONS: [string, Partial<BakaConfig>][] = [
  ['layernorm', { qk_norm: 'layernorm' }],
  [
    'rmsnorm per-head over all heads',
    { qk_norm: 'rmsnorm', qk_norm_scope: 'all', qk_norm_weights: 'per-head' },
  ],
  ['l2 fixed scale', { qk_norm: 'l2' }],
  ['l2 learned scale', { qk_norm: 'l2', qk_norm_learned_scale: true, qk_norm_scale: 3 }],
  ['negator', { qk_norm: 'negator' }],
  [
    'negator + split_norm, same-layer',
    { qk_norm: 'negator', split_norm: true, memory_source: 'same-layer' },
  ],
  ['split_norm + rmsnorm', { split_norm: true, norm: 'rmsnorm' }],
];

describe('qk_norm: the XL memory keeps normalised, unrotated keys', () => {
  it.each(OPTIONS)('%s: two calls equal one call over the whole sequence', (_, fields) => {
    const model = perturbedModel(fields, 31);
    const ids = [5, 1, 8, 13, 21, 34, 7, 11, 40, 2, 19, 23];
    const full = allLogits(model, ids);
    const vocab = model.config.n_vocab;
    const { second, rotated } = tf.tidy(() => {
      const first = model.forward(int2d([ids.slice(0, 8)]));
      const memory = first.memory as XLState;
      const secondIds = int2d([ids.slice(8)]);
      const second = model.forward(secondIds, { memory }).logits.dataSync();
      // the memory holds the normalised keys: the negator's are 2 x dim_head wide, l2's unit long
      const keys = memory.memory.layers()[0]!.k!; // [B, H, P, K']
      expect(keys.shape[3]).toBe(fields.qk_norm === 'negator' ? 16 : 8);
      if (fields.qk_norm === 'l2') {
        const lengths = tf.sqrt(tf.sum(tf.square(keys), 3)).dataSync();
        expect(maxAbsDifference(lengths, new Float32Array(lengths.length).fill(1))).toBeLessThan(
          1e-5,
        );
      }
      // negative control: a memory holding the keys rotated (as a cache after rotary would): the
      // next chunk rotates them again, so the two calls no longer equal the one
      const layers = memory.memory.layers().map((entry) => ({
        ...entry,
        k: entry.k === null ? null : model.rotary.rotate(entry.k, { offset: 0 }),
      }));
      const wrong = new XLState(
        XLMemory.owning(
          { nLayers: model.config.n_layers, source: model.config.memory_source },
          layers,
        ),
      );
      const rotated = model.forward(secondIds, { memory: wrong }).logits.dataSync();
      wrong.dispose();
      return { second, rotated };
    });
    const difference = maxAbsDifference(second, full.slice(8 * vocab));
    expect(difference).toBeLessThan(1e-5);
    expect(maxAbsDifference(rotated, full.slice(8 * vocab))).toBeGreaterThan(1e-3);
    model.dispose();
  });
});

/** Generation also with the mechanisms whose decoding differs: pauses (rewinds), RMT, Mamba. */
const WITH_MECHANISMS: [string, Partial<BakaConfig>][] = [
  ...OPTIONS,
  [
    'negator + split_norm with pauses and RMT',
    {
      qk_norm: 'negator',
      split_norm: true,
      n_pauses: 2,
      n_rmt_tokens: 2,
      memory_source: 'same-layer',
    },
  ],
  [
    'l2 learned + split_norm with Mamba',
    { qk_norm: 'l2', qk_norm_learned_scale: true, split_norm: true, mamba_each_nth_layer: 2 },
  ],
];

describe('qk_norm and split_norm: generation, checkpoints, hygiene, config', () => {
  it.each(WITH_MECHANISMS)(
    '%s: greedy generation equals full recomputation; incremental logits equal the full pass',
    (_, fields) => {
      const model = perturbedModel(fields, 41);
      expectGreedyEqualsRecomputation(model, undefined, 8);
      // pieces of 3, then 1 token at a time: across the chunk boundaries at 4 and 8
      expectIncrementalEqualsFull(model, [5, 1, 8, 13, 21, 34, 7, 11, 40, 2, 19]);
      model.dispose();
    },
  );

  it('training steps with carried memory leave no tensors behind', () => {
    const model = perturbedModel({ qk_norm: 'negator', split_norm: true }, 51);
    const trainable = [...model.trainableParameters().values()];
    const ids = int2d([[5, 1, 8, 13, 21, 34, 7, 11, 40, 2]]);
    let memory: SequenceState | null = null;
    const counts: number[] = [];
    for (let step = 0; step < 4; step++) {
      const { value, grads } = tf.variableGrads(() => {
        const result = model.loss(ids, ids, { memory });
        const next = (result.memory as SequenceState).detach();
        memory?.dispose();
        memory = next;
        for (const tensor of (next as XLState).tensors()) tf.keep(tensor);
        return result.loss;
      }, trainable);
      tf.tidy(() => {
        for (const variable of trainable)
          variable.assign(tf.sub(variable, tf.mul(grads[variable.name]!, 1e-3)));
      });
      tf.dispose([value, ...Object.values(grads)]);
      counts.push(tf.memory().numTensors);
    }
    expect(counts[3]).toBe(counts[1]);
    (memory as SequenceState | null)?.dispose();
    ids.dispose();
    model.dispose();
  });

  it('saves the options and their tensors and loads back bit-exactly; defaults write none of the fields', async () => {
    const model = perturbedModel(
      { qk_norm: 'l2', qk_norm_learned_scale: true, qk_norm_scale: 2.5, split_norm: true },
      61,
    );
    const { json } = await expectCheckpointRoundTrip(model, join(work, 'qk'));
    expect(json).toMatchObject({
      qk_norm: 'l2',
      qk_norm_learned_scale: true,
      qk_norm_scale: 2.5,
      split_norm: true,
    });
    expect(json.qk_norm_scope).toBeUndefined(); // at its default
    const plain = BakaCausalLM.create(
      makeConfig({ dim_model: 16, n_layers: 1, n_heads: 2, n_vocab: 20, n_ctx: 4 }),
    );
    await saveCheckpoint(join(work, 'plain'), plain);
    const plainJson = JSON.parse(readFileSync(join(work, 'plain', 'config.json'), 'utf8'));
    expect(
      Object.keys(plainJson).filter((key) => key.startsWith('qk_') || key === 'split_norm'),
    ).toEqual([]);
    for (const m of [model, plain]) m.dispose();
  });

  it('l2: the learned scale starts at qk_norm_scale (0: sqrt(dim_head)) and equals the fixed scale there', () => {
    const learned = BakaCausalLM.create(
      makeConfig({
        dim_model: 16,
        n_layers: 2,
        n_heads: 2,
        n_vocab: 48,
        n_ctx: 4,
        qk_norm: 'l2',
        qk_norm_learned_scale: true,
      }),
      { seed: 71 },
    );
    const scale = learned.parameters.get('model.layers.0.attn.qk_scale')!;
    expect(Array.from(scale.dataSync())).toEqual([
      Math.fround(Math.sqrt(8)),
      Math.fround(Math.sqrt(8)),
    ]);
    const fixed = BakaCausalLM.fromTensors(
      { ...learned.config, qk_norm_learned_scale: false },
      new Map(
        [...learned.parameters]
          .filter(([name]) => !name.endsWith('qk_scale'))
          .map(([name, v]) => [name, { shape: v.shape, data: v.dataSync() as Float32Array }]),
      ),
    );
    const ids = [5, 1, 8, 13, 21, 34, 7, 11, 40];
    expect(maxAbsDifference(allLogits(fixed, ids), allLogits(learned, ids))).toBeLessThan(1e-5);
    // negative control: another scale changes the logits
    scale.assign(tf.fill([2], 1.5));
    expect(maxAbsDifference(allLogits(fixed, ids), allLogits(learned, ids))).toBeGreaterThan(1e-3);
    fixed.dispose();
    learned.dispose();
  });

  it('--set parses the fields; a field the chosen qk_norm does not use is a one-line error naming it', () => {
    expect(
      parseConfigSettings([
        'qk_norm=negator',
        'qk_norm_scope=all',
        'qk_norm_weights=per-head',
        'split_norm=true',
      ]),
    ).toEqual({
      qk_norm: 'negator',
      qk_norm_scope: 'all',
      qk_norm_weights: 'per-head',
      split_norm: true,
    });
    expect(() => parseConfigSettings(['qk_norm=cosine'])).toThrow(
      /qk_norm=cosine: expected one of none, layernorm, rmsnorm, l2, negator/,
    );
    const base = { dim_model: 16, n_layers: 1, n_heads: 2, n_vocab: 20 };
    expect(() => makeConfig({ ...base, qk_norm: 'l2', qk_norm_scope: 'all' })).toThrow(
      /^config: qk_norm_scope: 'all' needs qk_norm layernorm, rmsnorm or negator, not 'l2'$/,
    );
    expect(() => makeConfig({ ...base, qk_norm_weights: 'per-head' })).toThrow(
      /qk_norm_weights: .* not 'none'/,
    );
    expect(() => makeConfig({ ...base, qk_norm: 'layernorm', qk_norm_scale: 2 })).toThrow(
      /qk_norm_scale: only qk_norm l2/,
    );
    expect(() => makeConfig({ ...base, qk_norm_learned_scale: true })).toThrow(
      /qk_norm_learned_scale: only qk_norm l2/,
    );
    expect(() => makeConfig({ ...base, qk_norm: 'l2', qk_norm_scale: -1 })).toThrow(
      /qk_norm_scale/,
    );
  });
});
