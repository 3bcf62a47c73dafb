// The memory variants from the CLI as a user runs them (real processes): upstream's own 004/005
// checkpoints evaluate to upstream's loss; a small RMT model from --preset baka-rmt trains with
// its state carried from window to window, resumes exactly, generates and evaluates; so does a
// small model with a Mega layer, whose EMA state is carried.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '@baka/model';
import { describe, expect, it } from 'vitest';
import {
  carriedVariantArgs,
  expectExactResume,
  expectRefusedSettings,
  runCli,
  runLosses,
  smallSetup,
  useCheckpoint,
} from '../cli-test-helpers';

const variants = fileURLToPath(
  new URL('../../../../packages/model/__fixtures__/variants/', import.meta.url),
);
const backend = process.env.BAKA_TEST_BACKEND === 'cpu' ? 'cpu' : 'auto';

describe('memory variants from the CLI', { timeout: 180_000 }, () => {
  it.each(['004', '005'])(
    "baka eval on upstream %s's own checkpoint gives upstream's loss (1e-4)",
    async (branch) => {
      const dir = join(variants, `upstream-${branch}`);
      const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
      const run = await runCli([
        'eval',
        '--checkpoint',
        dir,
        '--input-ids',
        join(dir, 'input-ids.json'),
        '--json',
        '--backend',
        backend,
      ]);
      expect(run.status, run.stderr).toBe(0);
      const result = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { loss: number };
      expect(Math.abs(result.loss - expected.loss)).toBeLessThan(1e-4);
    },
  );

  it('--preset baka-rmt (small --set): trains with carried state, resumes exactly, generates, evaluates', async () => {
    const { dir, common } = smallSetup();
    // smallSetup's --config gives the shape; the preset's RMT and pause fields come with --set
    const rmt = carriedVariantArgs(common, [
      'n_pauses=2',
      'n_rmt_tokens=3',
      'memory_source=same-layer',
    ]);
    const final = await expectExactResume(rmt, join(dir, 'runs'), {
      afterFirst: (checkpoint) => {
        const config = JSON.parse(readFileSync(join(checkpoint, 'config.json'), 'utf8'));
        expect(config).toMatchObject({ model_type: 'baka_rmt', n_pauses: 2, n_rmt_tokens: 3 });
        const names = [...readSafetensors(join(checkpoint, 'model.safetensors')).keys()];
        expect(names).toEqual(
          expect.arrayContaining(['model.pause.pause_emb', 'model.rmt.rmt_tokens']),
        );
        // the carried state (XL memory and m) is in the checkpoint
        const state = readSafetensors(join(checkpoint, 'memory.safetensors'));
        expect([...state.keys()]).toContain('rmt.write');
      },
    });
    const { info } = await useCheckpoint(final, dir);
    expect(info).toMatch(/n_rmt_tokens +3/);
  });

  it('--set mamba_carry_state=true: the Mamba state is saved with --carry-memory and resumes exactly', async () => {
    const { dir, common } = smallSetup();
    const mamba = carriedVariantArgs(common, ['mamba_each_nth_layer=2', 'mamba_carry_state=true']);
    const runs = join(dir, 'runs');
    await expectExactResume(mamba, runs, {
      afterFirst: (checkpoint) => {
        const state = readSafetensors(join(checkpoint, 'memory.safetensors'));
        expect([...state.keys()]).toEqual(
          expect.arrayContaining(['layers.0.conv', 'layers.0.ssm', 'inner.layers.1.k']),
        );
      },
    });
    const database = join(runs, 'metrics.sqlite');
    const straightLosses = runLosses(database, 'straight');
    // negative control: upstream 007's restart from zero in every chunk trains differently
    const restarting = mamba.map((arg) =>
      arg === 'mamba_carry_state=true' ? 'mamba_carry_state=false' : arg,
    );
    const plain = await runCli(['train', ...restarting, '--run', 'plain', '--steps', '2']);
    expect(plain.status, plain.stderr).toBe(0);
    expect(runLosses(database, 'plain')).not.toEqual(straightLosses.slice(0, 2));
  });

  it('--set layer_kinds=mega,standard: EMA state saved with --carry-memory, resumes exactly, generates, evaluates', async () => {
    const { dir, common } = smallSetup();
    const mega = carriedVariantArgs(common, [
      'layer_kinds=mega,standard',
      'memory_source=same-layer',
      'ema_dim=4',
    ]);
    const runs = join(dir, 'runs');
    const final = await expectExactResume(mega, runs, {
      afterFirst: (checkpoint) => {
        const state = readSafetensors(join(checkpoint, 'memory.safetensors'));
        expect([...state.keys()]).toEqual(
          expect.arrayContaining(['layers.0.ema', 'inner.layers.1.k']),
        );
        expect(state.get('layers.0.ema')!.shape.slice(1)).toEqual([16, 4]); // [B, D, ema_dim]
      },
    });
    const database = join(runs, 'metrics.sqlite');
    const straightLosses = runLosses(database, 'straight');
    // negative control: without --carry-memory every window starts the EMA from zero
    const fresh = mega.filter((arg) => arg !== '--carry-memory');
    const plain = await runCli(['train', ...fresh, '--run', 'plain', '--steps', '4']);
    expect(plain.status, plain.stderr).toBe(0);
    expect(runLosses(database, 'plain')).not.toEqual(straightLosses);

    const { info } = await useCheckpoint(final, dir);
    expect(info).toMatch(/ema_dim +4/);
    expect(info).toMatch(/layer_kinds +mega,standard/);
    // a Mega layer under the default previous-layer memory: one line naming the field, exit 2
    const refused = await runCli([
      'train',
      ...common,
      '--set',
      'layer_kinds=mega,standard',
      '--steps',
      '1',
    ]);
    expect(refused.status).toBe(2);
    const errors = refused.stderr.split('\n').filter((line) => line.startsWith('baka:'));
    expect(errors).toHaveLength(1); // (after the backend line)
    expect(errors[0]).toMatch(/layer_kinds 'mega' needs memory_source same-layer/);
  });

  it('unsupported upstream fields are one line naming the field, exit 2', async () => {
    const { common } = smallSetup();
    for (const [setting, field] of [
      ['n_rmt_margins=2', 'n_rmt_margins'],
      ['rmt_solidifier=glu', 'rmt_solidifier'],
      ['n_pauses=9', 'n_pauses'],
    ] as const) {
      // one line after the backend line, naming the field, no stack
      await expectRefusedSettings(common, [setting], new RegExp(field));
    }
  });
});
