import { totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { countParameters } from './count-parameters';
import { makeConfig } from './config';
import { estimatedTrainingBytes, formatBytes, parameterCount } from './memory-estimate';

const tiny = makeConfig({
  dim_model: 16,
  dim_ff: 32,
  n_layers: 2,
  n_heads: 2,
  n_vocab: 40,
  n_ctx: 8,
});

describe('the training memory estimate', () => {
  it('is parameters x 4 bytes x 4, counted from the config alone', () => {
    const model = BakaCausalLM.create(tiny);
    expect(parameterCount(tiny)).toBe(countParameters(model).total);
    expect(estimatedTrainingBytes(tiny)).toBe(countParameters(model).total * 16);
    model.dispose();
    expect(formatBytes(1_600_000_000)).toBe('1.6 GB');
  });

  it('a config that cannot fit is refused with its estimated size before allocating', () => {
    const needed = estimatedTrainingBytes(tiny);
    expect(() => BakaCausalLM.create(tiny, { memoryLimit: needed - 1 })).toThrow(
      new RegExp(
        `^the model config needs an estimated ${formatBytes(needed)} to train \\(.* parameters x 4 bytes x 4 for weights, gradients and AdamW moments\\), more than the ${formatBytes(needed - 1)} of memory here; make dim_model \\(16\\)`,
      ),
    );
    // A 100-billion-parameter config against this machine's memory: refused at once.
    const huge = makeConfig({
      ...tiny,
      dim_model: 8192,
      dim_attn: 8192,
      dim_ff: 32768,
      n_layers: 120,
      n_heads: 64,
      n_vocab: 50277,
    });
    expect(estimatedTrainingBytes(huge)).toBeGreaterThan(totalmem());
    expect(() => BakaCausalLM.create(huge)).toThrow(/needs an estimated \d+\.\d TB to train/);
  });
});
