// Block-Recurrent Transformer layers (Hutchins et al. 2022): parity with our PyTorch reference's
// fixtures variants/recurrent-fixed and variants/recurrent-lstm (four chunks, a padded row),
// the gradient through the state across chunks, the semantics (a shut gate with no cross term is
// an ordinary layer; chunk c reads chunk c - 1's state; reach beyond the XL memory), carried and
// saved state, generation against the full pass, and tensor hygiene.
import * as tf from '@tensorflow/tfjs-core';
// gradients of the core ops: tfjs-node registers them, the cpu backend does not
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, it } from 'vitest';
import { bakaNet } from './baka-net';
import type { LayerStateOut } from './baka-net';
import { BakaCausalLM } from './causal-lm';
import {
  configJson,
  loadCheckpoint,
  readCheckpointConfig,
  readCheckpointTensors,
} from './checkpoint';
import { makeConfig, parseConfigSettings } from './config';
import type { BakaConfig } from './config';
import { IncrementalDecoder } from './generation';
import { BlockRecurrentState } from './kinds/recurrent-state';
import {
  loadSequenceState,
  mayBeUnusedParameters,
  sequenceStateKind,
} from './kinds/sequence-states';
import { parameterSpecs } from './parameters';
import type { SequenceState } from './sequence-state';
import {
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
  parityInputs,
} from './test-fixtures';

const inputs = parityInputs();
const LAST_CHUNK = 18; // n_ctx 6: chunks 0-5, 6-11, 12-17, 18-21

/** The same weights without the recurrent layers' tensors, as an ordinary model. */
function withoutRecurrence(
  config: BakaConfig,
  tensors: ReadonlyMap<string, { shape: number[]; data: Float32Array }>,
): BakaCausalLM {
  const plain = new Map([...tensors].filter(([name]) => !name.includes('.recurrent.')));
  return BakaCausalLM.fromTensors({ ...config, recurrent_layers: [] }, plain, 'plain');
}

/** d (mean loss of positions >= LAST_CHUNK) / d (embeddings of the first chunk) [B, n_ctx, D]. */
function firstChunkGradient(model: BakaCausalLM): Float32Array {
  const ids = int2d(inputs.inputIds);
  const labels = int2d(inputs.labels);
  const [batch, length] = ids.shape;
  const gradient = tf.tidy(() => {
    const embedded = model.embed(ids);
    const layers = Array.from({ length: model.config.n_layers }, (_, i) => model.prepareLayer(i));
    const lastLoss = (x: tf.Tensor3D) => {
      const { hidden } = bakaNet(
        x,
        layers,
        model.config,
        model.attentionContext(),
        null,
        model.parameters,
      );
      const count = length - LAST_CHUNK;
      const tail = tf.reshape(tf.slice(hidden, [0, LAST_CHUNK, 0], [batch, count, -1]), [
        batch * count,
        model.config.dim_model,
      ]) as tf.Tensor2D;
      const logProbabilities = tf.logSoftmax(model.head(tail)); // [B*count, V]
      // position t predicts t + 1: the chunk's last position has no target in the window
      const targets = inputs.labels.flatMap((row) =>
        Array.from({ length: count }, (_, t) => row[LAST_CHUNK + t + 1] ?? -100),
      );
      const valid: number[] = targets.map((label) => (label === -100 ? 0 : 1));
      const picked = tf.sum(
        tf.mul(
          logProbabilities,
          tf.oneHot(
            targets.map((label) => Math.max(label, 0)),
            model.config.n_vocab,
          ),
        ),
        1,
      );
      const total = valid.reduce((a, b) => a + b, 0);
      return tf.div(tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(valid)))), total) as tf.Scalar;
    };
    const full = tf.grad((x: tf.Tensor) => lastLoss(x as tf.Tensor3D))(embedded);
    return tf.slice(full, [0, 0, 0], [batch, model.config.n_ctx, -1]);
  });
  const values = gradient.dataSync() as Float32Array;
  tf.dispose([ids, labels, gradient]);
  return values;
}

describe.each(['recurrent-fixed', 'recurrent-lstm'])(
  '%s: parity with the PyTorch reference',
  (name) => {
    const dir = `${FIXTURES}variants/${name}`;
    const expected = fixtureTensors(`variants/${name}/expected.safetensors`);

    it('logits and loss over four chunks with a padded row match to 1e-4', async () => {
      const model = await loadCheckpoint(dir);
      expect(model.config.n_ctx).toBe(6);
      expect(model.config.n_state_vectors).toBe(5);
      expectLogitParity(model, expected, `${name} [${tf.getBackend()}]`);
      model.dispose();
    });

    it('every parameter gradient matches to 1e-4 (relative to the largest entry)', async () => {
      const model = await loadCheckpoint(dir);
      const worst = expectGradientParity(model, expected);
      console.log(
        `${name} [${tf.getBackend()}]: gradients worst relative error ${worst.toExponential(2)}`,
      );
      model.dispose();
    });

    it('the last chunk’s loss has a gradient on the first chunk’s embeddings, through the state only', async () => {
      const model = await loadCheckpoint(dir);
      const gradient = firstChunkGradient(model);
      const reference = expected.get('first_chunk_grad')!.data;
      const error = maxAbsDifference(gradient, reference) / maxAbs(reference);
      console.log(
        `${name} [${tf.getBackend()}]: d loss(chunk 4) / d chunk 1: max ${maxAbs(gradient).toExponential(2)}, relative error ${error.toExponential(2)}`,
      );
      expect(maxAbs(gradient)).toBeGreaterThan(1e-4);
      expect(error).toBeLessThan(1e-4);
      // negative control: without the recurrent layers nothing of chunk 1 reaches chunk 4
      const plain = withoutRecurrence(readCheckpointConfig(dir), readCheckpointTensors(dir));
      expect(maxAbs(firstChunkGradient(plain))).toBe(0);
      expect(maxAbs(expected.get('first_chunk_grad_plain')!.data)).toBe(0);
      plain.dispose();
      model.dispose();
    });

    it('a second call fed the first call’s detached state matches PyTorch, also after save/load', async () => {
      const carried = fixtureTensors(`variants/${name}/carry.safetensors`);
      const model = await loadCheckpoint(dir);
      const split = 11;
      const first = int2d(inputs.inputIds.map((row) => row.slice(0, split)));
      const second = int2d(inputs.inputIds.map((row) => row.slice(split)));
      const secondLabels = int2d(inputs.labels.map((row) => row.slice(split)));
      let state = null as unknown as SequenceState;
      tf.tidy(() => {
        state = (model.forward(first).memory as SequenceState).detach();
      });
      expect(state).toBeInstanceOf(BlockRecurrentState);
      const restored = loadSequenceState(state.save(), 'saved');
      expect(restored).toBeInstanceOf(BlockRecurrentState);
      for (const memory of [state, restored]) {
        const { logits } = model.forward(second, { memory });
        const { loss } = model.loss(second, secondLabels, { memory });
        expect(maxAbsDifference(logits.dataSync(), carried.get('logits')!.data)).toBeLessThan(1e-4);
        expect(Math.abs(loss.dataSync()[0]! - carried.get('loss')!.data[0]!)).toBeLessThan(1e-4);
        tf.dispose([logits, loss]);
      }
      // the round trip is exact, state and XL memory alike
      const saved = state.save();
      const again = restored.save();
      expect([...again.tensors.keys()].sort()).toEqual([...saved.tensors.keys()].sort());
      for (const [key, tensor] of saved.tensors) {
        expect(Array.from(again.tensors.get(key)!.data), key).toEqual(Array.from(tensor.data));
      }
      expect(saved.tensors.has('inner.layers.1.k')).toBe(true);
      tf.dispose([first, second, secondLabels]);
      state.dispose();
      restored.dispose();
      model.dispose();
    });
  },
);

describe('block-recurrent semantics', () => {
  const dir = `${FIXTURES}variants/recurrent-fixed`;

  it('with the gate held shut and the cross term zeroed, the layer is an ordinary layer', () => {
    const config = readCheckpointConfig(dir);
    const tensors = readCheckpointTensors(dir);
    const plain = withoutRecurrence(config, tensors);
    const reference = logitsAndLoss(plain).logits;
    const set = (changes: Record<string, number>) =>
      new Map<string, { shape: number[]; data: Float32Array }>(
        [...tensors].map(([name, tensor]) => {
          const suffix = Object.keys(changes).find((key) => name.endsWith(key));
          return suffix === undefined
            ? [name, tensor]
            : [
                name,
                {
                  shape: tensor.shape,
                  data: new Float32Array(tensor.data.length).fill(changes[suffix]!),
                },
              ];
        }),
      );
    // sigmoid(50) is 1 in float32: s' = s exactly
    const shut = BakaCausalLM.fromTensors(
      config,
      set({ 'recurrent.gate_bias': 50, 'recurrent.cross_o.weight': 0 }),
    );
    expect(maxAbsDifference(logitsAndLoss(shut).logits, reference)).toBeLessThan(1e-6);
    const ids = int2d(inputs.inputIds);
    const { logits, memory } = shut.forward(ids);
    const written = (memory as BlockRecurrentState).states.get(1)!;
    const initial = shut.parameters.get('model.layers.1.recurrent.initial_state')!;
    const expectedState = tf.tidy(() => tf.broadcastTo(tf.expandDims(initial, 0), written.shape));
    expect(maxAbsDifference(written.dataSync(), expectedState.dataSync())).toBe(0);
    tf.dispose([ids, logits, expectedState, ...(memory?.tensors() ?? [])]);
    // negative controls: the cross term alone changes the layer; the open gate alone changes
    // the state (which then reaches no token, the cross term being zero)
    const crossOnly = BakaCausalLM.fromTensors(config, set({ 'recurrent.gate_bias': 50 }));
    expect(maxAbsDifference(logitsAndLoss(crossOnly).logits, reference)).toBeGreaterThan(1e-3);
    const openGate = BakaCausalLM.fromTensors(config, set({ 'recurrent.cross_o.weight': 0 }));
    expect(maxAbsDifference(logitsAndLoss(openGate).logits, reference)).toBeLessThan(1e-6);
    const opened = tf.tidy(() => {
      const out = openGate.forward(int2d(inputs.inputIds));
      return tf.sub((out.memory as BlockRecurrentState).states.get(1)!, tf.expandDims(initial, 0));
    });
    expect(maxAbs(opened.dataSync())).toBeGreaterThan(1e-2);
    opened.dispose();
    for (const model of [plain, shut, crossOnly, openGate]) model.dispose();
  });

  it('chunk c reads the state written at chunk c - 1; only chunk 1 reads the initial state', async () => {
    const model = await loadCheckpoint(dir);
    const config = model.config;
    const batch = 2;
    tf.tidy(() => {
      const pass = sequenceStateKind(config).pass(config, null, batch, model.parameters);
      const initial = model.parameters.get('model.layers.1.recurrent.initial_state')!;
      const stateAt = (chunkStart: number) => {
        const views = pass.views(chunkStart);
        expect(views[0]!.blockState).toBeUndefined(); // only layer 1 is recurrent
        expect(views[1]!.blockState!.update).toBe(true);
        return views[1]!.blockState!.state;
      };
      const first = stateAt(0);
      expect(first.shape).toEqual([batch, 5, config.dim_model]);
      expect(
        maxAbsDifference(
          first.dataSync(),
          tf.tile(tf.expandDims(initial, 0), [batch, 1, 1]).dataSync(),
        ),
      ).toBe(0);
      const written: tf.Tensor3D[] = [];
      for (let chunk = 0; chunk < 3; chunk++) {
        const state = tf.fill([batch, 5, config.dim_model], chunk + 1) as tf.Tensor3D;
        written.push(state);
        const kv = tf.zeros([
          batch,
          config.n_heads,
          config.n_ctx,
          config.dim_model / config.n_heads,
        ]) as tf.Tensor4D;
        const outs: LayerStateOut[] = [0, 1, 2].map((layer) => ({
          written: { k: kv, v: kv },
          attended: null,
          ...(layer === 1 ? { blockState: state } : {}),
        }));
        pass.write(outs, chunk * config.n_ctx);
        expect(stateAt((chunk + 1) * config.n_ctx)).toBe(state);
      }
      const result = pass.result() as BlockRecurrentState;
      expect(result.states.get(1)).toBe(written[2]);
    });
    model.dispose();
  });

  it(`a token in chunk 1 changes chunk L + 3's logits only with a recurrent layer (L = 2 layers)`, () => {
    const base = { dim_model: 16, n_layers: 2, n_heads: 2, n_vocab: 48, n_ctx: 4 };
    const ids = Array.from({ length: 4 * (base.n_layers + 3) }, (_, i) => (7 * i + 3) % 48);
    const perturbed = [...ids];
    perturbed[1] = (perturbed[1]! + 5) % 48;
    const target = (base.n_layers + 2) * base.n_ctx; // chunk 1 + L + 2 (1-based)
    const change = (settings: Partial<BakaConfig>) => {
      const model = BakaCausalLM.create(makeConfig({ ...base, ...settings }), { seed: 4 });
      const logits = [ids, perturbed].map((row) =>
        tf.tidy(() =>
          tf.slice(model.forward(int2d([row])).logits, [0, target, 0], [1, 4, -1]).dataSync(),
        ),
      );
      model.dispose();
      return maxAbsDifference(logits[0]!, logits[1]!);
    };
    const recurrent = change({ recurrent_layers: [1], n_state_vectors: 3 });
    const lstm = change({ recurrent_layers: [0], state_gate: 'lstm' });
    console.log(
      `chunk ${base.n_layers + 3} logits change: fixed ${recurrent.toExponential(2)}, lstm ${lstm.toExponential(2)}`,
    );
    expect(recurrent).toBeGreaterThan(1e-5);
    expect(lstm).toBeGreaterThan(1e-5);
    expect(change({})).toBe(0); // XL memory alone does not reach that far
    expect(change({ memory_source: 'same-layer' })).toBe(0);
  });
});

describe('block-recurrent generation, training state and config', () => {
  const config = makeConfig({
    dim_model: 16,
    n_layers: 2,
    n_heads: 2,
    n_vocab: 48,
    n_ctx: 4,
    recurrent_layers: [1],
    n_state_vectors: 3,
  });

  it('greedy generation equals full recomputation; incremental logits equal the full pass', () => {
    for (const gate of ['fixed', 'lstm'] as const) {
      const model = BakaCausalLM.create({ ...config, state_gate: gate }, { seed: 8 });
      expectGreedyEqualsRecomputation(model);
      // pieces of 3, then 1 token at a time, across the chunk boundaries at 4, 8 and 12
      const ids = [5, 1, 8, 13, 21, 34, 7, 11, 40, 2, 19, 23, 29, 31];
      const { full } = expectIncrementalEqualsFull(model, ids, `recurrent (${gate})`);
      // (the helper checked that its decoder left the tensor count where it found it)
      const before = tf.memory().numTensors;
      const vocab = config.n_vocab;
      // two rows side by side (num-samples): each row's state is its own copy
      const rows = new IncrementalDecoder(model);
      rows.append(ids.slice(0, 3));
      rows.selectRows([0, 0]);
      let worstRows = 0;
      for (let t = 3; t < ids.length; t++) {
        const both = rows.appendRows([ids[t]!, ids[t]!]);
        const want = full.slice(t * vocab, (t + 1) * vocab);
        worstRows = Math.max(
          worstRows,
          maxAbsDifference(both.slice(0, vocab), want),
          maxAbsDifference(both.slice(vocab), want),
        );
      }
      expect(worstRows).toBeLessThan(1e-5);
      rows.dispose();
      expect(tf.memory().numTensors).toBe(before);
      // negative control: the state matters for these logits (the same weights without it differ)
      const tensors = new Map(
        [...model.parameters].map(([name, variable]) => [
          name,
          { shape: variable.shape, data: variable.dataSync() as Float32Array },
        ]),
      );
      const plain = withoutRecurrence(model.config, tensors);
      const plainInput = int2d([ids]);
      const plainLogits = tf.tidy(() => plain.forward(plainInput).logits.dataSync());
      plainInput.dispose();
      expect(
        maxAbsDifference(plainLogits.slice(12 * vocab), full.slice(12 * vocab)),
      ).toBeGreaterThan(1e-4);
      plain.dispose();
      model.dispose();
    }
  });

  it('carried state across windows: no tensor growth, rows that end are dropped', () => {
    const model = BakaCausalLM.create(config, { seed: 9 });
    const trainable = [...model.trainableParameters().values()];
    let memory: SequenceState | null = null;
    const step = (rows: number) => {
      const ids = int2d(
        Array.from({ length: rows }, (_, r) =>
          Array.from({ length: 8 }, (_, t) => (r * 11 + t * 5) % 48),
        ),
      );
      let kept: SequenceState | null = null;
      const carried = memory;
      const { value, grads } = tf.variableGrads(() => {
        const out = model.loss(ids, ids, { memory: carried });
        kept = out.memory!.detach();
        return out.loss;
      }, trainable);
      tf.dispose([ids, value, ...Object.values(grads)]);
      carried?.dispose();
      memory = kept;
    };
    step(2);
    step(2);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step(2);
    expect(tf.memory().numTensors).toBe(before);
    const selected = (memory as unknown as SequenceState).selectRows([1]);
    expect((selected as BlockRecurrentState).states.get(1)!.shape).toEqual([1, 3, 16]);
    expect(selected.batchSize).toBe(1);
    selected.dispose();
    (memory as unknown as SequenceState).dispose();
    expect(mayBeUnusedParameters(config)).toContain('model.layers.1.recurrent.initial_state');
    model.dispose();
  });

  it('config: --set keys, defaults, errors naming the field, tensor names', () => {
    expect(
      parseConfigSettings(['recurrent_layers=2', 'state_gate=lstm', 'n_state_vectors=16']),
    ).toEqual({
      recurrent_layers: [2],
      state_gate: 'lstm',
      n_state_vectors: 16,
    });
    expect(parseConfigSettings(['recurrent_layers=1,3'])).toEqual({ recurrent_layers: [1, 3] });
    const base = { dim_model: 16, n_layers: 3, n_heads: 2, n_ctx: 8 };
    expect(makeConfig({ ...base, recurrent_layers: [2] }).n_state_vectors).toBe(8); // S = n_ctx
    expect(() => makeConfig({ ...base, recurrent_layers: [3] })).toThrow(
      /recurrent_layers: layer 3 does not exist/,
    );
    expect(() => makeConfig({ ...base, recurrent_layers: [1, 1] })).toThrow(
      /recurrent_layers: .* names a layer twice/,
    );
    expect(() => parseConfigSettings(['state_gate=gru'])).toThrow(/state_gate/);
    expect(() =>
      makeConfig({
        ...base,
        layer_kinds: ['standard', 'mega', 'standard'],
        memory_source: 'same-layer',
        recurrent_layers: [1],
      }),
    ).toThrow(/recurrent_layers: layer 1 is a Mega layer/);
    // without recurrent layers the config.json is the one written before the fields
    const plain = JSON.parse(configJson(makeConfig(base)));
    expect(
      Object.keys(plain).some((key) => key.includes('state') || key.includes('recurrent')),
    ).toBe(false);
    const names = parameterSpecs(makeConfig({ ...base, recurrent_layers: [2], state_gate: 'lstm' }))
      .map((spec) => spec.name)
      .filter((name) => name.includes('recurrent'));
    expect(names).toEqual(
      [
        'initial_state',
        'state_ids',
        'cross_q.weight',
        'cross_o.weight',
        'norm.weight',
        'norm.bias',
        'q.weight',
        'k.weight',
        'v.weight',
        'state_cross_q.weight',
        'o.weight',
        'input_gate.weight',
        'input_gate.bias',
        'forget_gate.weight',
        'forget_gate.bias',
      ].map((suffix) => `model.layers.2.recurrent.${suffix}`),
    );
    // the reference's own checkpoint (torch's state_dict) has exactly our names
    expectReferenceNames(`${FIXTURES}variants/recurrent-lstm`);
  });
});
