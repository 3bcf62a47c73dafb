import { describe, expect, it } from 'vitest';
import { diffConfigs, flattenConfig } from './config-diff';

describe('config diff', () => {
  it('flattens nested objects and arrays to dotted paths', () => {
    expect([
      ...flattenConfig({ model: { dim: 64, betas: [0.9, 0.95] }, name: 'a', empty: {} }),
    ]).toEqual([
      ['model.dim', '64'],
      ['model.betas.0', '0.9'],
      ['model.betas.1', '0.95'],
      ['name', '"a"'],
      ['empty', '{}'],
    ]);
  });

  it('keeps only the fields that differ, including fields missing from some runs', () => {
    const differences = diffConfigs([
      { model: { dim: 64, reset: true }, lr: 0.001, seed: 1 },
      { model: { dim: 64, reset: false }, lr: 0.001, seed: 1, extra: 'x' },
      { model: { dim: 64, reset: true }, lr: 0.001, seed: 2 },
    ]);
    expect(differences).toEqual([
      { path: 'extra', values: [undefined, '"x"', undefined] },
      { path: 'model.reset', values: ['true', 'false', 'true'] },
      { path: 'seed', values: ['1', '1', '2'] },
    ]);
  });

  it('finds nothing to show for identical configs', () => {
    expect(diffConfigs([{ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }])).toEqual([]);
  });
});
