// Generation pads attention keys to multiples of KEY_BUCKET positions, so the attention matmuls
// see a new shape only every KEY_BUCKET tokens (native oneDNN compiles kernels per shape); the
// numbers stay those of a full recomputation (generation.test.ts).
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { makeConfig } from './config';
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
