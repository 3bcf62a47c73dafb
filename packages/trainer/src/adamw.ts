// AdamW with PyTorch's exact semantics (torch.optim.AdamW, single-tensor path), on flat state.
//
// For step t (1-based), learning rate lr, gradient g:
//   p   <- p * (1 - lr * wd)                       decoupled weight decay, before the Adam update
//   m   <- m + (1 - b1) * (g - m)                  torch's exp_avg.lerp_(g, 1 - b1)
//   v   <- v * b2 + ((1 - b2) * g) * g             torch's exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2)
//   denom = sqrt(v) / sqrt(1 - b2^t) + eps
//   p   <- p - (lr / (1 - b1^t)) * m / denom
// The moments m, v are two flat Variables [N] over every parameter (see ParameterLayout), so a
// step is ~10 kernels on the flat vector plus 3 per parameter (decay, subtract, assign).
// Scalars (bias corrections, step size) are computed in float64 on the host, as PyTorch does.
//
// Shapes: N = total trainable elements.
import * as tf from '@tensorflow/tfjs-core';
import { ParameterLayout } from './flat-gradients';

export interface AdamWOptions {
  /** Default 1e-3. */
  learningRate?: number;
  /** Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Default 1e-8. */
  epsilon?: number;
  /** Decoupled weight decay, default 0.01. */
  weightDecay?: number;
}

/** Host copy of the optimizer state, per parameter name (for optimizer.safetensors). */
export interface AdamWState {
  step: number;
  expAvg: Map<string, Float32Array>;
  expAvgSq: Map<string, Float32Array>;
}

export class AdamW {
  readonly layout: ParameterLayout;
  readonly learningRate: number;
  readonly betas: [number, number];
  readonly epsilon: number;
  readonly weightDecay: number;
  private readonly variables: tf.Variable[];
  private expAvg: tf.Variable<tf.Rank.R1>;
  private expAvgSq: tf.Variable<tf.Rank.R1>;
  private steps = 0;
  private disposed = false;

  /** `parameters`: the trainable parameters by name, in a fixed order (state is tied to names). */
  constructor(parameters: Iterable<readonly [string, tf.Variable]>, options: AdamWOptions = {}) {
    const list = [...parameters];
    this.layout = new ParameterLayout(list);
    this.variables = list.map(([, variable]) => variable);
    this.learningRate = options.learningRate ?? 1e-3;
    this.betas = options.betas ?? [0.9, 0.999];
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    for (const [name, value] of [
      ['learningRate', this.learningRate],
      ['epsilon', this.epsilon],
      ['weightDecay', this.weightDecay],
    ] as const) {
      if (!Number.isFinite(value) || value < 0)
        throw new Error(`AdamW ${name} must be >= 0, got ${value}`);
    }
    for (const beta of this.betas) {
      if (!(beta >= 0 && beta < 1))
        throw new Error(`AdamW betas must be in [0, 1), got ${this.betas}`);
    }
    // Inside tidy: the zeros the variables are made from are freed, the variables stay.
    const size = this.layout.size;
    this.expAvg = tf.tidy(() => tf.variable(tf.zeros([size]) as tf.Tensor1D, false));
    this.expAvgSq = tf.tidy(() => tf.variable(tf.zeros([size]) as tf.Tensor1D, false));
  }

  /** Number of steps taken so far (PyTorch's `state['step']`). */
  get stepCount(): number {
    return this.steps;
  }

  /**
   * One update from a flat gradient [N] (see ParameterLayout.flatten) or per-parameter gradients.
   * `learningRate` overrides the constructor's value for this step (schedules).
   */
  step(
    gradients: tf.Tensor1D | ReadonlyMap<string, tf.Tensor> | tf.NamedTensorMap,
    learningRate: number = this.learningRate,
  ): void {
    if (this.disposed) throw new Error('AdamW used after dispose()');
    const [beta1, beta2] = this.betas;
    const t = this.steps + 1;
    const biasCorrection1 = 1 - beta1 ** t;
    const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** t);
    const stepSize = learningRate / biasCorrection1;
    const decay = 1 - learningRate * this.weightDecay;
    tf.tidy(() => {
      const g: tf.Tensor1D =
        gradients instanceof tf.Tensor
          ? (gradients as tf.Tensor1D)
          : this.layout.flatten(gradients as tf.NamedTensorMap); // [N]
      if (g.size !== this.layout.size) {
        throw new Error(`gradient has ${g.size} values, expected ${this.layout.size}`);
      }
      const m: tf.Tensor1D = tf.add(this.expAvg, tf.mul(tf.sub(g, this.expAvg), 1 - beta1)); // [N]
      const v: tf.Tensor1D = tf.add(tf.mul(this.expAvgSq, beta2), tf.mul(tf.mul(g, 1 - beta2), g)); // [N]
      const denom = tf.add(tf.div(tf.sqrt(v), biasCorrection2Sqrt), this.epsilon); // [N]
      const update: tf.Tensor1D = tf.div(tf.mul(m, stepSize), denom); // [N]
      this.expAvg.assign(m);
      this.expAvgSq.assign(v);
      const parts = this.layout.unflatten(update);
      this.variables.forEach((variable, i) => {
        const decayed = decay === 1 ? variable : tf.mul(variable, decay);
        variable.assign(tf.sub(decayed, parts[i]!));
      });
    });
    this.steps = t;
  }

  /** A host copy of the state (step count and both moments per parameter name). */
  state(): AdamWState {
    const expAvg = this.layout.splitArray(this.expAvg.dataSync() as Float32Array);
    const expAvgSq = this.layout.splitArray(this.expAvgSq.dataSync() as Float32Array);
    return { step: this.steps, expAvg, expAvgSq };
  }

  /** Restores a state saved by `state()`; every parameter must be present with its size. */
  loadState(state: AdamWState): void {
    const gather = (which: string, byName: Map<string, Float32Array>) => {
      const flat = new Float32Array(this.layout.size);
      for (const slot of this.layout.slots) {
        const data = byName.get(slot.name);
        if (!data) throw new Error(`optimizer state has no ${which} for parameter '${slot.name}'`);
        if (data.length !== slot.size) {
          throw new Error(
            `optimizer ${which} for '${slot.name}' has ${data.length} values, expected ${slot.size}`,
          );
        }
        flat.set(data, slot.offset);
      }
      return flat;
    };
    const m = gather('exp_avg', state.expAvg);
    const v = gather('exp_avg_sq', state.expAvgSq);
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new Error(`optimizer step must be a non-negative integer, got ${state.step}`);
    }
    tf.tidy(() => {
      this.expAvg.assign(tf.tensor1d(m));
      this.expAvgSq.assign(tf.tensor1d(v));
    });
    this.steps = state.step;
  }

  dispose(): void {
    if (this.disposed) return;
    this.expAvg.dispose();
    this.expAvgSq.dispose();
    this.disposed = true;
  }
}
