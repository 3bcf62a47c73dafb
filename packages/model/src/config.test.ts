import { describe, expect, it } from 'vitest';
import {
  CONFIG_KEYS,
  configFields,
  legacyCarryMemory,
  makeConfig,
  parseConfigSettings,
  PRESETS,
  presetConfig,
} from './config';
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

  it('carry_memory moved to the training options: an old config.json still loads without it', () => {
    const old = { dim_model: 64, n_layers: 2, n_heads: 4, carry_memory: true };
    const config = makeConfig(old);
    expect('carry_memory' in config).toBe(false);
    expect(Object.keys(config)).toEqual(CONFIG_KEYS);
    expect(legacyCarryMemory(old)).toBe(true);
    expect(legacyCarryMemory({ dim_model: 64 })).toBeUndefined();
  });

  it('every field has a one-line description and its default, from the schema', () => {
    const fields = configFields();
    expect(fields.map((field) => field.key)).toEqual(CONFIG_KEYS);
    for (const field of fields) {
      expect(field.description.length, field.key).toBeGreaterThan(0);
      expect(field.description).not.toMatch(/\n/);
    }
    const byKey = Object.fromEntries(fields.map((field) => [field.key, field]));
    expect(byKey.n_ctx).toMatchObject({ default: 512, expected: 'an integer > 0' });
    expect(byKey.memory).toMatchObject({ default: 'xl', expected: 'one of xl, none' });
    expect(byKey.dim_model!.default).toBeUndefined();
  });

  it('--set key=value settings are typed and validated by the schema', () => {
    expect(
      parseConfigSettings([
        'n_layers=3',
        'memory=none',
        'rope_theta=5e5',
        'position_policy=absolute',
      ]),
    ).toEqual({ n_layers: 3, memory: 'none', rope_theta: 500000, position_policy: 'absolute' });
    // every key, in config.json order (a new field joins the list without editing this test)
    expect(() => parseConfigSettings(['n_layer=3'])).toThrow(
      `--set: unknown key 'n_layer'; valid keys: ${CONFIG_KEYS.join(', ')}`,
    );
    expect(CONFIG_KEYS.join(', ')).toMatch(
      /^model_type, dim_model, .*rope_theta, layer_kinds, layer_dim_ff, thin_rotary_scale, n_pauses, .*, norm, mamba_each_nth_layer/,
    );
    expect(() => parseConfigSettings(['memory=long'])).toThrow(
      /^--set memory=long: expected one of xl, none/,
    );
    expect(() => parseConfigSettings(['n_layers=2.5'])).toThrow(
      /^--set n_layers=2\.5: expected an integer > 0/,
    );
    expect(() => parseConfigSettings(['n_heads'])).toThrow(/expected key=value, got 'n_heads'/);
    // a one-element list needs no brackets (a 1-layer model's layer_kinds / layer_dim_ff) ...
    expect(parseConfigSettings(['layer_kinds=mega', 'layer_dim_ff=64'])).toEqual({
      layer_kinds: ['mega'],
      layer_dim_ff: [64],
    });
    expect(parseConfigSettings(['layer_kinds=standard,mega'])).toEqual({
      layer_kinds: ['standard', 'mega'],
    });
    // ... but a value no list element accepts is still refused, naming what was expected
    expect(() => parseConfigSettings(['layer_kinds=thin'])).toThrow(
      /^--set layer_kinds=thin: expected a list of one of standard, attention-only, mega/,
    );
    expect(() => parseConfigSettings(['memory=xl,none'])).toThrow(/^--set memory=xl,none: /);
    const config = makeConfig({ ...presetConfig('tiny'), ...parseConfigSettings(['n_layers=2']) });
    expect(config.n_layers).toBe(2);
    expect(() => presetConfig('huge')).toThrow(
      /^--preset: expected one of baka-xl, .*tiny, got 'huge'/,
    );
  });
});
