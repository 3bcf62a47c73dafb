import { describe, expect, it } from 'vitest';
import { TrainerError } from './trainer-state';
import {
  makeTrainingOptions,
  parseTrainingSettings,
  RESUMABLE_OPTIONS,
  TRAINING_OPTION_KEYS,
  trainingOptionFields,
} from './training-options';

describe('makeTrainingOptions', () => {
  it('applies upstream defaults', () => {
    const options = makeTrainingOptions({ runName: 'run' });
    expect([options.mode, options.window]).toEqual(['upstream', 2048]);
  });

  it('errors name where the options came from and the field', () => {
    expect(() => makeTrainingOptions({ runName: 'run', window: 2 }, 'training.json')).toThrow(
      /^training\.json: field 'window': /,
    );
    expect(() => makeTrainingOptions({ window: 8 })).toThrow(
      /^training options: field 'runName': /,
    );
    expect(() => makeTrainingOptions(null)).toThrow(/^training options: field '\(root\)': /);
    expect(() => makeTrainingOptions({ runName: 'run', window: 2 })).toThrow(TrainerError);
  });

  it('every option has a one-line description and its default, from the schema', () => {
    const fields = trainingOptionFields();
    expect(fields.map((field) => field.key)).toEqual(TRAINING_OPTION_KEYS);
    for (const field of fields) expect(field.description, field.key).toMatch(/^[^\n]+$/);
    const byKey = Object.fromEntries(fields.map((field) => [field.key, field]));
    // one default for the library and the CLI (the CLI said 50, the schema 0)
    expect(byKey.saveEvery!.default).toBe(50);
    expect(makeTrainingOptions({ runName: 'run' }).saveEvery).toBe(50);
    expect(byKey.carryMemory).toMatchObject({ default: false, expected: 'true or false' });
    expect(byKey.runName!.default).toBeUndefined();
  });

  it('--set settings are typed by the schema; unknown keys list the valid ones', () => {
    expect(
      parseTrainingSettings([
        'betas=0.9,0.95',
        'weightDecay=0',
        'carryMemory=true',
        'clipNorm=null',
      ]),
    ).toEqual({ betas: [0.9, 0.95], weightDecay: 0, carryMemory: true, clipNorm: null });
    expect(() => parseTrainingSettings(['lr=1'])).toThrow(
      /^--set: unknown key 'lr'; valid keys: runName, mode, .*preset$/,
    );
    expect(() => parseTrainingSettings(['mode=random'])).toThrow(
      /^--set mode=random: expected one of upstream, packed/,
    );
  });

  it('a resume may change only how long, how fast and how often, never the model or the data', () => {
    for (const key of ['learningRate', 'maxSteps', 'saveEvery', 'evalEvery', 'keep', 'maxMinutes'])
      expect(RESUMABLE_OPTIONS.has(key as never), key).toBe(true);
    for (const key of ['window', 'batchSize', 'mode', 'corpus', 'seed', 'tokenizer', 'carryMemory'])
      expect(RESUMABLE_OPTIONS.has(key as never), key).toBe(false);
  });
});
