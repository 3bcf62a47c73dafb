// Mamba layers that carry their conv window and scan state from chunk to chunk and from call to
// call (mamba_carry_state, kinds/layer-states.ts). Parity with our PyTorch reference's fixture
// variants/mamba-carry (whose writer also checks that the reference block run in two calls equals
// one call), the state through calls, checkpoints of the state, and generation.
import * as tf from '@tensorflow/tfjs-core';
// gradients of the core ops: tfjs-node registers them, the cpu backend does not
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import {
  configJson,
  loadCheckpoint,
  readCheckpointConfig,
  readCheckpointTensors,
} from './checkpoint';
import { makeConfig, parseConfigSettings } from './config';
import { IncrementalDecoder } from './generation';
import { LayerStatesState } from './kinds/layer-states';
import { loadSequenceState, sequenceStateKind } from './kinds/sequence-states';
import { argmax } from './sampling';
import type { SequenceState } from './sequence-state';
import {
  CARRY_SPLIT,
  expectCarryParity,
  expectGradientParity,
  expectLogitParity,
  FIXTURES,
  fixtureTensors,
  int2d,
  logitsAndLoss,
  maxAbsDifference,
  parityInputs,
  stateAfterCall,
  stateAfterFirstCall,
} from './test-fixtures';

const dir = `${FIXTURES}variants/mamba-carry`;
const inputs = parityInputs();

/** Logits [rows x S x V] of one call over `rows`, after `memory` (may be null). */
function logitsAfter(model: BakaCausalLM, rows: number[][], memory: SequenceState | null) {
  return logitsAndLoss(model, rows, rows, memory).logits;
}

describe('Mamba layers carrying their state: parity with the PyTorch reference', () => {
  const expected = fixtureTensors('variants/mamba-carry/expected.safetensors');

  it('logits and loss over three chunks match to 1e-4; without the carry they do not', async () => {
    const model = await loadCheckpoint(dir);
    expect(model.config.mamba_carry_state).toBe(true);
    expect(sequenceStateKind(model.config).describe(model.config)).toBe(
      'xl/previous-layer/reset+mamba-state',
    );
    expectLogitParity(model, expected, 'mamba-carry');
    model.dispose();
    // negative control: the same weights restarting every chunk from zero (upstream 007)
    const restarting = BakaCausalLM.fromTensors(
      { ...readCheckpointConfig(dir), mamba_carry_state: false },
      readCheckpointTensors(dir),
    );
    expect(
      maxAbsDifference(logitsAndLoss(restarting).logits, expected.get('logits')!.data),
    ).toBeGreaterThan(1e-3);
    restarting.dispose();
  });

  it('every parameter gradient matches to 1e-4 (through the carried state)', async () => {
    const model = await loadCheckpoint(dir);
    const worst = expectGradientParity(model, expected);
    console.log(`mamba-carry: gradients worst relative error ${worst.toExponential(2)}`);
    model.dispose();
  });

  it("a second call continuing the first call's detached state matches PyTorch", async () => {
    const carried = fixtureTensors('variants/mamba-carry/carry.safetensors');
    const model = await loadCheckpoint(dir);
    const split = CARRY_SPLIT;
    const memory = stateAfterFirstCall(model);
    expect(memory).toBeInstanceOf(LayerStatesState);
    const result = expectCarryParity(model, memory, carried);
    // the state survives memory.safetensors' round trip (save -> load) bit-exactly
    const reloaded = loadSequenceState(memory.save(), 'memory.safetensors');
    const again = logitsAfter(
      model,
      inputs.inputIds.map((row) => row.slice(split)),
      reloaded,
    );
    expect(maxAbsDifference(again, result.logits)).toBe(0);
    // negative control: the XL memory alone (the Mamba state dropped) misses the fixture
    const inner = (memory as LayerStatesState).inner;
    const restarting = BakaCausalLM.fromTensors(
      { ...model.config, mamba_carry_state: false },
      readCheckpointTensors(dir),
    );
    const withoutState = logitsAfter(
      restarting,
      inputs.inputIds.map((row) => row.slice(split)),
      inner,
    );
    expect(maxAbsDifference(withoutState, carried.get('logits')!.data)).toBeGreaterThan(1e-3);
    restarting.dispose();
    reloaded.dispose();
    memory.dispose();
    model.dispose();
  });
});

describe('Mamba layers carrying their state: equivalences, rows, generation', () => {
  const config = makeConfig({
    dim_model: 16,
    n_layers: 3,
    n_heads: 2,
    n_vocab: 48,
    n_ctx: 4,
    mamba_each_nth_layer: 2,
    mamba_carry_state: true,
  });
  const rows = [
    [5, 1, 8, 13, 21, 34, 7, 11, 40, 2, 19, 23],
    [9, 9, 3, 4, 44, 12, 6, 30, 17, 28, 1, 0],
  ];

  it('a run in two calls equals one call, with `memory: none` as well; selected rows continue alike', () => {
    for (const memory of ['xl', 'none'] as const) {
      const model = BakaCausalLM.create({ ...config, memory }, { seed: 4 });
      expect(sequenceStateKind(model.config).evaluation).toBe('whole-article');
      const whole = logitsAfter(model, rows, null);
      const state = stateAfterCall(
        model,
        rows.map((row) => row.slice(0, 8)),
      );
      const second = logitsAfter(
        model,
        rows.map((row) => row.slice(8)),
        state,
      );
      const vocab = config.n_vocab;
      const tail = (values: Float32Array, row: number) =>
        values.slice((row * 12 + 8) * vocab, (row + 1) * 12 * vocab);
      // second: [2 rows x 4 positions x V], row by row
      expect(
        maxAbsDifference(second, Float32Array.from([...tail(whole, 0), ...tail(whole, 1)])),
        memory,
      ).toBeLessThan(1e-5);
      // row 1 alone, continuing its own selected state, equals its rows of the two-row run
      const selected = state.selectRows([1]);
      const alone = logitsAfter(model, [rows[1]!.slice(8)], selected);
      expect(maxAbsDifference(alone, second.slice(4 * vocab)), memory).toBeLessThan(1e-5);
      // negative control: without the state the second call is a different function
      const fresh = logitsAfter(
        model,
        rows.map((row) => row.slice(8)),
        null,
      );
      expect(maxAbsDifference(fresh, second), memory).toBeGreaterThan(1e-4);
      selected.dispose();
      state.dispose();
      model.dispose();
    }
  });

  it('training steps through carried state keep the tensor count flat', () => {
    const model = BakaCausalLM.create(config, { seed: 6 });
    const ids = int2d(rows);
    const labels = int2d(rows);
    const step = (memory: SequenceState | null): SequenceState => {
      const variables = [...model.trainableParameters().values()];
      let next: SequenceState | null = null;
      const { value, grads } = tf.variableGrads(() => {
        const out = model.loss(ids, labels, { memory });
        next = (out.memory as SequenceState).detach();
        return out.loss;
      }, variables);
      tf.dispose([value, ...Object.values(grads)]);
      memory?.dispose();
      return next as unknown as SequenceState;
    };
    let memory = step(null);
    memory = step(memory);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) memory = step(memory);
    expect(tf.memory().numTensors).toBe(before);
    memory.dispose();
    tf.dispose([ids, labels]);
    model.dispose();
  });

  it('generation logits equal a full pass over the tokens so far, across chunks and pause re-runs', () => {
    // with pauses a prefix's layout can differ from the longer sequence's (a pause lands in front
    // of tokens already fed), so each step is compared with a full pass over exactly its prefix
    const ids = [5, 1, 8, 13, 21, 34, 7, 11, 40, 2, 19, 23, 30, 4];
    for (const extra of [{}, { n_ctx: 8, n_pauses: 3 }]) {
      const model = BakaCausalLM.create({ ...config, ...extra }, { seed: 8 });
      const vocab = config.n_vocab;
      const lastOf = (length: number) =>
        logitsAfter(model, [ids.slice(0, length)], null).slice((length - 1) * vocab);
      const expected = ids.map((_, t) => lastOf(t + 1));
      const run = (decoder: IncrementalDecoder) => {
        let worst = maxAbsDifference(decoder.append(ids.slice(0, 3)), expected[2]!);
        for (let t = 3; t < ids.length; t++) {
          worst = Math.max(worst, maxAbsDifference(decoder.append([ids[t]!]), expected[t]!));
        }
        decoder.dispose();
        return worst;
      };
      run(new IncrementalDecoder(model)); // the model caches masks per key width
      const before = tf.memory().numTensors;
      const worst = run(new IncrementalDecoder(model));
      expect(tf.memory().numTensors).toBe(before);
      console.log(
        `mamba-carry ${JSON.stringify(extra)}: incremental vs full ${worst.toExponential(2)}`,
      );
      expect(worst, JSON.stringify(extra)).toBeLessThan(1e-5);
      // and greedy generation picks the full pass's argmax
      const sequence = [3, 14, 15, 9, 2];
      for (const token of model.generate(sequence, { maxNewTokens: 7, temperature: 0 })) {
        const logits = logitsAfter(model, [sequence], null);
        expect(token).toBe(argmax(logits.slice((sequence.length - 1) * vocab)));
        sequence.push(token);
      }
      model.dispose();
    }
  });

  it('`--set mamba_carry_state=true` needs Mamba layers; config.json has the field only when on', () => {
    expect(parseConfigSettings(['mamba_carry_state=true'])).toEqual({ mamba_carry_state: true });
    expect(() =>
      makeConfig({ dim_model: 16, n_layers: 2, n_heads: 2, mamba_carry_state: true }),
    ).toThrow(/mamba_carry_state needs Mamba layers \(mamba_each_nth_layer >= 1\)/);
    expect(JSON.parse(configJson(config)).mamba_carry_state).toBe(true);
    const restarting = makeConfig({ ...config, mamba_carry_state: false });
    expect('mamba_carry_state' in JSON.parse(configJson(restarting))).toBe(false);
  });
});
