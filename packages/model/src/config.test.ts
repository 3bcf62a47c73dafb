import { describe, expect, it } from 'vitest';
import { makeConfig, PRESETS } from './config';
import { countParameters } from './count-parameters';

describe('config', () => {
  it('applies upstream defaults (dim_ff = 4 dim_model, dim_attn = dim_model) and ours', () => {
    const config = makeConfig({ dim_model: 64, n_layers: 2, n_heads: 4 });
    expect(config).toMatchObject({
      model_type: 'baka_xl',
      dim_ff: 256,
      dim_attn: 64,
      n_vocab: 50277,
      n_ctx: 512,
      act_fn: 'elephant',
      memory: 'xl',
      memory_source: 'previous-layer',
      position_policy: 'reset',
      carry_memory: false,
      rotary_layout: 'interleaved',
      rope_theta: 10000,
    });
  });

  it('every preset is valid; baka-xl has upstream 003’s size', () => {
    for (const preset of Object.values(PRESETS)) expect(() => makeConfig(preset)).not.toThrow();
    const xl = makeConfig(PRESETS['baka-xl']);
    const counts = countParameters({ config: xl });
    // 12 layers x (4 x 768^2 + 3 x 768 x 3072 + 2 x 768 + 32) + 2 x 50277 x 768 + 2 x 768
    expect(counts.total).toBe(
      12 * (4 * 768 * 768 + 3 * 768 * 3072 + 2 * 768 + 32) + 2 * 50277 * 768 + 2 * 768,
    );
    expect(counts.inputEmbedding).toBe(50277 * 768);
  });

  it('errors name the field', () => {
    expect(() => makeConfig({ dim_model: 64, n_layers: 2 })).toThrow(/n_heads/);
    expect(() => makeConfig({ dim_model: 64, n_layers: 2, n_heads: 4, memory: 'long' })).toThrow(
      /memory/,
    );
    expect(() =>
      makeConfig({ dim_model: 64, n_layers: 2, n_heads: 4, model_type: 'gpt2' }),
    ).toThrow(/model_type/);
    expect(() => makeConfig({ dim_model: 64, dim_attn: 30, n_layers: 2, n_heads: 4 })).toThrow(
      /dim_attn \(30\) must be divisible by n_heads \(4\)/,
    );
    expect(() => makeConfig({ dim_model: 20, n_layers: 2, n_heads: 4 })).toThrow(
      /dim_head .* must be even/,
    );
    expect(() => makeConfig('nope')).toThrow(/config/);
  });
});
