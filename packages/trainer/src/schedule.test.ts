import { describe, expect, it } from 'vitest';
import { checkSchedule, learningRateAt } from './schedule';

describe('learning-rate schedules', () => {
  it('constant stays at the learning rate (upstream)', () => {
    for (const step of [0, 1, 100, 10_000]) {
      expect(learningRateAt(step, { name: 'constant', learningRate: 1e-3 })).toBe(1e-3);
    }
  });

  it('warmup ramps linearly to the peak', () => {
    const options = { name: 'cosine' as const, learningRate: 1e-3, warmupSteps: 4, totalSteps: 14 };
    expect(learningRateAt(0, options)).toBeCloseTo(0.25e-3, 12);
    expect(learningRateAt(3, options)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(1, { name: 'constant', learningRate: 1e-3, warmupSteps: 4 })).toBeCloseTo(
      0.5e-3,
      12,
    );
  });

  it('cosine decays from the peak to the floor at totalSteps, then stays there', () => {
    const options = {
      name: 'cosine' as const,
      learningRate: 1e-3,
      warmupSteps: 4,
      totalSteps: 14,
      minLearningRate: 1e-4,
    };
    expect(learningRateAt(4, options)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(9, options)).toBeCloseTo(0.55e-3, 12);
    expect(learningRateAt(14, options)).toBeCloseTo(1e-4, 12);
    expect(learningRateAt(50, options)).toBeCloseTo(1e-4, 12);
    let previous = Number.POSITIVE_INFINITY;
    for (let step = 4; step <= 14; step++) {
      const lr = learningRateAt(step, options);
      expect(lr).toBeLessThanOrEqual(previous);
      previous = lr;
    }
  });

  it('validation names what is wrong', () => {
    expect(() => checkSchedule({ name: 'cosine', learningRate: 1e-3 })).toThrow(/total steps/);
    expect(() => checkSchedule({ name: 'linear' as never, learningRate: 1e-3 })).toThrow(
      /'linear'/,
    );
    expect(() => checkSchedule({ name: 'constant', learningRate: 0 })).toThrow(/learning rate/);
    expect(() => checkSchedule({ name: 'constant', learningRate: 1, warmupSteps: -1 })).toThrow(
      /warmup/,
    );
  });
});
