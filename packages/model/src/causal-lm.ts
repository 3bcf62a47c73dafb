// BakaCausalLM: token embedding -> BakaNet -> final norm -> untied output projection.
//
// Shape legend: B batch, S sequence length, D dim_model, V n_vocab.
//
// Parameters are tf.Variables named (in `parameters`) exactly as upstream's PyTorch state_dict
// and stored in PyTorch layout (Linear weight [out, in]; matmuls use transposeB).
// `model.layers.{i}.attn.rot.freqs` is a non-trainable variable kept for checkpoints; the
// rotary tables come from the same frequencies.
import { totalmem } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { RotaryEmbedding } from '@baka/rope';
import { AttentionMasks } from './attention-mask';
import type { AttentionContext } from './attention';
import { bakaNet } from './baka-net';
import type { PreparedLayer } from './baka-net';
import type { BakaConfig } from './config';
import { dimHead, makeConfig } from './config';
import { NORM_KINDS } from './kinds/norms';
import { ModelError } from './errors';
import { generate, generateSamples } from './generation';
import type { GenerateOptions, GenerateSamplesOptions } from './generation';
import { projectedCrossEntropy } from './head-loss';
import { shiftLabels } from './loss';
import { checkFitsInMemory } from './memory-estimate';
import { initialValues, layerKindOf, layerShape, parameterSpecs } from './parameters';
import { type FloatDtype, roundToDtype, unitInLastPlace } from './safetensors';
import type { SequenceState } from './sequence-state';

export interface ForwardOptions {
  /** The sequence state of an earlier call (continues the sequence); null or absent = start fresh. */
  memory?: SequenceState | null;
  /**
   * With `is_pause_pos_random`: which draws of the random pause layout this call uses (default
   * 0, so a call without it is deterministic); the trainer gives every window its own.
   */
  layoutSeed?: number;
}

export interface ForwardResult {
  logits: tf.Tensor3D; // [B, S, V]
  /** The sequence state after the last chunk (tensors in the caller's scope, like logits); null when the kind carries nothing. */
  memory: SequenceState | null;
}

export interface LossResult {
  loss: tf.Scalar;
  /** The sequence state after the last chunk (tensors in the caller's scope); null when the kind carries nothing. */
  memory: SequenceState | null;
}

/**
 * A variable holding a copy of `values` (the temporary tensors are freed). The reshape (to the
 * same shape) makes a backend that copies values in on first use, as tfjs-node does, copy them
 * now, while loading: otherwise the first forward call (a prompt's first token) pays for copying
 * every weight, the 50277-row embedding and output matrices among them.
 */
function newVariable(values: Float32Array, shape: number[], trainable: boolean): tf.Variable {
  const initial = tf.tensor(values, shape, 'float32');
  const copied = tf.reshape(initial, shape);
  const variable = tf.variable(copied, trainable);
  tf.dispose([initial, copied]);
  return variable;
}

export class BakaCausalLM {
  readonly config: BakaConfig;
  /** Every state_dict tensor by upstream name, in state_dict order. */
  readonly parameters: ReadonlyMap<string, tf.Variable>;
  /** The rotary tables of standard layers (upstream's inverse frequencies). */
  readonly rotary: RotaryEmbedding;
  /** Rotary tables by frequency scale (a layer kind's rotaryScale), the unscaled one included. */
  readonly #rotaryByScale: Map<number, RotaryEmbedding>;
  readonly #masks = new AttentionMasks();
  #disposed = false;

  private constructor(config: BakaConfig, parameters: Map<string, tf.Variable>) {
    this.config = config;
    this.parameters = parameters;
    const rotary = (frequencyScale: number) =>
      new RotaryEmbedding({
        dim: dimHead(config),
        theta: config.rope_theta,
        layout: config.rotary_layout,
        frequencyScale,
        precision: config.rotary_precision,
      });
    this.rotary = rotary(1);
    this.#rotaryByScale = new Map([[1, this.rotary]]);
    for (let layer = 0; layer < config.n_layers; layer++) {
      const scale = layerKindOf(config, layer).rotaryScale(config);
      if (!this.#rotaryByScale.has(scale)) this.#rotaryByScale.set(scale, rotary(scale));
    }
  }

  /** A freshly initialised model (PyTorch's default initialisers), deterministic for a seed. */
  static create(
    config: BakaConfig,
    options: {
      seed?: number;
      /** Bytes the model may need to train (default: os.totalmem()); larger is refused. */
      memoryLimit?: number;
    } = {},
  ): BakaCausalLM {
    const checked = makeConfig(config);
    checkFitsInMemory(checked, options.memoryLimit ?? totalmem());
    const seed = options.seed ?? 0;
    const parameters = new Map<string, tf.Variable>();
    parameterSpecs(checked).forEach((spec, index) => {
      const values = initialValues(checked, spec, seed, index);
      parameters.set(spec.name, newVariable(values, spec.shape, spec.trainable));
    });
    return new BakaCausalLM(checked, parameters);
  }

  /**
   * A model from named float32 values (e.g. a safetensors file). Every state_dict name must be
   * present with its shape; `source` names the origin in errors. `dtype` is the precision the
   * values were stored at (default F32): the rotary frequencies are checked at it, i.e. against
   * the expected inverse frequencies rounded to F16/BF16 (within one unit in the last place).
   * Each tensor's `data` is read once for its variable (and once more for a rotary check), so
   * a source whose `data` is a getter reading on demand keeps one host copy alive at a time.
   */
  static fromTensors(
    config: BakaConfig,
    tensors: ReadonlyMap<string, { shape: number[]; data: Float32Array; dtype?: FloatDtype }>,
    source = 'tensors',
  ): BakaCausalLM {
    const checked = makeConfig(config);
    const specs = parameterSpecs(checked);
    const expected = new Set(specs.map((spec) => spec.name));
    const unexpected = [...tensors.keys()].filter((name) => !expected.has(name));
    if (unexpected.length > 0) {
      throw new ModelError(
        `${source}: unexpected tensors for this config: ${unexpected.slice(0, 5).join(', ')}`,
      );
    }
    for (const spec of specs) {
      const tensor = tensors.get(spec.name);
      if (tensor === undefined) throw new ModelError(`${source}: missing tensor '${spec.name}'`);
      if (
        tensor.shape.length !== spec.shape.length ||
        tensor.shape.some((size, axis) => size !== spec.shape[axis])
      ) {
        throw new ModelError(
          `${source}: tensor '${spec.name}' has shape [${tensor.shape.join(', ')}], the config needs [${spec.shape.join(', ')}]`,
        );
      }
      const { init } = spec;
      if (init.kind === 'rotary') {
        const reference = initialValues(checked, spec, 0, 0);
        const dtype = tensor.dtype ?? 'F32';
        const halfPrecision = dtype === 'F16' || dtype === 'BF16';
        tensor.data.forEach((value, index) => {
          const exact = reference[index] as number;
          const want = halfPrecision ? roundToDtype(exact, dtype) : exact;
          const tolerance = halfPrecision ? unitInLastPlace(want, dtype) : 1e-6 * Math.abs(want);
          if (!(Math.abs(value - want) <= tolerance)) {
            throw new ModelError(
              `${source}: '${spec.name}' does not match the inverse frequencies of rope_theta ${checked.rope_theta} and dim_head ${dimHead(checked)}${init.scale === undefined ? '' : ` times thin_rotary_scale ${init.scale}`} ` +
                `at ${dtype} precision (index ${index}: stored ${value}, expected ${want})`,
            );
          }
        });
      }
    }
    const parameters = new Map<string, tf.Variable>();
    for (const spec of specs) {
      const tensor = tensors.get(spec.name) as { shape: number[]; data: Float32Array };
      parameters.set(spec.name, newVariable(tensor.data, spec.shape, spec.trainable));
    }
    return new BakaCausalLM(checked, parameters);
  }

  /** The trainable variables (everything except the rotary frequencies), in state_dict order. */
  trainableParameters(): Map<string, tf.Variable> {
    return new Map([...this.parameters].filter(([, variable]) => variable.trainable));
  }

  #get(name: string): tf.Variable {
    const variable = this.parameters.get(name);
    if (variable === undefined) throw new Error(`BakaCausalLM: no parameter '${name}'`);
    return variable;
  }

  /**
   * Layer i ready to run: its kind's forward and weights prepared by the kind (stacked matrices
   * are new tensors in the caller's scope; generation keeps them for its lifetime).
   */
  prepareLayer(index: number): PreparedLayer {
    const kind = layerKindOf(this.config, index);
    const rotary = this.#rotaryByScale.get(kind.rotaryScale(this.config)) as RotaryEmbedding;
    const get = (suffix: string): tf.Tensor => this.#get(`model.layers.${index}.${suffix}`);
    return {
      forward: kind.forward,
      weights: kind.prepare(get, layerShape(this.config, index), rotary),
    };
  }

  /** What attention needs besides weights (rotary tables and masks are cached on the model). */
  attentionContext(): AttentionContext {
    return {
      nHeads: this.config.n_heads,
      positionPolicy: this.config.position_policy,
      rotary: this.rotary,
      masks: this.#masks,
      keyBucket: 1,
    };
  }

  #checkIds(inputIds: tf.Tensor2D, what: string): void {
    this.#checkAlive(what);
    if (inputIds.rank !== 2) {
      throw new ModelError(
        `${what}: input ids must be [batch, length], got [${inputIds.shape.join(', ')}]`,
      );
    }
    if (inputIds.shape[1] < 1) throw new ModelError(`${what}: input ids have length 0`);
  }

  /** Embeds ids [B, S] (int32) -> [B, S, D]. */
  embed(inputIds: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [batch, length] = inputIds.shape;
      const int32 = inputIds.dtype === 'int32' ? inputIds : tf.cast(inputIds, 'int32');
      const ids = tf.reshape(int32, [batch * length]); // [B*S]
      const rows = tf.gather(this.#get('vocab_in.weight'), ids); // [B*S, D]
      return tf.reshape(rows, [batch, length, this.config.dim_model]) as tf.Tensor3D; // [B, S, D]
    });
  }

  /** The final norm (the config's norm kind): hidden [N, D] -> [N, D]. */
  finalNorm(hidden: tf.Tensor2D): tf.Tensor2D {
    const norm = NORM_KINDS[this.config.norm];
    const parameters = norm.parameters.map(
      ({ suffix }) => this.#get(`norm_out.${suffix}`) as tf.Tensor as tf.Tensor1D,
    );
    return norm.apply(hidden, parameters); // [N, D]
  }

  /** The output projection: final-normalised hidden [N, D] -> logits [N, V]. */
  project(normed: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(
      normed,
      this.#get('vocab_out.weight') as tf.Tensor as tf.Tensor2D,
      false,
      true,
    ); // [N, V]
  }

  /** Final norm + output projection: hidden [N, D] -> logits [N, V]. */
  head(hidden: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => this.project(this.finalNorm(hidden)));
  }

  /**
   * The final-normalised hidden state [B*S, D] for ids [B, S] (chunked by n_ctx, XL memory), and
   * the memory after it; both tensors are in the caller's scope.
   */
  #normedHidden(
    inputIds: tf.Tensor2D,
    options: ForwardOptions,
  ): { normed: tf.Tensor2D; memory: SequenceState | null } {
    const [batch, length] = inputIds.shape;
    let memory: SequenceState | null = null;
    const normed = tf.tidy(() => {
      const layers = Array.from({ length: this.config.n_layers }, (_, index) =>
        this.prepareLayer(index),
      );
      const net = bakaNet(
        this.embed(inputIds),
        layers,
        this.config,
        this.attentionContext(),
        options.memory ?? null,
        this.parameters,
        options.layoutSeed,
      );
      memory = net.memory;
      const result = this.finalNorm(
        tf.reshape(net.hidden, [batch * length, this.config.dim_model]), // [B*S, D]
      ); // [B*S, D]
      // the state's tensors leave this scope with the result
      return [result, ...((memory as SequenceState | null)?.tensors() ?? [])];
    })[0] as tf.Tensor2D;
    return { normed, memory };
  }

  /** Logits [B, S, V] for ids [B, S]; the sequence is processed in chunks of n_ctx. */
  forward(inputIds: tf.Tensor2D, options: ForwardOptions = {}): ForwardResult {
    this.#checkIds(inputIds, 'forward');
    const [batch, length] = inputIds.shape;
    const { normed, memory } = this.#normedHidden(inputIds, options);
    const logits = tf.tidy(() => {
      const flat = this.project(normed); // [B*S, V]
      return tf.reshape(flat, [batch, length, this.config.n_vocab]) as tf.Tensor3D; // [B, S, V]
    });
    normed.dispose();
    return { logits, memory };
  }

  /**
   * Upstream's loss for ids [B, S] and labels [B, S] (-100 = ignored), with the memory out. The
   * output projection and the cross-entropy run in row blocks (projectedCrossEntropy), so the
   * [B*S, V] logits never exist at once.
   */
  loss(inputIds: tf.Tensor2D, labels: tf.Tensor2D, options: ForwardOptions = {}): LossResult {
    this.#checkIds(inputIds, 'loss');
    const [batch, length] = inputIds.shape;
    if (labels.shape[0] !== batch || labels.shape[1] !== length) {
      throw new ModelError(
        `loss: labels [${labels.shape.join(', ')}] do not match input ids [${inputIds.shape.join(', ')}]`,
      );
    }
    const { normed, memory } = this.#normedHidden(inputIds, options);
    const loss = tf.tidy(() => {
      const targets = tf.reshape(shiftLabels(labels), [batch * length]) as tf.Tensor1D; // [B*S]
      return projectedCrossEntropy(
        normed,
        this.#get('vocab_out.weight') as tf.Tensor as tf.Tensor2D,
        targets,
      );
    });
    normed.dispose();
    return { loss, memory };
  }

  /** Sampled continuation of `prompt` (token ids); see GenerateOptions. */
  generate(prompt: readonly number[], options: GenerateOptions): number[] {
    this.#checkAlive('generate');
    return generate(this, prompt, options);
  }

  /** `numSamples` continuations of `prompt` sampled side by side (see generateSamples). */
  generateSamples(prompt: readonly number[], options: GenerateSamplesOptions): number[][] {
    this.#checkAlive('generate');
    return generateSamples(this, prompt, options);
  }

  #checkAlive(what: string): void {
    if (this.#disposed) throw new ModelError(`BakaCausalLM.${what}: the model was disposed`);
  }

  /** Frees the variables, rotary tables and masks. */
  dispose(): void {
    if (this.#disposed) return;
    for (const variable of this.parameters.values()) variable.dispose();
    for (const rotary of this.#rotaryByScale.values()) rotary.dispose();
    this.#masks.dispose();
    this.#disposed = true;
  }
}
