// Norms inside attention (qk_norm) and split input norms (split_norm) from the CLI as a user runs
// them (real processes): each option trains a short run from --set and its checkpoint holds the
// option's tensors; one model with both trains, generates, evaluates and shows in `baka info`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '@baka/model';
import { latestCheckpoint } from '@baka/trainer';
import { describe, expect, it } from 'vitest';
import { runCli, runLosses, smallSetup, useCheckpoint } from '../cli-test-helpers';

/** --set settings, and a tensor of layer 1 the option must have written. */
const OPTIONS: [string, string[], string][] = [
  ['layernorm', ['qk_norm=layernorm'], 'model.layers.1.attn.k_norm.bias'],
  ['rmsnorm', ['qk_norm=rmsnorm', 'qk_norm_weights=per-head'], 'model.layers.1.attn.q_norm.weight'],
  [
    'l2',
    ['qk_norm=l2', 'qk_norm_learned_scale=true', 'qk_norm_scale=4'],
    'model.layers.1.attn.qk_scale',
  ],
  ['negator', ['qk_norm=negator', 'qk_norm_scope=all'], 'model.layers.1.attn.negator'],
  ['split_norm', ['split_norm=true'], 'model.layers.1.mlp.norm_in.weight'],
];

describe('qk_norm and split_norm from the CLI', { timeout: 180_000 }, () => {
  it.each(OPTIONS)(
    '%s trains from --set (2 steps, finite losses)',
    async (name, settings, tensor) => {
      const { dir, common } = smallSetup();
      const trained = await runCli([
        'train',
        ...common,
        '--run',
        name,
        '--steps',
        '2',
        ...settings.flatMap((setting) => ['--set', setting]),
        '--no-sample',
      ]);
      expect(trained.status, trained.stderr).toBe(0);
      const checkpoint = latestCheckpoint(join(dir, 'runs', name, 'checkpoints'))!;
      const config = JSON.parse(readFileSync(join(checkpoint, 'config.json'), 'utf8'));
      for (const setting of settings) {
        const [key, value] = setting.split('=') as [string, string];
        expect(String(config[key]), key).toBe(value);
      }
      expect([...readSafetensors(join(checkpoint, 'model.safetensors')).keys()]).toContain(tensor);
      const losses = runLosses(join(dir, 'runs', 'metrics.sqlite'), name);
      expect(losses.length).toBe(2);
      expect(losses.every(({ loss }) => Number.isFinite(loss))).toBe(true);
    },
  );

  it('negator + split_norm: generates, evaluates and shows its fields in baka info', async () => {
    const { dir, common } = smallSetup();
    const settings = ['qk_norm=negator', 'split_norm=true', 'qk_norm_weights=per-head'];
    const trained = await runCli([
      'train',
      ...common,
      '--run',
      'both',
      '--steps',
      '2',
      ...settings.flatMap((setting) => ['--set', setting]),
      '--no-sample',
    ]);
    expect(trained.status, trained.stderr).toBe(0);
    const checkpoint = latestCheckpoint(join(dir, 'runs', 'both', 'checkpoints'))!;
    const { info } = await useCheckpoint(checkpoint, dir);
    expect(info).toMatch(/^ +qk_norm +negator +Norm of q and k per head/m);
    expect(info).toMatch(/^ +split_norm +true +Separate input norms/m);
    const bad = await runCli([
      'train',
      ...common,
      '--run',
      'bad',
      '--set',
      'qk_norm_scale=2',
      '--steps',
      '1',
    ]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/qk_norm_scale: only qk_norm l2 has a logit scale, not 'none'/);
  });
});
