import * as tf from '@tensorflow/tfjs-core';
import { makeConfig, PRESETS } from '@baka/model';
import { describe, expect, it } from 'vitest';
import { describeArchitecture, evaluate, resultRow } from './evaluate';
import { tinyDocuments, tinyModel } from './test-helpers';

const documents = tinyDocuments();
const valid = documents.splits.valid!;

/** Upstream's bench by hand: model.loss on each whole article [1, L]. */
function lossOf(model: ReturnType<typeof tinyModel>, index: number): number {
  const ids = Int32Array.from(documents.document(index));
  const value = tf.tidy(() => {
    const x = tf.tensor2d(ids, [1, ids.length], 'int32');
    return model.loss(x, x).loss;
  });
  const out = value.dataSync()[0]!;
  value.dispose();
  return out;
}

describe('evaluate (upstream bench)', () => {
  it('XL model: mean of per-article losses over the valid split, token-weighted beside it', () => {
    const model = tinyModel(4);
    evaluate(model, documents); // fills the model's rotary-table and mask caches
    const before = tf.memory().numTensors;
    const result = evaluate(model, documents);
    expect(tf.memory().numTensors).toBe(before);
    const losses: number[] = [];
    const counts: number[] = [];
    for (let i = valid.start; i < valid.end; i++) {
      losses.push(lossOf(model, i));
      counts.push(documents.documentLength(i) - 1);
    }
    const mean = losses.reduce((a, b) => a + b, 0) / losses.length;
    const weighted =
      losses.reduce((a, l, i) => a + l * counts[i]!, 0) / counts.reduce((a, b) => a + b, 0);
    expect(result.split).toBe('valid');
    expect(result.documents).toBe(valid.end - valid.start);
    expect(result.windows).toBe(valid.end - valid.start);
    expect(Math.abs(result.loss - mean)).toBeLessThan(1e-5);
    expect(Math.abs(result.tokenLoss - weighted)).toBeLessThan(1e-5);
    expect(result.ppl).toBeCloseTo(Math.exp(result.loss), 6);
    expect(result.nans).toBe(0);
    expect(result.tokens).toBe(counts.reduce((a, b) => a + b, 0));
    expect(evaluate(model, documents, { maxDocuments: 2 }).documents).toBe(2);
    model.dispose();
  });

  it('memory-free model: windows of n_ctx, stride n_ctx/2, every token scored once', () => {
    const model = tinyModel(4, { memory: 'none' });
    const result = evaluate(model, documents);
    let expectedTokens = 0;
    for (let i = valid.start; i < valid.end; i++) expectedTokens += documents.documentLength(i) - 1;
    expect(result.tokens).toBe(expectedTokens);
    expect(result.windows).toBeGreaterThan(result.documents);
    expect(Number.isFinite(result.loss)).toBe(true);
    model.dispose();
  });

  it('counts NaN articles and keeps them out of the mean', () => {
    const model = tinyModel(4);
    model.parameters.get('norm_out.bias')!.assign(tf.fill([16], Number.NaN));
    const result = evaluate(model, documents);
    expect(result.nans).toBe(valid.end - valid.start);
    expect(Number.isNaN(result.loss)).toBe(true);
    model.dispose();
  });

  it('resultRow carries upstream result fields', () => {
    const model = tinyModel(4);
    const result = evaluate(model, documents, { maxDocuments: 1 });
    const row = resultRow(model, result, { benchmark: 'tiny', configId: 'c1', note: 'n' });
    expect(row).toMatchObject({
      modelType: 'baka_xl',
      benchmark: 'tiny',
      split: 'valid',
      nCtx: 8,
      nInputEmbParams: 40 * 16,
      configId: 'c1',
      note: 'n',
      loss: result.loss,
    });
    expect(row.architecture).toMatch(/layers 2 heads 2 .*memory xl\/previous-layer\/reset/);
    model.dispose();
  });
});

describe('describeArchitecture', () => {
  const size = { dim_model: 16, dim_ff: 32, n_layers: 2, n_heads: 2, n_ctx: 8, n_vocab: 40 };
  const base =
    'baka_xl dim 16 ff 32 attn 16 layers 2 heads 2 vocab 40 ctx 8 memory xl/previous-layer/reset rotary interleaved';

  it('a default config reads as before variants existed; so does every preset without one', () => {
    expect(describeArchitecture(makeConfig(size))).toBe(base);
    for (const name of ['baka-xl', 'permuteformer', 'small', 'tiny'] as const) {
      expect(describeArchitecture(makeConfig(PRESETS[name]))).not.toContain(';');
    }
  });

  it('names every field that differs from its default, so variants read differently', () => {
    const normed = makeConfig({
      ...size,
      norm: 'rmsnorm',
      qk_norm: 'layernorm',
      n_memory_tokens: 2,
    });
    const layered = makeConfig({
      ...size,
      memory_source: 'same-layer',
      layer_kinds: ['mega', 'standard'],
      ema_dim: 8,
    });
    // negative control: the memory summary alone cannot tell the first variant from the default
    expect(describeArchitecture(normed).startsWith(`${base};`)).toBe(true);
    expect(describeArchitecture(normed)).toBe(
      `${base}; norm=rmsnorm qk_norm=layernorm n_memory_tokens=2`,
    );
    expect(describeArchitecture(layered)).toBe(
      'baka_xl dim 16 ff 32 attn 16 layers 2 heads 2 vocab 40 ctx 8 memory xl/same-layer/reset+mega-ema8 rotary interleaved; ' +
        'memory_source=same-layer layer_kinds=mega,standard ema_dim=8',
    );
    expect(describeArchitecture(makeConfig(PRESETS['baka-pause']))).toMatch(
      /; n_pauses=8 norm=rmsnorm$/,
    );
  });

  it('a default the schema derives from the size is no variant, an explicit other value is', () => {
    const derived = makeConfig({ ...size, recurrent_layers: [1], n_state_vectors: 8 });
    expect(describeArchitecture(derived)).toBe(
      `${base}; recurrent_layers=1`.replace(
        'memory xl/previous-layer/reset',
        'memory recurrent[1]x8/fixed+xl/previous-layer/reset',
      ),
    );
    const other = makeConfig({ ...size, recurrent_layers: [1], n_state_vectors: 3 });
    expect(describeArchitecture(other)).toMatch(/; recurrent_layers=1 n_state_vectors=3$/);
    expect(describeArchitecture(makeConfig({ ...size, memory: 'none' }))).toBe(
      base.replace('memory xl/previous-layer/reset', 'memory none'),
    );
  });
});
