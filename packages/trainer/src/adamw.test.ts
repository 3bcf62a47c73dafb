import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AdamW } from './adamw';
import { clipByGlobalNorm, GradientAccumulator, ParameterLayout } from './flat-gradients';
import { clipAndStep } from './train-step';

interface FixtureStep {
  grads: Record<string, number[]>;
  total_norm?: number;
  clipped_grads?: Record<string, number[]>;
  params: Record<string, number[]>;
  exp_avg: Record<string, number[]>;
  exp_avg_sq: Record<string, number[]>;
}
interface FixtureCase {
  setting: {
    lr: number;
    betas: [number, number];
    eps: number;
    weight_decay: number;
    max_norm: number | null;
  };
  shapes: Record<string, number[]>;
  initial: Record<string, number[]>;
  steps: FixtureStep[];
}
const fixture = JSON.parse(
  readFileSync(new URL('../__fixtures__/adamw.json', import.meta.url), 'utf8'),
) as { cases: Record<string, FixtureCase> };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

function makeParameters(c: FixtureCase): Map<string, tf.Variable> {
  return new Map(
    Object.entries(c.shapes).map(([name, shape]) => [
      name,
      tf.variable(tf.tensor(c.initial[name]!, shape), true),
    ]),
  );
}

function gradientsOf(c: FixtureCase, grads: Record<string, number[]>): Map<string, tf.Tensor> {
  return new Map(
    Object.entries(c.shapes).map(([name, shape]) => [name, tf.tensor(grads[name]!, shape)]),
  );
}

describe('AdamW matches torch.optim.AdamW', () => {
  for (const [caseName, c] of Object.entries(fixture.cases)) {
    it(`${caseName}: parameters and moments after each of ${c.steps.length} steps`, () => {
      const parameters = makeParameters(c);
      const optimizer = new AdamW(parameters, {
        learningRate: c.setting.lr,
        betas: c.setting.betas,
        epsilon: c.setting.eps,
        weightDecay: c.setting.weight_decay,
      });
      let worst = 0;
      for (const step of c.steps) {
        const grads = gradientsOf(c, step.grads);
        const flat = optimizer.layout.flatten(grads);
        if (c.setting.max_norm !== null) {
          const { gradients, totalNorm } = clipByGlobalNorm(flat, c.setting.max_norm);
          expect(totalNorm.dataSync()[0]).toBeCloseTo(step.total_norm!, 5);
          const clipped = optimizer.layout.splitArray(gradients.dataSync() as Float32Array);
          for (const name of parameters.keys()) {
            expect(maxAbsDiff(clipped.get(name)!, step.clipped_grads![name]!)).toBeLessThan(1e-6);
          }
          optimizer.step(gradients);
          tf.dispose([gradients, totalNorm]);
        } else {
          optimizer.step(grads);
        }
        tf.dispose([flat, ...grads.values()]);
        const state = optimizer.state();
        for (const [name, variable] of parameters) {
          worst = Math.max(worst, maxAbsDiff(variable.dataSync(), step.params[name]!));
          expect(maxAbsDiff(state.expAvg.get(name)!, step.exp_avg[name]!)).toBeLessThan(1e-6);
          expect(maxAbsDiff(state.expAvgSq.get(name)!, step.exp_avg_sq[name]!)).toBeLessThan(1e-6);
        }
      }
      expect(optimizer.stepCount).toBe(c.steps.length);
      console.log(
        `AdamW '${caseName}' max-abs parameter error vs torch: ${worst.toExponential(2)}`,
      );
      expect(worst).toBeLessThan(1e-6);
      optimizer.dispose();
      tf.dispose([...parameters.values()]);
    });
  }

  it('state round-trips: a restored optimizer continues exactly like the original', () => {
    const c = fixture.cases.defaults!;
    const a = makeParameters(c);
    const b = makeParameters(c);
    const first = new AdamW(a);
    for (const step of c.steps.slice(0, 3)) {
      const grads = gradientsOf(c, step.grads);
      first.step(grads);
      tf.dispose([...grads.values()]);
    }
    for (const [name, variable] of a) b.get(name)!.assign(variable);
    const second = new AdamW(b);
    second.loadState(first.state());
    expect(second.stepCount).toBe(3);
    for (const step of c.steps.slice(3)) {
      const grads = gradientsOf(c, step.grads);
      first.step(grads);
      second.step(grads);
      tf.dispose([...grads.values()]);
    }
    for (const [name, variable] of a) {
      expect(Array.from(b.get(name)!.dataSync())).toEqual(Array.from(variable.dataSync()));
    }
    first.dispose();
    second.dispose();
    tf.dispose([...a.values(), ...b.values()]);
  });

  it('loadState names the missing parameter', () => {
    const c = fixture.cases.defaults!;
    const parameters = makeParameters(c);
    const optimizer = new AdamW(parameters);
    const state = optimizer.state();
    state.expAvg.delete('head.weight');
    expect(() => optimizer.loadState(state)).toThrow(/exp_avg for parameter 'head.weight'/);
    optimizer.dispose();
    tf.dispose([...parameters.values()]);
  });

  it('does not grow the number of tensors across steps', () => {
    const c = fixture.cases.clipped!;
    const parameters = makeParameters(c);
    const optimizer = new AdamW(parameters);
    const run = (step: FixtureStep) => {
      const grads = gradientsOf(c, step.grads);
      const flat = optimizer.layout.flatten(grads);
      const { gradients, totalNorm } = clipByGlobalNorm(flat, 1);
      optimizer.step(gradients);
      tf.dispose([flat, gradients, totalNorm, ...grads.values()]);
    };
    run(c.steps[0]!);
    const before = tf.memory().numTensors;
    for (const step of c.steps.slice(1)) run(step);
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    tf.dispose([...parameters.values()]);
  });
});

describe('clipAndStep (the clip coefficient applied inside the step)', () => {
  it('equals clipByGlobalNorm then step bit for bit, and matches torch', () => {
    const c = fixture.cases.clipped!;
    expect(c.setting.max_norm).not.toBeNull();
    const options = {
      learningRate: c.setting.lr,
      betas: c.setting.betas,
      epsilon: c.setting.eps,
      weightDecay: c.setting.weight_decay,
    };
    const folded = makeParameters(c);
    const explicit = makeParameters(c);
    const unclipped = makeParameters(c);
    const foldedOptimizer = new AdamW(folded, options);
    const explicitOptimizer = new AdamW(explicit, options);
    const unclippedOptimizer = new AdamW(unclipped, options);
    let clippedSteps = 0;
    for (const step of c.steps) {
      const grads = gradientsOf(c, step.grads);
      const flat = foldedOptimizer.layout.flatten(grads);
      const result = clipAndStep(foldedOptimizer, flat, {
        learningRate: c.setting.lr,
        clipNorm: c.setting.max_norm,
      });
      expect(result.applied).toBe(true);
      expect(result.gradNorm).toBeCloseTo(step.total_norm!, 5);
      if (step.total_norm! > c.setting.max_norm!) clippedSteps += 1;
      const { gradients, totalNorm } = clipByGlobalNorm(flat, c.setting.max_norm!);
      explicitOptimizer.step(gradients);
      unclippedOptimizer.step(flat);
      tf.dispose([flat, gradients, totalNorm, ...grads.values()]);
      for (const name of folded.keys()) {
        expect(Array.from(folded.get(name)!.dataSync())).toEqual(
          Array.from(explicit.get(name)!.dataSync()),
        );
        expect(maxAbsDiff(folded.get(name)!.dataSync(), step.params[name]!)).toBeLessThan(1e-6);
      }
    }
    // negative control: the fixture clips, so skipping the coefficient gives other parameters
    expect(clippedSteps).toBeGreaterThan(0);
    const differs = [...folded.keys()].some(
      (name) => maxAbsDiff(folded.get(name)!.dataSync(), unclipped.get(name)!.dataSync()) > 1e-6,
    );
    expect(differs).toBe(true);
    for (const optimizer of [foldedOptimizer, explicitOptimizer, unclippedOptimizer]) {
      optimizer.dispose();
    }
    tf.dispose([...folded.values(), ...explicit.values(), ...unclipped.values()]);
  });

  it('does not grow the number of tensors across steps', () => {
    const c = fixture.cases.clipped!;
    const parameters = makeParameters(c);
    const optimizer = new AdamW(parameters);
    const run = (step: FixtureStep) => {
      const grads = gradientsOf(c, step.grads);
      const flat = optimizer.layout.flatten(grads);
      clipAndStep(optimizer, flat, { learningRate: 1e-3, clipNorm: 1 });
      tf.dispose([flat, ...grads.values()]);
    };
    run(c.steps[0]!);
    const before = tf.memory().numTensors;
    for (const step of c.steps.slice(1)) run(step);
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    tf.dispose([...parameters.values()]);
  });
});

describe('gradient clipping and accumulation', () => {
  it('leaves gradients below max norm unchanged (coefficient clamped to 1)', () => {
    const flat = tf.tensor1d([0.3, -0.4]);
    const { gradients, totalNorm } = clipByGlobalNorm(flat, 1);
    expect(totalNorm.dataSync()[0]).toBeCloseTo(0.5, 6);
    expect(Array.from(gradients.dataSync())).toEqual(Array.from(flat.dataSync()));
    tf.dispose([flat, gradients, totalNorm]);
  });

  it('scales by max_norm / (norm + 1e-6) above max norm', () => {
    const flat = tf.tensor1d([3, 4]);
    const { gradients } = clipByGlobalNorm(flat, 1);
    const coefficient = 1 / (5 + 1e-6);
    const out = gradients.dataSync();
    expect(out[0]).toBeCloseTo(3 * coefficient, 6);
    expect(out[1]).toBeCloseTo(4 * coefficient, 6);
    tf.dispose([flat, gradients]);
  });

  it('layout flattens in parameter order and rejects a wrong shape', () => {
    const layout = new ParameterLayout([
      ['a', { shape: [2] }],
      ['b', { shape: [1, 2] }],
    ]);
    const flat = layout.flatten(
      new Map<string, tf.Tensor>([
        ['b', tf.tensor2d([[3, 4]])],
        ['a', tf.tensor1d([1, 2])],
      ]),
    );
    expect(Array.from(flat.dataSync())).toEqual([1, 2, 3, 4]);
    expect(() =>
      layout.flatten(
        new Map([
          ['a', tf.tensor1d([1, 2])],
          ['b', tf.tensor1d([1])],
        ]),
      ),
    ).toThrow(/'b' has shape \[1\], expected \[1,2\]/);
    expect(() => layout.flatten(new Map([['a', tf.tensor1d([1, 2])]]))).toThrow(
      /no gradient for parameter 'b'/,
    );
    flat.dispose();
  });

  it('accumulates the mean of micro-batch gradients', () => {
    const start = tf.memory().numTensors;
    const accumulator = new GradientAccumulator(2);
    const g1 = tf.tensor1d([1, 2]);
    const g2 = tf.tensor1d([3, 6]);
    accumulator.add(g1);
    accumulator.add(g2);
    expect(accumulator.micro).toBe(2);
    const mean = accumulator.take();
    expect(Array.from(mean.dataSync())).toEqual([2, 4]);
    expect(accumulator.micro).toBe(0);
    expect(() => accumulator.take()).toThrow(/no gradients/);
    tf.dispose([g1, g2, mean]);
    accumulator.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('an optimizer frees everything it allocated on dispose', () => {
    const c = fixture.cases.defaults!;
    const parameters = makeParameters(c);
    const start = tf.memory().numTensors;
    const optimizer = new AdamW(parameters);
    const grads = gradientsOf(c, c.steps[0]!.grads);
    optimizer.step(grads);
    tf.dispose([...grads.values()]);
    optimizer.dispose();
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([...parameters.values()]);
  });
});
