import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { evaluate, resultRow } from './evaluate';
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
