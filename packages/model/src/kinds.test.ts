// The extension points (kinds/): norm kinds, layer kinds and sequence-state kinds. The parity
// tests cover what the shipped kinds compute; these pin the registries' contracts.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { CONFIG_KEYS, makeConfig } from './config';
import { configJson } from './checkpoint';
import { LAYER_KIND_NAMES, LAYER_KINDS } from './kinds/layers';
import type { LayerKind } from './kinds/layers';
import { NORM_KINDS, NORM_NAMES, rmsNorm } from './kinds/norms';
import {
  loadSequenceState,
  SEQUENCE_STATE_KINDS,
  SEQUENCE_STATE_NAMES,
  sequenceStateKind,
} from './kinds/sequence-states';
import { layerNorm } from './layer-norm';
import type { SequenceState } from './sequence-state';
import { parameterSpecs } from './parameters';
import { maxAbsDifference } from './test-fixtures';

const small = { dim_model: 16, dim_ff: 32, n_layers: 2, n_heads: 2, n_vocab: 40, n_ctx: 4 };

describe('norm kinds', () => {
  it('rmsnorm is x / sqrt(mean(x^2) + 1e-6) * weight, unlike layernorm', () => {
    const rows = [
      [1, -2, 3, 0.5],
      [4, 4, 4, 4],
    ];
    const weight = [0.5, 1, 2, -1];
    const expected = rows.flatMap((row) => {
      const meanSquare = row.reduce((sum, x) => sum + x * x, 0) / row.length;
      return row.map((x, j) => (x / Math.sqrt(meanSquare + 1e-6)) * (weight[j] as number));
    });
    const x = tf.tensor2d(rows);
    const w = tf.tensor1d(weight);
    const actual = rmsNorm(x, w).dataSync();
    expect(maxAbsDifference(actual, expected)).toBeLessThan(1e-6);
    // negative control: LayerNorm subtracts the mean, so the constant row goes to zero
    const ln = layerNorm(x, w, tf.zeros([4]) as tf.Tensor1D).dataSync();
    expect(maxAbsDifference(ln, expected)).toBeGreaterThan(0.5);
    tf.dispose([x, w]);
  });

  it('the config picks the norm of every layer and of norm_out; rmsnorm has no bias tensors', () => {
    const layernorm = parameterSpecs(makeConfig(small)).map((spec) => spec.name);
    const rms = parameterSpecs(makeConfig({ ...small, norm: 'rmsnorm' })).map((spec) => spec.name);
    expect(layernorm.filter((name) => name.endsWith('norm_in.bias'))).toHaveLength(2);
    expect(layernorm).toContain('norm_out.bias');
    expect(rms.filter((name) => name.includes('bias'))).toEqual([]);
    expect(rms.filter((name) => name.endsWith('norm_in.weight'))).toHaveLength(2);
    expect(NORM_NAMES).toEqual(Object.keys(NORM_KINDS));
  });

  it('an rmsnorm model runs rmsnorm (its logits differ from the same weights under layernorm)', () => {
    const model = BakaCausalLM.create(makeConfig({ ...small, norm: 'rmsnorm' }), { seed: 1 });
    // the same weights plus zero biases, read as a layernorm model
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, variable] of model.parameters) {
      tensors.set(name, { shape: [...variable.shape], data: variable.dataSync() as Float32Array });
    }
    for (const spec of parameterSpecs(makeConfig(small))) {
      if (!tensors.has(spec.name)) {
        tensors.set(spec.name, { shape: spec.shape, data: new Float32Array(spec.shape[0] ?? 0) });
      }
    }
    const asLayerNorm = BakaCausalLM.fromTensors(makeConfig(small), tensors);
    const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6]], [1, 6], 'int32');
    const a = model.forward(ids).logits;
    const b = asLayerNorm.forward(ids).logits;
    expect(maxAbsDifference(a.dataSync(), b.dataSync())).toBeGreaterThan(1e-3);
    // and an rmsnorm config round-trips through config.json with its norm
    expect(JSON.parse(configJson(model.config)).norm).toBe('rmsnorm');
    expect(JSON.parse(configJson(asLayerNorm.config)).norm).toBeUndefined();
    tf.dispose([ids, a, b]);
    model.dispose();
    asLayerNorm.dispose();
  });
});

describe('registries feed the config schema', () => {
  it('memory, layer_kinds and norm accept exactly the registered names', () => {
    expect(SEQUENCE_STATE_NAMES).toEqual(Object.keys(SEQUENCE_STATE_KINDS));
    for (const memory of SEQUENCE_STATE_NAMES)
      expect(makeConfig({ ...small, memory }).memory).toBe(memory);
    for (const kind of LAYER_KIND_NAMES) {
      const { requires } = LAYER_KINDS[kind] as LayerKind; // e.g. mega: same-layer memory
      expect(makeConfig({ ...small, ...requires, layer_kinds: [kind, kind] }).layer_kinds).toEqual([
        kind,
        kind,
      ]);
    }
    expect(() => makeConfig({ ...small, memory: 'rnn' })).toThrow(/memory/);
    expect(() => makeConfig({ ...small, norm: 'batchnorm' })).toThrow(/norm/);
    // a kind's own fields sit in the schema (xl owns memory_source)
    expect(CONFIG_KEYS).toContain('memory_source');
  });
});

describe('sequence-state kinds', () => {
  it('every kind: a forward state saves, loads back and continues the sequence identically', () => {
    for (const memory of SEQUENCE_STATE_NAMES) {
      const config = makeConfig({ ...small, memory, position_policy: 'absolute' });
      const model = BakaCausalLM.create(config, { seed: 2 });
      const first = tf.tensor2d(
        [
          [3, 1, 4, 1, 5, 9],
          [2, 6, 5, 3, 5, 8],
        ],
        [2, 6],
        'int32',
      );
      const second = tf.tensor2d(
        [
          [7, 9, 3],
          [2, 3, 8],
        ],
        [2, 3],
        'int32',
      );
      let state: SequenceState | null = null;
      tf.tidy(() => {
        const { memory: out } = model.forward(first);
        state = out === null ? null : out.detach();
      });
      state = state as SequenceState | null;
      const kind = sequenceStateKind(config);
      if (kind.evaluation === 'sliding-window') {
        expect(state).toBeNull();
      } else {
        expect(state).not.toBeNull();
      }
      const restored = state === null ? null : loadSequenceState(state.save(), 'test');
      expect(restored?.kind ?? null).toBe(state?.kind ?? null);
      expect(restored?.end ?? null).toBe(state?.end ?? null);
      const direct = model.forward(second, { memory: state }).logits;
      const viaFile = model.forward(second, { memory: restored }).logits;
      expect(maxAbsDifference(direct.dataSync(), viaFile.dataSync())).toBe(0);
      if (state !== null) {
        // negative control: without the state the continuation differs
        const fresh = model.forward(second).logits;
        expect(maxAbsDifference(direct.dataSync(), fresh.dataSync())).toBeGreaterThan(1e-4);
        // selectRows keeps the chosen row's continuation
        const row1 = state.selectRows([1]);
        const single = model.forward(tf.slice(second, [1, 0], [1, 3]) as tf.Tensor2D, {
          memory: row1,
        }).logits;
        const direct1 = tf.slice(direct, [1, 0, 0], [1, 3, small.n_vocab]);
        expect(maxAbsDifference(single.dataSync(), direct1.dataSync())).toBeLessThan(1e-5);
        tf.dispose([fresh, single, direct1]);
        row1.dispose();
      }
      tf.dispose([first, second, direct, viaFile]);
      state?.dispose();
      restored?.dispose();
      model.dispose();
    }
  });

  it('an unknown saved format is one line naming the source', () => {
    expect(() =>
      loadSequenceState({ tensors: new Map(), metadata: { format: 'mystery' } }, 'x.safetensors'),
    ).toThrow(/^x\.safetensors: unknown sequence state format 'mystery'/);
  });

  it('describe() gives the architecture text of each kind', () => {
    expect(sequenceStateKind(makeConfig(small)).describe(makeConfig(small))).toBe(
      'xl/previous-layer/reset',
    );
    const none = makeConfig({ ...small, memory: 'none' });
    expect(sequenceStateKind(none).describe(none)).toBe('none');
  });
});
