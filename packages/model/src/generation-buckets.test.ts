// Generation pads attention keys to multiples of KEY_BUCKET positions, so the attention matmuls
// see a new shape only every KEY_BUCKET tokens (native oneDNN compiles kernels per shape), and
// keeps the keys it rotated, so a step rotates only its new keys; the numbers stay those of a
// full recomputation (generation.test.ts).
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { makeConfig } from './config';
import type { BakaConfig } from './config';
import { IncrementalDecoder, KEY_BUCKET } from './generation';

describe('IncrementalDecoder attention shapes', () => {
  it('uses key widths rounded up to KEY_BUCKET, the same width for consecutive tokens', async () => {
    const config = makeConfig({
      dim_model: 16,
      dim_ff: 32,
      n_layers: 2,
      n_heads: 2,
      n_vocab: 30,
      n_ctx: 8,
    });
    const model = BakaCausalLM.create(config, { seed: 2 });
    const decoder = new IncrementalDecoder(model);
    const widths = new Set<number>();
    for (let token = 0; token < 13; token++) {
      const profile = await tf.profile(() => {
        decoder.append([token % config.n_vocab]);
      });
      for (const kernel of profile.kernels) {
        const [queries, keys] = kernel.inputShapes;
        // scores = q [1, H, n, K] x keys [1, H, W, K]^T
        if (
          kernel.name === 'BatchMatMul' &&
          queries?.length === 4 &&
          keys?.length === 4 &&
          keys[3] === queries[3]
        ) {
          widths.add(keys[2]!);
        }
      }
    }
    decoder.dispose();
    model.dispose();
    // 13 tokens over chunks of 8 with memory: every width would differ without padding
    expect([...widths]).toEqual([KEY_BUCKET]);
  });
});

describe('IncrementalDecoder rotated keys', () => {
  // The widest tensor a step multiplies (rotary multiplies keys by its tables): with the cached
  // rotated keys only the new token's [1, H, 1, K], else all of [1, H, P+t, K].
  async function widestMultiply(options: Partial<BakaConfig>): Promise<number[]> {
    const config = makeConfig({
      dim_model: 16,
      dim_ff: 32,
      n_layers: 2,
      n_heads: 2,
      n_vocab: 30,
      n_ctx: 8,
      ...options,
    });
    const model = BakaCausalLM.create(config, { seed: 3 });
    const decoder = new IncrementalDecoder(model);
    const widest: number[] = [];
    for (let token = 0; token < 13; token++) {
      const profile = await tf.profile(() => {
        decoder.append([token % config.n_vocab]);
      });
      let width = 0;
      for (const kernel of profile.kernels) {
        const [input] = kernel.inputShapes;
        if (kernel.name === 'Multiply' && input?.length === 4) width = Math.max(width, input[2]!);
      }
      widest.push(width);
    }
    decoder.dispose();
    model.dispose();
    return widest;
  }

  it('rotates only the new keys after the first step of a chunk', async () => {
    const widest = await widestMultiply({});
    // the first step of each chunk rotates its memory once (8 keys + the new one at token 8)
    expect(widest[0]).toBe(1);
    expect(widest[8]).toBe(9);
    expect(widest.filter((_, token) => token !== 8)).toEqual(new Array(12).fill(1));
  });

  it('rotates all keys every step with bfloat16 tables (control: the rows depend on the offset)', async () => {
    const widest = await widestMultiply({ rotary_precision: 'bfloat16' });
    // token t of chunk c sees [memory ; chunk so far ; new]: 1..8 keys, then 9..13
    expect(widest).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  });
});
