import { describe, expect, it } from 'vitest';
import { TrainerError } from './trainer-state';
import { makeTrainingOptions } from './training-options';

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
});
