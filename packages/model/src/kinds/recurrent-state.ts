// The sequence-state side of block-recurrent layers (kinds/block-recurrent.ts), wrapped around the
// configured kind (xl, none, RMT): every recurrent layer's state [B, S, D] goes from chunk to
// chunk beside what the wrapped kind carries. A call without a previous state starts every
// recurrent layer from its learned `recurrent.initial_state`; chunk c reads the state written at
// chunk c - 1 (never the initial state again). Inside a call the gradient flows through the state
// from chunk to chunk; `detach()` cuts it at a window boundary, `selectRows()` drops rows that
// ended, `save()` writes it into memory.safetensors. In generation the state is updated only by
// the step that ends a chunk, and takes effect when the chunk ends, so the tokens of a chunk all
// read the previous chunk's state. docs/architecture.md section 1.9.
//
// Shape legend: B batch rows, S state vectors, D dim_model.
import * as tf from '@tensorflow/tfjs-core';
import type { LayerStateIn } from '../baka-net';
import type { BakaConfig } from '../config';
import { ModelError } from '../errors';
import { stopGradient } from '../memory';
import type {
  ChunkPass,
  IncrementalState,
  SavedState,
  SequenceState,
  SequenceStateKind,
} from '../sequence-state';

/** memory.safetensors metadata `format` of a recurrent state. */
export const RECURRENT_STATE_FORMAT = 'baka-recurrent-state';
const INNER = 'inner.';

/** The parameter a recurrent layer starts a sequence from. */
export function initialStateName(layer: number): string {
  return `model.layers.${layer}.recurrent.initial_state`;
}

/** Every recurrent layer's state [B, S, D] and the wrapped kind's state. */
export class BlockRecurrentState implements SequenceState {
  readonly kind: string;
  readonly inner: SequenceState | null;
  /** By layer index. */
  readonly states: ReadonlyMap<number, tf.Tensor3D>;
  readonly #owned: boolean;

  constructor(
    kind: string,
    inner: SequenceState | null,
    states: ReadonlyMap<number, tf.Tensor3D>,
    owned: boolean,
  ) {
    this.kind = kind;
    this.inner = inner;
    this.states = states;
    this.#owned = owned;
  }

  get batchSize(): number {
    return ([...this.states.values()][0] as tf.Tensor3D).shape[0];
  }

  get end(): number {
    return this.inner?.end ?? 0;
  }

  tensors(): tf.Tensor[] {
    return [...this.states.values(), ...(this.inner?.tensors() ?? [])];
  }

  #derive(
    inner: SequenceState | null,
    change: (state: tf.Tensor3D) => tf.Tensor3D,
  ): BlockRecurrentState {
    const states = new Map(
      [...this.states].map(([layer, state]) => [layer, tf.keep(tf.tidy(() => change(state)))]),
    );
    return new BlockRecurrentState(this.kind, inner, states, true);
  }

  detach(): BlockRecurrentState {
    return this.#derive(this.inner?.detach() ?? null, (state) => stopGradient(state));
  }

  selectRows(rows: readonly number[]): BlockRecurrentState {
    return this.#derive(this.inner?.selectRows(rows) ?? null, (state) =>
      tf.gather(state, tf.tensor1d(Int32Array.from(rows), 'int32'), 0),
    );
  }

  dispose(): void {
    this.inner?.dispose();
    if (this.#owned) for (const state of this.states.values()) state.dispose();
  }

  // tensors `recurrent.layers.{i}.state` [B, S, D] and the wrapped kind's under `inner.`;
  // metadata: the kind and the recurrent layers (JSON)
  save(): SavedState {
    const tensors: SavedState['tensors'] = new Map();
    for (const [layer, state] of this.states) {
      tensors.set(`recurrent.layers.${layer}.state`, {
        shape: [...state.shape],
        data: state.dataSync() as Float32Array,
      });
    }
    const metadata: SavedState['metadata'] = {
      format: RECURRENT_STATE_FORMAT,
      kind: this.kind,
      layers: JSON.stringify([...this.states.keys()]),
    };
    if (this.inner !== null) {
      const inner = this.inner.save();
      for (const [name, tensor] of inner.tensors) tensors.set(`${INNER}${name}`, tensor);
      for (const [key, value] of Object.entries(inner.metadata)) metadata[`${INNER}${key}`] = value;
    }
    return { tensors, metadata };
  }
}

/** Reads a recurrent state; `loadInner` reads the wrapped kind's part. Null when not this format. */
export function loadRecurrentState(
  saved: SavedState,
  source: string,
  loadInner: (saved: SavedState, source: string) => SequenceState,
): BlockRecurrentState | null {
  if (saved.metadata.format !== RECURRENT_STATE_FORMAT) return null;
  let layers: unknown;
  try {
    layers = JSON.parse(saved.metadata.layers ?? '');
  } catch {
    layers = null;
  }
  if (!Array.isArray(layers) || layers.length === 0 || !layers.every(Number.isInteger)) {
    throw new ModelError(`${source}: not a recurrent state file (metadata 'layers')`);
  }
  const states = new Map<number, tf.Tensor3D>();
  for (const layer of layers as number[]) {
    const entry = saved.tensors.get(`recurrent.layers.${layer}.state`);
    if (entry === undefined || entry.shape.length !== 3) {
      throw new ModelError(`${source}: no tensor recurrent.layers.${layer}.state [B, S, D]`);
    }
    states.set(layer, tf.tensor3d(entry.data, entry.shape as [number, number, number]));
  }
  let inner: SequenceState | null = null;
  const innerFormat = saved.metadata[`${INNER}format`];
  if (innerFormat !== undefined) {
    const tensors: SavedState['tensors'] = new Map();
    for (const [name, tensor] of saved.tensors) {
      if (name.startsWith(INNER)) tensors.set(name.slice(INNER.length), tensor);
    }
    const metadata = { format: innerFormat } as SavedState['metadata'];
    for (const [key, value] of Object.entries(saved.metadata)) {
      if (key.startsWith(INNER)) metadata[key.slice(INNER.length)] = value;
    }
    inner = loadInner({ tensors, metadata }, source);
  }
  return new BlockRecurrentState(saved.metadata.kind ?? 'recurrent', inner, states, true);
}

/** Each recurrent layer's initial state broadcast to `batch` rows [B, S, D] (caller's scope). */
function initialStates(
  config: BakaConfig,
  batch: number,
  parameters: ReadonlyMap<string, tf.Tensor> | undefined,
): Map<number, tf.Tensor3D> {
  return new Map(
    config.recurrent_layers.map((layer) => {
      const initial = parameters?.get(initialStateName(layer)) as tf.Tensor2D | undefined;
      if (initial === undefined) {
        throw new ModelError(`recurrent layers: the model has no ${initialStateName(layer)}`);
      }
      const [S, D] = initial.shape;
      return [layer, tf.broadcastTo(tf.reshape(initial, [1, S, D]), [batch, S, D]) as tf.Tensor3D];
    }),
  );
}

/** `view` with layer `layer`'s state added, when the layer is recurrent. */
function withState(
  view: LayerStateIn,
  state: tf.Tensor3D | undefined,
  update: boolean,
): LayerStateIn {
  return state === undefined ? view : { ...view, blockState: { state, update } };
}

/** The kind `inner` with block-recurrent states in the config's recurrent layers. */
export function recurrentKind(name: string, inner: SequenceStateKind): SequenceStateKind {
  return {
    description: `block-recurrent states in the recurrent layers, with ${inner.description}`,
    evaluation: 'whole-article',
    describe: (config) =>
      `recurrent[${config.recurrent_layers.join(',')}]x${config.n_state_vectors}/${config.state_gate}+${inner.describe(config)}`,
    attendsToPast: inner.attendsToPast,
    pass(config, previous, batch, parameters): ChunkPass {
      if (previous !== null && !(previous instanceof BlockRecurrentState)) {
        throw new ModelError(
          `memory: a '${previous.kind}' state cannot continue a recurrent model`,
        );
      }
      if (previous !== null && previous.batchSize !== batch) {
        throw new ModelError(`memory has ${previous.batchSize} rows but the input has ${batch}`);
      }
      const innerPass = inner.pass(config, previous?.inner ?? null, batch, parameters);
      // the state each chunk reads: the previous call's, else the initial state; then each write
      let states: Map<number, tf.Tensor3D> =
        previous === null ? initialStates(config, batch, parameters) : new Map(previous.states);
      return {
        start: innerPass.start,
        ...(innerPass.enter ? { enter: (x: tf.Tensor3D) => innerPass.enter!(x) } : {}),
        views: (chunkStart) =>
          innerPass
            .views(chunkStart)
            .map((view, layer) => withState(view, states.get(layer), true)),
        write: (outs, chunkStart) => {
          innerPass.write(outs, chunkStart);
          const next = new Map<number, tf.Tensor3D>();
          for (const layer of states.keys()) {
            const written = outs[layer]?.blockState;
            if (written === undefined) {
              throw new Error(`recurrent state: layer ${layer} wrote no state`);
            }
            next.set(layer, written);
          }
          states = next;
        },
        ...(innerPass.leave ? { leave: (y: tf.Tensor3D) => innerPass.leave!(y) } : {}),
        result: () => new BlockRecurrentState(name, innerPass.result(), states, false),
      };
    },
    incremental(config, parameters): IncrementalState {
      const chunk = inner.incremental(config, parameters);
      const states = new Map(
        config.recurrent_layers.map((layer) => [
          layer,
          tf.tidy(() => initialStates(config, 1, parameters).get(layer) as tf.Tensor3D),
        ]),
      );
      const pending = new Map<number, tf.Tensor3D>(); // written by the step that ends the chunk
      const state: IncrementalState = {
        get chunkSlots() {
          return chunk.chunkSlots;
        },
        views: (open, endsChunk) =>
          chunk
            .views(open)
            .map((view, layer) => withState(view, states.get(layer), endsChunk === true)),
        append: (layer, out) => {
          chunk.append(layer, out);
          if (out.blockState !== undefined) {
            pending.get(layer)?.dispose();
            pending.set(layer, tf.keep(out.blockState));
          }
        },
        rewind: (count) => chunk.rewind(count),
        selectRows: (rows) => {
          chunk.selectRows(rows);
          for (const held of [states, pending]) {
            for (const [layer, tensor] of held) {
              const picked = tf.tidy(() =>
                tf.gather(tensor, tf.tensor1d(Int32Array.from(rows), 'int32'), 0),
              ) as tf.Tensor3D;
              tensor.dispose();
              held.set(layer, picked);
            }
          }
        },
        // the new states take effect only now: every token of the chunk read the previous ones
        endChunk: () => {
          if (pending.size !== states.size) {
            throw new Error('recurrent state: a chunk ended without its state update');
          }
          chunk.endChunk();
          for (const [layer, next] of pending) {
            states.get(layer)?.dispose();
            states.set(layer, next);
          }
          pending.clear();
        },
        dispose: () => {
          tf.dispose([...states.values(), ...pending.values()]);
          chunk.dispose();
        },
      };
      if (chunk.chunkPrefix) state.chunkPrefix = () => chunk.chunkPrefix!();
      if (chunk.chunkSuffix) state.chunkSuffix = () => chunk.chunkSuffix!();
      if (chunk.takeSuffixOutput) state.takeSuffixOutput = (y) => chunk.takeSuffixOutput!(y);
      return state;
    },
    load: () => null,
  };
}

/** Parameters a call that continues a carried state does not use (no gradient for them). */
export function recurrentInitialStates(config: { recurrent_layers: readonly number[] }): string[] {
  return config.recurrent_layers.map(initialStateName);
}
