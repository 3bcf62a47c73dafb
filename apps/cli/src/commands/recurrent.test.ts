import { join } from 'node:path';
import { readSafetensors } from '@baka/model';
import { describe, expect, it } from 'vitest';
import {
  carriedVariantArgs,
  expectExactResume,
  expectRefusedSettings,
  smallSetup,
  useCheckpoint,
} from '../cli-test-helpers';

describe('block-recurrent layers from the CLI', { timeout: 180_000 }, () => {
  it('--set recurrent_layers=1: trains with carried state, resumes exactly, generates, evaluates', async () => {
    const { dir, common } = smallSetup();
    const recurrent = carriedVariantArgs(common, [
      'recurrent_layers=1',
      'n_state_vectors=4',
      'state_gate=lstm',
    ]);
    const final = await expectExactResume(recurrent, join(dir, 'runs'), {
      afterFirst: (checkpoint) => {
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
      },
    });
    const { info } = await useCheckpoint(final, dir);
    expect(info).toMatch(/recurrent_layers +1 /);
    expect(info).toMatch(/state_gate +lstm/);
  });

  it('a bad recurrent setting is one line naming the field, exit 2', async () => {
    const { common } = smallSetup();
    for (const [setting, field] of [
      ['recurrent_layers=5', 'recurrent_layers'],
      ['state_gate=gru', 'state_gate'],
      ['n_state_vectors=-1', 'n_state_vectors'],
    ] as const) {
      await expectRefusedSettings(common, [setting], new RegExp(field));
    }
  });
});
