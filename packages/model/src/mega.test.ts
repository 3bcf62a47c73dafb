// Mega layers (Ma et al. 2022): layer kind `mega`, Mega's damped EMA + gated attention in the
// attention branch's place, its EMA state carried across chunks, calls and generation steps.
// Parity with our PyTorch reference's fixture variants/mega (tools/reference/mega.py, whose EMA
// recurrence is checked there against the paper's convolution-kernel form), the chunked EMA
// against the sequential recurrence, reach beyond the XL memory, generation, checkpoints.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
// gradients of the core ops: tfjs-node registers them, the cpu backend does not
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { afterAll, describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { loadCheckpoint } from './checkpoint';
import type { BakaConfig } from './config';
import { makeConfig, parseConfigSettings } from './config';
import { dampedEma } from './kinds/mega';
import { LayerStatesState } from './kinds/layer-states';
import { loadSequenceState, sequenceStateKind } from './kinds/sequence-states';
import { parameterSpecs } from './parameters';
import type { SequenceState } from './sequence-state';
import {
  expectCheckpointRoundTrip,
  expectGradientParity,
  expectGreedyEqualsRecomputation,
  expectIncrementalEqualsFull,
  expectLogitParity,
  expectReferenceNames,
  FIXTURES,
  fixtureTensors,
  int2d,
  logitsAndLoss,
  maxAbs,
  maxAbsDifference,
  parameterNames,
  parityInputs,
} from './test-fixtures';

const dir = `${FIXTURES}variants/mega`;
const inputs = parityInputs();
const work = mkdtempSync(join(tmpdir(), 'baka-mega-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every position's logits of a full pass (flattened [B x S x V]). */
function allLogits(model: BakaCausalLM, rows: number[][], memory?: SequenceState): Float32Array {
  const input = int2d(rows);
  const { logits, memory: out } = model.forward(input, memory ? { memory } : {});
  const values = logits.dataSync() as Float32Array;
  tf.dispose([input, logits, ...(out?.tensors() ?? [])]);
  return values;
}

/** A forward call's memory, detached (owning its tensors); the call's own tensors are freed. */
function detachedMemory(
  model: BakaCausalLM,
  rows: number[][],
  memory?: SequenceState,
): SequenceState {
  const input = int2d(rows);
  const { logits, memory: out } = model.forward(input, memory ? { memory } : {});
  const state = out as SequenceState;
  const detached = state.detach();
  tf.dispose([input, logits, ...state.tensors()]);
  return detached;
}

/** s_t = q s_{t-1} + p beta h_t, e_t = sum_n gamma / sqrt(M) s_t, one position at a time. */
function sequentialEma(
  h: Float32Array,
  shape: number[],
  weights: Record<'delta' | 'alpha' | 'beta' | 'gamma', Float32Array>,
  emaDim: number,
  initial?: Float32Array,
): { e: Float32Array; last: Float32Array } {
  const [batch, time, dim] = shape as [number, number, number];
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const e = new Float32Array(batch * time * dim);
  const last = new Float32Array(batch * dim * emaDim);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < dim; d++) {
      for (let n = 0; n < emaDim; n++) {
        const at = d * emaDim + n;
        const p = sigmoid(weights.delta[at]!);
        const q = 1 - p * sigmoid(weights.alpha[at]!);
        const eta = weights.gamma[at]! / Math.sqrt(emaDim);
        let s = initial ? initial[(b * dim + d) * emaDim + n]! : 0;
        for (let t = 0; t < time; t++) {
          s = q * s + p * weights.beta[at]! * h[(b * time + t) * dim + d]!;
          e[(b * time + t) * dim + d]! += eta * s;
        }
        last[(b * dim + d) * emaDim + n] = s;
      }
    }
  }
  return { e, last };
}

describe('Mega layers: parity with the PyTorch reference', () => {
  const expected = fixtureTensors('variants/mega/expected.safetensors');

  it('layers 0 and 2 are Mega layers; logits and loss over three chunks match to 1e-4', async () => {
    const model = await loadCheckpoint(dir);
    expect(model.config.layer_kinds).toEqual(['mega', 'standard', 'mega']);
    expect(model.config.mega_z_dim).toBe(12);
    expect(model.parameters.has('model.layers.1.mega.ema.delta')).toBe(false);
    expect(model.parameters.has('model.layers.0.attn.q.weight')).toBe(false);
    expect(model.parameters.get('model.layers.2.mega.mx_proj.weight')!.shape).toEqual([100, 32]);
    expectLogitParity(model, expected, `mega (${tf.getBackend()})`);
    model.dispose();
  });

  it('every parameter gradient matches to 1e-4 (relative to the largest entry)', async () => {
    const model = await loadCheckpoint(dir);
    const worst = expectGradientParity(model, expected);
    console.log(
      `mega (${tf.getBackend()}): gradients worst relative error ${worst.toExponential(2)}`,
    );
    model.dispose();
  });

  it('a second call fed the first call’s memory (XL + EMA states) matches PyTorch', async () => {
    const carried = fixtureTensors('variants/mega/carry.safetensors');
    const model = await loadCheckpoint(dir);
    const split = 11;
    const first = inputs.inputIds.map((row) => row.slice(0, split));
    const second = inputs.inputIds.map((row) => row.slice(split));
    const memory = detachedMemory(model, first);
    expect(memory).toBeInstanceOf(LayerStatesState);
    const logits = allLogits(model, second, memory);
    expect(maxAbsDifference(logits, carried.get('logits')!.data)).toBeLessThan(1e-4);
    // negative control: the same XL memory with the EMA states zeroed misses the fixture
    const carriedStates = memory as LayerStatesState;
    expect(carriedStates.layers.map((state) => state && Object.keys(state))).toEqual([
      ['ema'],
      undefined,
      ['ema'],
    ]);
    const zeroed = new LayerStatesState(
      carriedStates.kind,
      carriedStates.inner,
      carriedStates.layers.map((state) => (state ? { ema: tf.zerosLike(state.ema!) } : state)),
      carriedStates.end,
      false,
    );
    expect(
      maxAbsDifference(allLogits(model, second, zeroed), carried.get('logits')!.data),
    ).toBeGreaterThan(1e-3);
    tf.dispose(zeroed.layers.flatMap((state) => (state ? [state.ema!] : [])));
    memory.dispose();
    model.dispose();
  });

  it('negative controls: another EMA decay, no omega, q and k affines swapped', async () => {
    const model = await loadCheckpoint(dir);
    const reference = expected.get('logits')!.data;
    const controls: [string, string, (t: tf.Tensor) => tf.Tensor][] = [
      ['alpha + 1', 'model.layers.0.mega.ema.alpha', (t) => tf.add(t, 1)],
      ['omega zero', 'model.layers.2.mega.ema.omega', (t) => tf.zerosLike(t)],
      ['q/k swapped', 'model.layers.0.mega.qk_gamma', (t) => tf.reverse(t, 0)],
    ];
    for (const [label, name, change] of controls) {
      const variable = model.parameters.get(name) as tf.Variable;
      const saved = tf.clone(variable);
      variable.assign(tf.tidy(() => change(saved)));
      const error = maxAbsDifference(logitsAndLoss(model).logits, reference);
      expect(error, label).toBeGreaterThan(1e-3);
      variable.assign(saved);
      saved.dispose();
    }
    model.dispose();
  });
});

describe('the EMA', () => {
  const [batch, time, dim, emaDim] = [2, 300, 5, 4];
  const weights = {
    delta: tf.randomNormal([dim, emaDim], -1, 1, 'float32', 1) as tf.Tensor2D,
    alpha: tf.randomNormal([dim, emaDim], 0, 1, 'float32', 2) as tf.Tensor2D,
    beta: tf.randomNormal([dim, emaDim], 0, 1, 'float32', 3) as tf.Tensor2D,
    gamma: tf.randomNormal([dim, emaDim], 0, 1, 'float32', 4) as tf.Tensor2D,
  };
  const values = {
    delta: weights.delta.dataSync() as Float32Array,
    alpha: weights.alpha.dataSync() as Float32Array,
    beta: weights.beta.dataSync() as Float32Array,
    gamma: weights.gamma.dataSync() as Float32Array,
  };
  afterAll(() => tf.dispose(Object.values(weights)));

  it('the chunked scan equals the sequential recurrence over 300 positions, from a state too', () => {
    const h = tf.randomNormal([batch, time, dim], 0, 1, 'float32', 5) as tf.Tensor3D;
    const initial = tf.randomNormal([batch, dim, emaDim], 0, 1, 'float32', 6) as tf.Tensor3D;
    for (const start of [null, initial]) {
      const [e, last] = dampedEma(h, weights, start);
      const want = sequentialEma(
        h.dataSync() as Float32Array,
        h.shape,
        values,
        emaDim,
        start?.dataSync() as Float32Array | undefined,
      );
      expect(maxAbsDifference(e.dataSync(), want.e)).toBeLessThan(
        1e-5 * Math.max(1, maxAbs(want.e)),
      );
      expect(maxAbsDifference(last.dataSync(), want.last)).toBeLessThan(1e-5);
      tf.dispose([e, last]);
    }
    // negative control: the recurrence with another decay is not what the scan computed
    const [e] = dampedEma(h, weights, null);
    const shifted = { ...values, alpha: values.alpha.map((a) => a + 0.5) };
    expect(
      maxAbsDifference(
        e.dataSync(),
        sequentialEma(h.dataSync() as Float32Array, h.shape, shifted, emaDim).e,
      ),
    ).toBeGreaterThan(1e-3);
    tf.dispose([h, initial, e]);
  });

  it('two calls with the carried state equal one call; without it they do not', () => {
    const h = tf.randomNormal([batch, 70, dim], 0, 1, 'float32', 7) as tf.Tensor3D;
    const [whole, wholeLast] = dampedEma(h, weights, null);
    const first = tf.slice(h, [0, 0, 0], [batch, 33, dim]);
    const second = tf.slice(h, [0, 33, 0], [batch, 37, dim]);
    const [, state] = dampedEma(first, weights, null);
    const [rest, restLast] = dampedEma(second, weights, state);
    const tail = tf.slice(whole, [0, 33, 0], [batch, 37, dim]);
    expect(maxAbsDifference(rest.dataSync(), tail.dataSync())).toBeLessThan(1e-5);
    expect(maxAbsDifference(restLast.dataSync(), wholeLast.dataSync())).toBeLessThan(1e-5);
    const [fresh] = dampedEma(second, weights, null);
    expect(maxAbsDifference(fresh.dataSync(), tail.dataSync())).toBeGreaterThan(1e-3);
    tf.dispose([h, whole, wholeLast, first, second, state, rest, restLast, tail, fresh]);
  });
});

describe('Mega layers: reach, config, checkpoints and generation', () => {
  const small = {
    dim_model: 16,
    n_layers: 2,
    n_heads: 2,
    n_vocab: 48,
    n_ctx: 4,
    memory_source: 'same-layer',
    ema_dim: 4,
  } as const;
  const config = makeConfig({ ...small, layer_kinds: ['mega', 'standard'] });

  it('a token in chunk 1 changes logits 5 chunks later with Mega, not without (XL reach 2)', () => {
    const ids = Array.from({ length: 28 }, (_, i) => (i * 7 + 3) % 48);
    const perturbed = [11, ...ids.slice(1)];
    const vocab = small.n_vocab;
    const late = (values: Float32Array) => values.slice(24 * vocab); // chunk 7's logits
    const difference = (model: BakaCausalLM) =>
      maxAbsDifference(late(allLogits(model, [ids])), late(allLogits(model, [perturbed])));
    const mega = BakaCausalLM.create(config, { seed: 4 });
    // slow decays (q = 1 - sigmoid(-3) / 2 ~ 0.98) so the EMA still holds chunk 1 24 tokens on
    const delta = mega.parameters.get('model.layers.0.mega.ema.delta') as tf.Variable;
    delta.assign(tf.fill(delta.shape, -3));
    const withMega = difference(mega);
    console.log(`mega: chunk-7 logits moved by ${withMega.toExponential(2)} (token 0 changed)`);
    expect(withMega).toBeGreaterThan(1e-4);
    mega.dispose();
    const plain = BakaCausalLM.create(makeConfig(small), { seed: 4 });
    expect(difference(plain)).toBe(0);
    plain.dispose();
  });

  it('`--set layer_kinds=mega,standard` works with same-layer memory or none; bad input names the field', () => {
    const set = parseConfigSettings(['layer_kinds=mega,standard', 'memory_source=same-layer']);
    expect(set).toEqual({ layer_kinds: ['mega', 'standard'], memory_source: 'same-layer' });
    const made = makeConfig({ dim_model: 16, n_layers: 2, n_heads: 2, ...set });
    expect([made.ema_dim, made.mega_z_dim, made.mega_h_dim]).toEqual([16, 8, 32]);
    expect(sequenceStateKind(made).describe(made)).toBe('xl/same-layer/reset+mega-ema16');
    expect(sequenceStateKind(made).evaluation).toBe('whole-article');
    const none = makeConfig({
      ...small,
      memory: 'none',
      memory_source: 'previous-layer',
      layer_kinds: ['mega', 'mega'],
    });
    expect(sequenceStateKind(none).evaluation).toBe('whole-article');
    const base = { dim_model: 16, n_layers: 2, n_heads: 2, layer_kinds: ['mega', 'standard'] };
    expect(() => makeConfig(base)).toThrow(
      /^config: layer_kinds 'mega' needs memory_source same-layer/,
    );
    expect(() => makeConfig({ ...base, memory_source: 'same-layer', mega_z_dim: 6 })).toThrow(
      /mega_z_dim \(6\) must be at least dim_head \(8\)/,
    );
    expect(() => makeConfig({ ...base, memory_source: 'same-layer', n_pauses: 2 })).toThrow(
      /n_pauses: not supported together with layer_kinds 'mega'/,
    );
    expect(() => parseConfigSettings(['ema_dim=0'])).toThrow(/ema_dim/);
    // a model without Mega layers writes no Mega fields
    const plain = makeConfig({ dim_model: 16, n_layers: 2, n_heads: 2 });
    expect(parameterSpecs(plain).some((spec) => spec.name.includes('mega'))).toBe(false);
  });

  it('init as Mega: beta +-1 by EMA dimension, q/k scales near 1, shifts 0', () => {
    const model = BakaCausalLM.create(config, { seed: 3 });
    const values = (name: string) => model.parameters.get(name)!.dataSync() as Float32Array;
    const beta = values('model.layers.0.mega.ema.beta');
    expect(Math.abs(beta[0]! - 1)).toBeLessThan(0.1);
    expect(Math.abs(beta[1]! + 1)).toBeLessThan(0.1);
    expect(
      maxAbsDifference(values('model.layers.0.mega.qk_gamma'), new Float32Array(16).fill(1)),
    ).toBeLessThan(0.1);
    expect(maxAbs(values('model.layers.0.mega.qk_beta'))).toBe(0);
    model.dispose();
  });

  it('saves the reference’s names and loads back bit-exactly', async () => {
    const model = BakaCausalLM.create(config, { seed: 5 });
    const { json, stored } = await expectCheckpointRoundTrip(model, join(work, 'mega'));
    expect(json.layer_kinds).toEqual(['mega', 'standard']);
    expect([json.ema_dim, json.mega_z_dim, json.mega_h_dim]).toEqual([4, 8, 32]);
    expect(stored).toEqual(parameterNames(config));
    expectReferenceNames(dir);
    model.dispose();
  });

  it('the carried state saves, loads and continues exactly; rows select; no tensors leak', () => {
    const model = BakaCausalLM.create(config, { seed: 6 });
    const rows = [
      [1, 2, 3, 4, 5, 6, 7],
      [9, 8, 7, 6, 5, 4, 3],
    ];
    const next = [
      [10, 11, 12],
      [13, 14, 15],
    ];
    const memory = detachedMemory(model, rows);
    const direct = allLogits(model, next, memory);
    const loaded = loadSequenceState(memory.save(), 'memory.safetensors');
    expect(maxAbsDifference(allLogits(model, next, loaded), direct)).toBe(0);
    const second = loaded.selectRows([1]);
    const alone = allLogits(model, [next[1]!], second);
    expect(maxAbsDifference(alone, direct.slice(direct.length / 2))).toBeLessThan(1e-5);
    loaded.dispose();
    second.dispose();
    // windows in a row, each fed the last one's detached state: the tensor count stays flat
    const step = (state: SequenceState | null) => {
      const ids = int2d(next);
      const { loss, memory: after } = model.loss(ids, ids, state ? { memory: state } : {});
      const out = (after as SequenceState).detach();
      tf.dispose([ids, loss, ...(after as SequenceState).tensors()]);
      state?.dispose();
      return out;
    };
    let state = step(memory.detach());
    state = step(state);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) state = step(state);
    expect(tf.memory().numTensors).toBe(before);
    state.dispose();
    memory.dispose();
    model.dispose();
  });

  it('greedy generation equals full recomputation; incremental logits equal the full pass', () => {
    const model = BakaCausalLM.create({ ...config, layer_kinds: ['mega', 'mega'] } as BakaConfig, {
      seed: 8,
    });
    expectGreedyEqualsRecomputation(model);
    // pieces of 3, then 1 token at a time: across the chunk boundaries at 4, 8, 12
    const ids = [5, 1, 8, 13, 21, 34, 7, 11, 40, 2, 19, 23, 29, 31];
    expectIncrementalEqualsFull(model, ids, 'mega');
    model.dispose();
  });
});
