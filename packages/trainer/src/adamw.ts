// AdamW with PyTorch's exact semantics (torch.optim.AdamW, single-tensor path).
//
// For step t (1-based), learning rate lr, gradient g:
//   p   <- p * (1 - lr * wd)                       decoupled weight decay, before the Adam update
//   m   <- m + (1 - b1) * (g - m)                  torch's exp_avg.lerp_(g, 1 - b1)
//   v   <- v * b2 + ((1 - b2) * g) * g             torch's exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2)
//   denom = sqrt(v) / sqrt(1 - b2^t) + eps
//   p   <- p - (lr / (1 - b1^t)) * m / denom
// The gradient arrives as one flat vector (see ParameterLayout) or per parameter; the moments are
// one Variable pair per parameter and the update runs parameter by parameter, each in its own
// tidy, so the temporaries alive at once are a few copies of the largest parameter rather than of
// every parameter (~10 kernels per parameter; launches are cheap next to the vocabulary-sized
// tensors of a language model). Scalars (bias corrections, step size) are computed in float64 on
// the host, as PyTorch does.
//
// Shapes: N = total trainable elements; each parameter i has its own shape.
import * as tf from '@tensorflow/tfjs-core';
import { ParameterLayout, type ParameterSlot } from './flat-gradients';

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
  private readonly expAvg: tf.Variable[];
  private readonly expAvgSq: tf.Variable[];
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
    const zeros = () =>
      this.layout.slots.map((slot) => tf.tidy(() => tf.variable(tf.zeros(slot.shape), false)));
    this.expAvg = zeros();
    this.expAvgSq = zeros();
  }

  /** Number of steps taken so far (PyTorch's `state['step']`). */
  get stepCount(): number {
    return this.steps;
  }

  /**
   * One update from a flat gradient [N] (see ParameterLayout.flatten) or per-parameter gradients.
   * `learningRate` overrides the constructor's value for this step (schedules); every gradient
   * is multiplied by `gradientScale` first (a clip coefficient; 1 leaves them as they are).
   */
  step(
    gradients: tf.Tensor1D | ReadonlyMap<string, tf.Tensor> | tf.NamedTensorMap,
    learningRate: number = this.learningRate,
    gradientScale = 1,
  ): void {
    if (this.disposed) throw new Error('AdamW used after dispose()');
    const [beta1, beta2] = this.betas;
    const t = this.steps + 1;
    const biasCorrection1 = 1 - beta1 ** t;
    const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** t);
    const stepSize = learningRate / biasCorrection1;
    const decay = 1 - learningRate * this.weightDecay;
    const flat = gradients instanceof tf.Tensor ? (gradients as tf.Tensor1D) : null;
    if (flat !== null && flat.size !== this.layout.size) {
      throw new Error(`gradient has ${flat.size} values, expected ${this.layout.size}`);
    }
    const named =
      flat === null ? (gradients as ReadonlyMap<string, tf.Tensor> | tf.NamedTensorMap) : null;
    // check every per-parameter gradient before changing anything
    const gradientOf = (slot: ParameterSlot): tf.Tensor | null => {
      if (named === null) return null;
      const gradient =
        named instanceof Map ? named.get(slot.name) : (named as tf.NamedTensorMap)[slot.name];
      if (!gradient) throw new Error(`no gradient for parameter '${slot.name}'`);
      if (gradient.size !== slot.size) {
        throw new Error(
          `gradient for '${slot.name}' has shape [${gradient.shape}], expected [${slot.shape}]`,
        );
      }
      return gradient;
    };
    const perParameter = this.layout.slots.map(gradientOf);
    this.layout.slots.forEach((slot, i) => {
      tf.tidy(() => {
        const given =
          flat === null
            ? tf.reshape(perParameter[i]!, slot.shape)
            : tf.reshape(tf.slice(flat, [slot.offset], [slot.size]), slot.shape); // [n_i] -> shape
        const g = gradientScale === 1 ? given : tf.mul(given, gradientScale);
        const expAvg = this.expAvg[i]!;
        const expAvgSq = this.expAvgSq[i]!;
        const variable = this.variables[i]!;
        const m = tf.add(expAvg, tf.mul(tf.sub(g, expAvg), 1 - beta1));
        const v = tf.add(tf.mul(expAvgSq, beta2), tf.mul(tf.mul(g, 1 - beta2), g));
        const denom = tf.add(tf.div(tf.sqrt(v), biasCorrection2Sqrt), this.epsilon);
        const update = tf.div(tf.mul(m, stepSize), denom);
        expAvg.assign(m);
        expAvgSq.assign(v);
        const decayed = decay === 1 ? variable : tf.mul(variable, decay);
        variable.assign(tf.sub(decayed, update));
      });
    });
    this.steps = t;
  }

  /** A host copy of the state (step count and both moments per parameter name). */
  state(): AdamWState {
    const read = (moments: tf.Variable[]) =>
      new Map(
        this.layout.slots.map((slot, i) => [slot.name, moments[i]!.dataSync() as Float32Array]),
      );
    return { step: this.steps, expAvg: read(this.expAvg), expAvgSq: read(this.expAvgSq) };
  }

  /** Restores a state saved by `state()`; every parameter must be present with its size. */
  loadState(state: AdamWState): void {
    const gather = (which: string, byName: Map<string, Float32Array>) =>
      this.layout.slots.map((slot) => {
        const data = byName.get(slot.name);
        if (!data) throw new Error(`optimizer state has no ${which} for parameter '${slot.name}'`);
        if (data.length !== slot.size) {
          throw new Error(
            `optimizer ${which} for '${slot.name}' has ${data.length} values, expected ${slot.size}`,
          );
        }
        return data;
      });
    const m = gather('exp_avg', state.expAvg);
    const v = gather('exp_avg_sq', state.expAvgSq);
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new Error(`optimizer step must be a non-negative integer, got ${state.step}`);
    }
    this.layout.slots.forEach((slot, i) => {
      tf.tidy(() => {
        this.expAvg[i]!.assign(tf.tensor(m[i]!, slot.shape, 'float32'));
        this.expAvgSq[i]!.assign(tf.tensor(v[i]!, slot.shape, 'float32'));
      });
    });
    this.steps = state.step;
  }

  dispose(): void {
    if (this.disposed) return;
    tf.dispose([...this.expAvg, ...this.expAvgSq]);
    this.disposed = true;
  }
}
