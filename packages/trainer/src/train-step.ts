// One window's loss and gradients, and the optimizer step that follows. Pure helpers: the loop in
// train-loop.ts decides when to step, skip, save and stop.
//
// Shapes: B rows, T window length, N trainable elements (flat gradient).
import type { SequenceState } from '@baka/model';
import { type BakaCausalLM, mayBeUnusedParameters } from '@baka/model';
import * as tf from '@tensorflow/tfjs-core';
import type { AdamW } from './adamw';
import { clipCoefficient, ParameterLayout } from './flat-gradients';

/** The trainable parameters of a model (every Variable with trainable = true; not rotary freqs). */
export class Trainable {
  readonly layout: ParameterLayout;
  readonly variables: tf.Variable[];
  private readonly nameOfVariable: Map<string, string>;

  constructor(parameters: ReadonlyMap<string, tf.Variable>) {
    const list = [...parameters].filter(([, variable]) => variable.trainable);
    this.layout = new ParameterLayout(list);
    this.variables = list.map(([, variable]) => variable);
    this.nameOfVariable = new Map(list.map(([name, variable]) => [variable.name, name]));
  }

  /** Entries for the optimizer, in layout order. */
  entries(): [string, tf.Variable][] {
    return this.layout.slots.map((slot, i) => [slot.name, this.variables[i]!]);
  }

  /** tf.variableGrads keys gradients by Variable.name; re-key them by parameter name. */
  byParameterName(grads: tf.NamedTensorMap): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [variableName, gradient] of Object.entries(grads)) {
      const name = this.nameOfVariable.get(variableName);
      if (name !== undefined) out.set(name, gradient);
    }
    return out;
  }
}

export interface WindowBatch {
  ids: Int32Array;
  labels: Int32Array;
  rows: number;
  length: number;
}

export interface WindowGradients {
  /** Mean loss of the window (a host number; NaN/Inf when the step must be skipped). */
  loss: number;
  /** Flat gradient [N]; the caller disposes it. */
  gradients: tf.Tensor1D;
  /** The memory after the window, detached, when `keepMemory` was asked for (caller disposes). */
  memory: SequenceState | null;
}

/**
 * Loss and gradients of one window. The model runs the window in chunks of n_ctx with XL memory
 * and the gradient flows through that memory inside the window. `memory` (optional) is a detached
 * memory carried in from the previous window; with `keepMemory` the window's final memory comes
 * back detached, for the next window.
 */
export function windowGradients(
  model: BakaCausalLM,
  trainable: Trainable,
  batch: WindowBatch,
  options: { memory?: SequenceState | null; keepMemory?: boolean; layoutSeed?: number } = {},
): WindowGradients {
  let kept: SequenceState | null = null;
  const { value, grads } = tf.tidy(() => {
    const ids = tf.tensor2d(batch.ids, [batch.rows, batch.length], 'int32'); // [B, T]
    const labels = tf.tensor2d(batch.labels, [batch.rows, batch.length], 'int32'); // [B, T]
    return tf.variableGrads(() => {
      const out = model.loss(ids, labels, {
        memory: options.memory ?? null,
        ...(options.layoutSeed === undefined ? {} : { layoutSeed: options.layoutSeed }),
      });
      if (options.keepMemory && out.memory) kept = out.memory.detach();
      return out.loss;
    }, trainable.variables);
  });
  const named = trainable.byParameterName(grads);
  // a window that continues carried state need not use a kind's initial tensors (RMT's tokens,
  // recurrent layers' initial states)
  const gradients = trainable.layout.flatten(named, {
    mayBeUnused: mayBeUnusedParameters(model.config),
  });
  const loss = value.dataSync()[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  return { loss, gradients, memory: kept };
}

export interface StepResult {
  /** Global gradient norm before clipping (NaN/Inf when the step was skipped). */
  gradNorm: number;
  /** False when the gradient norm was not finite: the optimizer was not stepped. */
  applied: boolean;
}

/**
 * Clips the flat gradient by global norm (torch clip_grad_norm_ semantics) and takes one AdamW
 * step at `learningRate`, unless the norm is NaN/Inf, in which case nothing changes.
 */
export function clipAndStep(
  optimizer: AdamW,
  gradients: tf.Tensor1D,
  options: { learningRate: number; clipNorm: number | null },
): StepResult {
  if (options.clipNorm === null) {
    const norm = tf.tidy(() => tf.sqrt(tf.sum(tf.square(gradients))));
    const gradNorm = norm.dataSync()[0]!;
    norm.dispose();
    if (!Number.isFinite(gradNorm)) return { gradNorm, applied: false };
    optimizer.step(gradients, options.learningRate);
    return { gradNorm, applied: true };
  }
  // the clip coefficient is applied parameter by parameter inside the step (the same products
  // as clipByGlobalNorm's, without a clipped copy of the whole flat gradient)
  const { clipNorm } = options;
  const norms = tf.tidy(() => {
    const { totalNorm, coefficient } = clipCoefficient(gradients, clipNorm);
    return tf.stack([totalNorm, coefficient]);
  });
  const [gradNorm, coefficient] = norms.dataSync() as Float32Array as unknown as [number, number];
  norms.dispose();
  if (Number.isFinite(gradNorm)) optimizer.step(gradients, options.learningRate, coefficient);
  return { gradNorm, applied: Number.isFinite(gradNorm) };
}
