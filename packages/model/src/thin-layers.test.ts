// Thin layers (upstream 00x_thin): attention-only layers without MLP, per-layer MLP widths, and
// upstream's init (a thin layer's attention parameters x 1e-4, its rotary frequencies included).
// Parity with our PyTorch reference's fixture variants/thin-layers (itself checked against
// upstream's branch code by tools/reference/check_upstream_thin.py).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
// gradients of the core ops: tfjs-node registers them, the cpu backend does not
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { afterAll, describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { loadCheckpoint, readCheckpointTensors, saveCheckpoint } from './checkpoint';
import { isUniform, layerDimFf, layerKind, makeConfig } from './config';
import { IncrementalDecoder } from './generation';
import {
  expectCarryParity,
  expectCheckpointRoundTrip,
  expectGradientParity,
  expectGreedyEqualsRecomputation,
  expectLogitParity,
  FIXTURES,
  fixtureTensors,
  int2d,
  maxAbs,
  maxAbsDifference,
  parityInputs,
  stateAfterFirstCall,
} from './test-fixtures';

const dir = `${FIXTURES}variants/thin-layers`;
const inputs = parityInputs();
const work = mkdtempSync(join(tmpdir(), 'baka-thin-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('thin layers: parity with the PyTorch reference', () => {
  const expected = fixtureTensors('variants/thin-layers/expected.safetensors');

  it('the checkpoint has no MLP tensors for attention-only layers; logits and loss match to 1e-4', async () => {
    const model = await loadCheckpoint(dir);
    expect(model.config.layer_kinds).toEqual([
      'standard',
      'attention-only',
      'standard',
      'attention-only',
    ]);
    const names = [...model.parameters.keys()];
    expect(names.filter((name) => name.startsWith('model.layers.1.mlp'))).toEqual([]);
    expect(model.parameters.get('model.layers.0.mlp.fc_up.weight')!.shape).toEqual([128, 32]);
    expect(model.parameters.get('model.layers.2.mlp.fc_up.weight')!.shape).toEqual([48, 32]);
    expectLogitParity(model, expected, 'thin-layers');
    model.dispose();
  });

  it('every parameter gradient matches to 1e-4 (relative to the largest entry)', async () => {
    const model = await loadCheckpoint(dir);
    const worst = expectGradientParity(model, expected);
    console.log(`thin-layers: gradients worst relative error ${worst.toExponential(2)}`);
    model.dispose();
  });

  it('a second call fed the first call’s memory matches PyTorch', async () => {
    const carried = fixtureTensors('variants/thin-layers/carry.safetensors');
    const model = await loadCheckpoint(dir);
    const memory = stateAfterFirstCall(model);
    expectCarryParity(model, memory, carried);
    memory.dispose();
    model.dispose();
  });

  it('negative control: the same weights with ordinary rotary in the thin layers do not match', async () => {
    const tensors = readCheckpointTensors(dir);
    const model = await loadCheckpoint(dir);
    const plain = BakaCausalLM.fromTensors(
      { ...model.config, thin_rotary_scale: 1 },
      new Map(
        [...tensors].map(([name, tensor]) =>
          name.endsWith('rot.freqs')
            ? [
                name,
                { shape: tensor.shape, data: tensors.get('model.layers.0.attn.rot.freqs')!.data },
              ]
            : [name, tensor],
        ),
      ),
    );
    const ids = int2d(inputs.inputIds);
    const logits = plain.forward(ids).logits;
    expect(maxAbsDifference(logits.dataSync(), expected.get('logits')!.data)).toBeGreaterThan(1e-3);
    // and the thin layers' stored frequencies are not those of an ordinary layer
    expect(() =>
      BakaCausalLM.fromTensors({ ...model.config, thin_rotary_scale: 1 }, tensors, dir),
    ).toThrow(/model\.layers\.1\.attn\.rot\.freqs' does not match/);
    tf.dispose([ids, logits]);
    plain.dispose();
    model.dispose();
  });
});

describe('thin layers: init, checkpoints and generation', () => {
  const config = makeConfig({
    dim_model: 16,
    n_layers: 3,
    n_heads: 2,
    n_vocab: 48,
    n_ctx: 4,
    layer_kinds: ['attention-only', 'standard', 'standard'],
    layer_dim_ff: [64, 96, 32],
  });

  it("upstream's init: a thin layer's attention weights and rotary frequencies are x 1e-4", () => {
    const model = BakaCausalLM.create(config, { seed: 3 });
    const values = (name: string) => model.parameters.get(name)!.dataSync() as Float32Array;
    const bound = 1 / Math.sqrt(16);
    for (const projection of ['q', 'k', 'v', 'o']) {
      expect(maxAbs(values(`model.layers.0.attn.${projection}.weight`))).toBeLessThanOrEqual(
        bound * 1e-4,
      );
      expect(maxAbs(values(`model.layers.1.attn.${projection}.weight`))).toBeGreaterThan(
        bound * 0.5,
      );
    }
    const thin = values('model.layers.0.attn.rot.freqs');
    const standard = values('model.layers.1.attn.rot.freqs');
    expect(Array.from(thin)).toEqual(
      Array.from(standard, (value) => Math.fround(value * Math.fround(1e-4))),
    );
    expect(model.parameters.has('model.layers.0.mlp.fc_gate.weight')).toBe(false);
    expect(model.parameters.get('model.layers.1.mlp.fc_down.weight')!.shape).toEqual([16, 96]);
    model.dispose();
  });

  it('saves the per-layer fields and loads back bit-exactly; a uniform model writes none of them', async () => {
    const model = BakaCausalLM.create(config, { seed: 5 });
    const { json, stored } = await expectCheckpointRoundTrip(model, join(work, 'thin'));
    expect(json.layer_kinds).toEqual(config.layer_kinds);
    expect(json.layer_dim_ff).toEqual([64, 96, 32]);
    expect(stored.some((name) => name.startsWith('model.layers.0.mlp'))).toBe(false);
    const uniform = BakaCausalLM.create(
      makeConfig({ ...config, layer_kinds: [], layer_dim_ff: [] }),
    );
    await saveCheckpoint(join(work, 'uniform'), uniform);
    const uniformJson = JSON.parse(readFileSync(join(work, 'uniform', 'config.json'), 'utf8'));
    expect(
      Object.keys(uniformJson).filter((key) => key.startsWith('layer_') || key.startsWith('thin_')),
    ).toEqual([]);
    for (const m of [model, uniform]) m.dispose();
  });

  it('greedy generation equals full recomputation; incremental logits equal the full pass', () => {
    const model = BakaCausalLM.create(config, { seed: 8 });
    // scale the thin layer's attention up, so that its output is not negligible
    for (const projection of ['q', 'k', 'v', 'o']) {
      const variable = model.parameters.get(`model.layers.0.attn.${projection}.weight`)!;
      variable.assign(tf.mul(variable, 1e4));
    }
    expectGreedyEqualsRecomputation(model);
    const decoder = new IncrementalDecoder(model);
    const ids = [5, 1, 8, 13, 21, 34, 7, 11, 40];
    const full = tf.tidy(() => model.forward(int2d([ids])).logits).dataSync();
    const vocab = config.n_vocab;
    let worst = maxAbsDifference(decoder.append(ids.slice(0, 3)), full.slice(2 * vocab, 3 * vocab));
    for (let t = 3; t < ids.length; t++) {
      const step = decoder.append([ids[t]!]);
      worst = Math.max(worst, maxAbsDifference(step, full.slice(t * vocab, (t + 1) * vocab)));
    }
    expect(worst).toBeLessThan(1e-5);
    decoder.dispose();
    model.dispose();
  });

  it('a uniform config keeps no per-layer lists, so changing n_layers or dim_ff applies everywhere', () => {
    const uniform = makeConfig({ ...config, layer_kinds: [], layer_dim_ff: [] });
    const deeper = makeConfig({ ...uniform, n_layers: 6, dim_ff: 40 });
    expect(deeper.layer_kinds).toEqual([]);
    expect(
      Array.from({ length: 6 }, (_, i) => [layerKind(deeper, i), layerDimFf(deeper, i)]),
    ).toEqual(Array.from({ length: 6 }, () => ['standard', 40]));
    expect(isUniform(deeper)).toBe(true);
    expect(isUniform(config)).toBe(false);
  });

  it('names the field when the per-layer lists do not fit the model', () => {
    expect(() => makeConfig({ ...config, layer_kinds: ['standard'] })).toThrow(
      /layer_kinds has 1 entries, expected one per layer \(n_layers 3\)/,
    );
    expect(() => makeConfig({ ...config, layer_kinds: ['standard', 'thin', 'standard'] })).toThrow(
      /layer_kinds\.1/,
    );
    expect(() => makeConfig({ ...config, layer_dim_ff: [8, 0, 8] })).toThrow(/layer_dim_ff\.1/);
  });
});
