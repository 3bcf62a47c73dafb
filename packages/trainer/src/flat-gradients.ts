// Gradients as one flat vector. The optimizer, the clipping and the accumulation all work on a
// single 1-D tensor holding every trainable parameter's gradient back to back (in parameter
// order), so one optimizer step is a handful of kernel launches instead of a dozen per parameter.
//
// Shapes: N = total number of trainable parameter elements; each parameter i has size n_i.
import * as tf from '@tensorflow/tfjs-core';

/** Where one parameter lives inside the flat vector. */
export interface ParameterSlot {
  name: string;
  shape: number[];
  size: number;
  offset: number;
}

/** The flat layout of a list of named parameters, in the given order. */
export class ParameterLayout {
  readonly slots: readonly ParameterSlot[];
  readonly size: number;
  private readonly byName: Map<string, ParameterSlot>;

  constructor(parameters: Iterable<readonly [string, { shape: number[] }]>) {
    const slots: ParameterSlot[] = [];
    let offset = 0;
    for (const [name, value] of parameters) {
      const size = value.shape.reduce((a, b) => a * b, 1);
      slots.push({ name, shape: [...value.shape], size, offset });
      offset += size;
    }
    this.slots = slots;
    this.size = offset;
    this.byName = new Map(slots.map((slot) => [slot.name, slot]));
  }

  slot(name: string): ParameterSlot | undefined {
    return this.byName.get(name);
  }

  get names(): string[] {
    return this.slots.map((slot) => slot.name);
  }

  /**
   * Concatenates per-parameter gradients into one vector [N]. A missing gradient is an error,
   * except for the names in `mayBeUnused`, whose missing gradient is zero (parameters a
   * computation need not use, e.g. RMT's initial memory tokens in a window that continues
   * carried memory).
   */
  flatten(
    gradients: ReadonlyMap<string, tf.Tensor> | tf.NamedTensorMap,
    options: { mayBeUnused?: readonly string[] } = {},
  ): tf.Tensor1D {
    const get = (name: string) =>
      gradients instanceof Map ? gradients.get(name) : (gradients as tf.NamedTensorMap)[name];
    return tf.tidy(() => {
      const parts = this.slots.map((slot) => {
        const gradient = get(slot.name);
        if (!gradient && options.mayBeUnused?.includes(slot.name)) {
          return tf.zeros([slot.size]) as tf.Tensor1D;
        }
        if (!gradient) throw new Error(`no gradient for parameter '${slot.name}'`);
        if (gradient.size !== slot.size) {
          throw new Error(
            `gradient for '${slot.name}' has shape [${gradient.shape}], expected [${slot.shape}]`,
          );
        }
        return tf.reshape(gradient, [slot.size]); // [n_i]
      });
      return (parts.length === 1 ? parts[0]! : tf.concat(parts)) as tf.Tensor1D; // [N]
    });
  }

  /** Splits a flat vector [N] into per-parameter tensors of the parameters' shapes. */
  unflatten(flat: tf.Tensor1D): tf.Tensor[] {
    return tf.tidy(() =>
      tf
        .split(
          flat,
          this.slots.map((slot) => slot.size),
        )
        .map((part, i) => tf.reshape(part, this.slots[i]!.shape)),
    );
  }

  /** Splits a flat host array into per-parameter views (no copies). */
  splitArray(flat: Float32Array): Map<string, Float32Array> {
    if (flat.length !== this.size) {
      throw new Error(`flat array has ${flat.length} values, expected ${this.size}`);
    }
    return new Map(
      this.slots.map((slot) => [slot.name, flat.subarray(slot.offset, slot.offset + slot.size)]),
    );
  }
}

/** The global L2 norm of a flat gradient vector (a scalar tensor). */
export function globalNorm(flat: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sqrt(tf.sum(tf.square(flat))) as tf.Scalar);
}

/**
 * Clips by global norm with `torch.nn.utils.clip_grad_norm_` semantics:
 * coefficient = maxNorm / (totalNorm + 1e-6), clamped to at most 1, and the gradients are always
 * multiplied by it. Returns the clipped vector and the total norm before clipping.
 */
export function clipByGlobalNorm(
  flat: tf.Tensor1D,
  maxNorm: number,
): { gradients: tf.Tensor1D; totalNorm: tf.Scalar } {
  return tf.tidy(() => {
    const { totalNorm, coefficient } = clipCoefficient(flat, maxNorm);
    return { gradients: tf.mul(flat, coefficient), totalNorm };
  });
}

/**
 * clipByGlobalNorm's total norm and the coefficient it multiplies the gradients by
 * (maxNorm / (totalNorm + 1e-6), at most 1), without multiplying.
 */
export function clipCoefficient(
  flat: tf.Tensor1D,
  maxNorm: number,
): { totalNorm: tf.Scalar; coefficient: tf.Scalar } {
  return tf.tidy(() => {
    const totalNorm = globalNorm(flat);
    const coefficient = tf.minimum(tf.div(tf.scalar(maxNorm), tf.add(totalNorm, 1e-6)), 1);
    return { totalNorm, coefficient: coefficient as tf.Scalar };
  });
}

/**
 * Sums flat gradients over several micro-batches (gradient accumulation). `take()` returns the
 * mean over the micro-batches added since the last take and resets the sum.
 */
export class GradientAccumulator {
  private sum: tf.Variable<tf.Rank.R1> | null = null;
  private count = 0;

  constructor(readonly size: number) {}

  get micro(): number {
    return this.count;
  }

  add(flat: tf.Tensor1D): void {
    if (flat.size !== this.size) {
      throw new Error(`gradient has ${flat.size} values, expected ${this.size}`);
    }
    if (this.sum === null) {
      this.sum = tf.tidy(() => tf.variable(tf.clone(flat), false));
    } else {
      const sum = this.sum;
      tf.tidy(() => {
        sum.assign(tf.add(sum, flat));
      });
    }
    this.count += 1;
  }

  /** The mean gradient [N] (caller disposes), then resets. Throws when nothing was added. */
  take(): tf.Tensor1D {
    if (this.sum === null || this.count === 0) throw new Error('no gradients accumulated');
    const sum = this.sum;
    const count = this.count;
    const mean = tf.tidy(() => (count === 1 ? tf.clone(sum) : tf.div(sum, count))) as tf.Tensor1D;
    this.reset();
    return mean;
  }

  /** Drops what was accumulated (e.g. after a non-finite micro-batch). */
  reset(): void {
    this.sum?.dispose();
    this.sum = null;
    this.count = 0;
  }

  dispose(): void {
    this.reset();
  }
}
