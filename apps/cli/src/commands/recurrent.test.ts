// Block-Recurrent Transformer layers from the CLI as a user runs them (real processes): a small
// model with a recurrent layer trains with its state carried from window to window, resumes
// exactly from a checkpoint (the state is in memory.safetensors), generates, evaluates and shows
// its fields in `baka info`; a bad value is one line naming the field.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '@baka/model';
import { latestCheckpoint } from '@baka/trainer';
import { describe, expect, it } from 'vitest';
import { runCli, runLosses, smallSetup } from '../cli-test-helpers';

describe('block-recurrent layers from the CLI', { timeout: 180_000 }, () => {
  it('--set recurrent_layers=1: trains with carried state, resumes exactly, generates, evaluates', async () => {
    const { dir, common } = smallSetup();
    const recurrent = [
      ...common,
      '--carry-memory',
      '--set',
      'recurrent_layers=1',
      '--set',
      'n_state_vectors=4',
      '--set',
      'state_gate=lstm',
      '--no-sample',
    ];
    const straight = await runCli(['train', ...recurrent, '--run', 'straight', '--steps', '4']);
    expect(straight.status, straight.stderr).toBe(0);
    const first = await runCli(['train', ...recurrent, '--run', 'split', '--steps', '2']);
    expect(first.status, first.stderr).toBe(0);
    const checkpoint = latestCheckpoint(join(dir, 'runs', 'split', 'checkpoints'))!;
    const names = [...readSafetensors(join(checkpoint, 'model.safetensors')).keys()];
    expect(names).toEqual(
      expect.arrayContaining([
        'model.layers.1.recurrent.initial_state',
        'model.layers.1.recurrent.forget_gate.weight',
      ]),
    );
    // the carried state (the recurrent layer's state and the XL memory) is in the checkpoint
    const state = readSafetensors(join(checkpoint, 'memory.safetensors'));
    expect([...state.keys()]).toEqual(
      expect.arrayContaining(['recurrent.layers.1.state', 'inner.layers.0.k']),
    );
    const resumed = await runCli([
      'train',
      '--resume',
      'split',
      '--runs-dir',
      join(dir, 'runs'),
      '--backend',
      'cpu',
      '--steps',
      '4',
      '--no-sample',
    ]);
    expect(resumed.status, resumed.stderr).toBe(0);
    const database = join(dir, 'runs', 'metrics.sqlite');
    const straightLosses = runLosses(database, 'straight');
    expect(straightLosses).toHaveLength(4);
    expect(runLosses(database, 'split')).toEqual(straightLosses);

    const final = latestCheckpoint(join(dir, 'runs', 'split', 'checkpoints'))!;
    const generated = await runCli([
      'generate',
      '--checkpoint',
      final,
      '--prompt',
      'the king walks at night and speaks',
      '--max-new-tokens',
      '12',
      '--temperature',
      '0',
      '--backend',
      'cpu',
    ]);
    expect(generated.status, generated.stderr).toBe(0);
    expect(generated.stderr).toMatch(/12 tokens in/);
    const ids = join(dir, 'ids.json');
    writeFileSync(ids, JSON.stringify([[5, 17, 40, 2, 9, 11, 30, 8, 100, 7, 3, 4, 5, 6, 7, 8, 9]]));
    const evaluated = await runCli([
      'eval',
      '--checkpoint',
      final,
      '--input-ids',
      ids,
      '--json',
      '--backend',
      'cpu',
    ]);
    expect(evaluated.status, evaluated.stderr).toBe(0);
    const info = await runCli(['info', '--checkpoint', final]);
    expect(info.status, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/recurrent_layers +1 /);
    expect(info.stdout).toMatch(/state_gate +lstm/);
  });

  it('a bad recurrent setting is one line naming the field, exit 2', async () => {
    const { common } = smallSetup();
    for (const [setting, field] of [
      ['recurrent_layers=5', 'recurrent_layers'],
      ['state_gate=gru', 'state_gate'],
      ['n_state_vectors=-1', 'n_state_vectors'],
    ] as const) {
      const run = await runCli([
        'train',
        ...common,
        '--steps',
        '1',
        '--set',
        setting,
        '--no-sample',
      ]);
      expect(run.status, setting).toBe(2);
      const lines = run.stderr
        .trim()
        .split('\n')
        .filter((line) => !line.startsWith('backend:'));
      expect(lines, run.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(field));
    }
  });
});
