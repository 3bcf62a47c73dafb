// Batched generation: one prompt copied into several rows (IncrementalDecoder.selectRows) and
// continued side by side gives, row by row, what separate decoders give; generateSamples' sample r
// is generate's continuation with seed + r. Every sequence-state kind is covered: XL memory,
// none, pauses (a chunk re-fed when a pause lands in front of fed tokens), RMT blocks and Mamba
// states carried across chunks.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { type BakaConfig, makeConfig } from './config';
import { IncrementalDecoder } from './generation';
import { maxAbsDifference } from './test-fixtures';

const base = { dim_model: 16, dim_ff: 32, n_layers: 3, n_heads: 2, n_vocab: 48, n_ctx: 4 };
const variants: [string, Partial<BakaConfig>][] = [
  ['xl', {}],
  ['none', { memory: 'none' }],
  ['pauses', { n_ctx: 8, n_pauses: 3 }],
  ['rmt', { n_pauses: 2, n_rmt_tokens: 2, memory_source: 'same-layer' }],
  ['mamba carried', { mamba_each_nth_layer: 2, mamba_carry_state: true }],
];
const prompt = [3, 14, 15];
// per row, the tokens fed after the prompt (different rows, so rows must not mix)
const continuations = [
  [9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3],
  [2, 7, 1, 8, 2, 8, 1, 8, 2, 8, 4],
  [1, 4, 1, 4, 2, 1, 3, 5, 6, 2, 3],
];

describe.each(variants)('batched decoding (%s)', (_, fields) => {
  const config = makeConfig({ ...base, ...fields });
  const vocab = config.n_vocab;

  /** Logits of one decoder per row, step by step: [step][row] -> [V]. */
  function separately(model: BakaCausalLM, rows: number[][]): Float32Array[][] {
    return rows.map((row) => {
      const decoder = new IncrementalDecoder(model);
      const out = [decoder.append(prompt), ...row.map((id) => decoder.append([id]))];
      decoder.dispose();
      return out;
    });
  }

  it('rows continued side by side equal separate decoders; dropping a row keeps the others', () => {
    const model = BakaCausalLM.create(config, { seed: 11 });
    const single = separately(model, continuations);
    const run = () => {
      const decoder = new IncrementalDecoder(model);
      decoder.append(prompt);
      decoder.selectRows([0, 0, 0]);
      expect(decoder.rows).toBe(3);
      let worst = 0;
      let spread = 0;
      let rows = [0, 1, 2];
      const steps = continuations[0]!.length;
      for (let step = 0; step < steps; step++) {
        if (step === 7) {
          decoder.selectRows([0, 2]); // row 1 finished
          rows = [0, 2];
        }
        const logits = decoder.appendRows(rows.map((row) => continuations[row]![step]!));
        rows.forEach((row, index) => {
          const mine = logits.subarray(index * vocab, (index + 1) * vocab);
          worst = Math.max(worst, maxAbsDifference(mine, single[row]![step + 1]!));
        });
        spread = Math.max(
          spread,
          maxAbsDifference(logits.subarray(0, vocab), logits.subarray(vocab, 2 * vocab)),
        );
      }
      decoder.dispose();
      return { worst, spread };
    };
    run(); // the model caches masks per key width
    const before = tf.memory().numTensors;
    const { worst, spread } = run();
    expect(tf.memory().numTensors).toBe(before);
    expect(worst).toBeLessThan(1e-5);
    // negative control: the rows were fed different tokens, and their logits differ
    expect(spread).toBeGreaterThan(1e-3);
    model.dispose();
  });

  it('generateSamples: sample r is generate with seed + r; a sample that stops leaves the batch', () => {
    const model = BakaCausalLM.create(config, { seed: 12 });
    const options = { maxNewTokens: 10, temperature: 1, topK: 8, seed: 5 };
    const samples = model.generateSamples(prompt, {
      ...options,
      numSamples: 3,
      shouldStop: (sample) => sample === 1,
    });
    expect(samples.map((sample) => sample.length)).toEqual([10, 1, 10]);
    for (const sample of [0, 2]) {
      const alone = model.generate(prompt, { ...options, seed: options.seed + sample });
      expect(samples[sample], `sample ${sample}`).toEqual(alone);
    }
    expect(samples[1]).toEqual(model.generate(prompt, { ...options, seed: 6, maxNewTokens: 1 }));
    // negative control: different seeds gave different samples
    expect(samples[0]).not.toEqual(samples[2]);
    model.dispose();
  });
});

describe('batched decoding: bad rows', () => {
  it('selectRows names the valid rows; append needs one row, appendRows one token per row', () => {
    const model = BakaCausalLM.create(makeConfig(base), { seed: 1 });
    const decoder = new IncrementalDecoder(model);
    decoder.append(prompt);
    expect(() => decoder.selectRows([0, 1])).toThrow(/expected one or more rows in 0\.\.0/);
    expect(() => decoder.selectRows([])).toThrow(/one or more rows/);
    decoder.selectRows([0, 0]);
    expect(() => decoder.append([1])).toThrow(/2 rows; use appendRows/);
    expect(() => decoder.appendRows([1])).toThrow(/one token for each of 2 rows/);
    decoder.dispose();
    expect(() => model.generateSamples(prompt, { maxNewTokens: 2, numSamples: 0 })).toThrow(
      /numSamples must be an integer >= 1/,
    );
    model.dispose();
  });
});
