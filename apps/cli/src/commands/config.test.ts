// `baka config` as a user runs it: the resolved model config as JSON.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFIG_KEYS, configJson, makeConfig, PRESETS } from '@baka/model';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/baka.js', import.meta.url));

function baka(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('baka config', () => {
  it('prints the resolved config of a preset with --set keys as JSON', () => {
    const run = baka([
      'config',
      '--preset',
      'small',
      '--set',
      'n_layers=2',
      '--set',
      'memory=none',
    ]);
    expect(run.status, run.stderr).toBe(0);
    // exactly what config.json of such a model holds
    expect(run.stdout).toBe(
      configJson(makeConfig({ ...PRESETS.small, n_layers: 2, memory: 'none' })),
    );
    const tiny = baka(['config']);
    expect(tiny.stdout).toBe(configJson(makeConfig(PRESETS.tiny)));
  });

  it('a config file, then --set; the keys with their defaults and descriptions', () => {
    const dir = mkdtempSync(join(tmpdir(), 'baka-config-'));
    const file = join(dir, 'model.json');
    writeFileSync(file, JSON.stringify({ dim_model: 16, n_layers: 2, n_heads: 2, n_vocab: 30 }));
    const run = baka(['config', '--config', file, '--set', 'dim_ff=0', '--set', 'rope_theta=500']);
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ dim_model: 16, dim_ff: 64, rope_theta: 500 });
    const keys = baka(['config', '--keys']);
    expect(keys.stdout).toMatch(/^n_ctx +512 +Chunk length: .* Expects an integer > 0\.$/m);
    expect(keys.stdout).toMatch(/^dim_model +\(required\)/m);
    // the longest keys are still separated from their defaults
    expect(keys.stdout).toMatch(/^thin_rotary_scale +0\.0001 +Rotary frequency scale/m);
    expect(keys.stdout).toMatch(
      /^rotary_precision +float32 +Rotary table arithmetic: .* Expects one of float32, bfloat16\.$/m,
    );
  });

  it('unknown keys, bad values, bad presets and invariants are one line, exit 2', () => {
    const cases: [string[], RegExp][] = [
      [
        ['--set', 'n_layer=2'],
        // every key, in config.json order (a new field joins the list without editing this test)
        new RegExp(`^baka: --set: unknown key 'n_layer'; valid keys: ${CONFIG_KEYS.join(', ')}$`),
      ],
      [
        ['--set', 'rotary_layout=neox'],
        /^baka: --set rotary_layout=neox: expected one of interleaved, half/,
      ],
      [['--preset', 'huge'], /^baka: --preset: expected one of baka-xl, .*tiny, got 'huge'$/],
      [
        ['--set', 'n_heads=3'],
        /^baka: --preset tiny: dim_attn \(128\) must be divisible by n_heads \(3\)$/,
      ],
    ];
    for (const [args, message] of cases) {
      const run = baka(['config', ...args]);
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr.trim()).toMatch(message);
    }
  });
});
