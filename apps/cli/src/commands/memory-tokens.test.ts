// Memory Transformer tokens and persistent memory k/v from the CLI as a user runs them (real
// processes): each option trains a short run with --set; the combination trains with carried
// state, resumes exactly, generates, evaluates and shows its fields in `baka info`; a refused
// combination is one line naming the field.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '@baka/model';
import { latestCheckpoint } from '@baka/trainer';
import { describe, expect, it } from 'vitest';
import {
  carriedVariantArgs,
  expectExactResume,
  expectRefusedSettings,
  runCli,
  runLosses,
  setFlags,
  smallSetup,
  useCheckpoint,
} from '../cli-test-helpers';

describe('memory tokens from the CLI', { timeout: 240_000 }, () => {
  it.each([
    ['n_memory_tokens=2', 'model.memtok.tokens'],
    ['n_memory_tokens=2 memory_tokens_every=3', 'model.memtok.tokens'],
    ['n_mem_kv=2', 'model.layers.1.attn.mem_k'],
  ])('baka train --set %s trains a short run and saves its tensors', async (settings, tensor) => {
    const { dir, common } = smallSetup();
    const set = setFlags(settings.split(' '));
    const run = await runCli([
      'train',
      ...common,
      ...set,
      '--run',
      'r',
      '--steps',
      '2',
      '--no-sample',
    ]);
    expect(run.status, run.stderr).toBe(0);
    const losses = runLosses(join(dir, 'runs', 'metrics.sqlite'), 'r');
    expect(losses).toHaveLength(2);
    expect(losses.every(({ loss }) => Number.isFinite(loss))).toBe(true);
    const checkpoint = latestCheckpoint(join(dir, 'runs', 'r', 'checkpoints'))!;
    const names = [...readSafetensors(join(checkpoint, 'model.safetensors')).keys()];
    expect(names).toContain(tensor);
  });

  it('every option at once: carried state, exact resume, generate, eval, info', async () => {
    const { dir, common } = smallSetup();
    const options = carriedVariantArgs(common, [
      'n_memory_tokens=2',
      'memory_tokens_every=4',
      'memory_tokens_in_xl=true',
      'n_mem_kv=2',
    ]);
    const final = await expectExactResume(options, join(dir, 'runs'));
    const config = JSON.parse(readFileSync(join(final, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      model_type: 'baka_xl',
      n_memory_tokens: 2,
      memory_tokens_every: 4,
      memory_tokens_in_xl: true,
      n_mem_kv: 2,
    });
    const { info } = await useCheckpoint(final, dir);
    expect(info).toMatch(/n_memory_tokens +2/);
    expect(info).toMatch(/n_mem_kv +2/);
  });

  it('a refused combination is one line naming the field, exit 2', async () => {
    const { common } = smallSetup();
    await expectRefusedSettings(
      common,
      ['n_memory_tokens=2', 'n_pauses=2'],
      /n_memory_tokens cannot be combined with n_pauses/,
    );
  });
});
