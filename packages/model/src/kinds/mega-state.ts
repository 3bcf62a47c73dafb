// The sequence state of a model with Mega layers (kinds/mega.ts): the configured kind (xl or none)
// wrapped with every Mega layer's EMA state [B, D, M], which flows from chunk to chunk (not
// detached inside a call), from call to call and, detached, from window to window; rows that end
// are dropped like the XL memory's. Generation updates it per step, so a token costs O(1) EMA work
// whatever its position. docs/architecture.md section 1.6.
//
// Shape legend: B batch rows, D dim_model, M ema_dim.
import * as tf from '@tensorflow/tfjs-core';
import type { LayerStateIn, LayerStateOut } from '../baka-net';
import { ModelError } from '../errors';
import { stopGradient } from '../memory';
import type {
  ChunkPass,
  IncrementalState,
  SavedState,
  SequenceState,
  SequenceStateKind,
} from '../sequence-state';

/** memory.safetensors metadata `format` of a Mega state. */
export const MEGA_FORMAT = 'baka-mega-memory';
const INNER = 'inner.';

/** Per layer: a Mega layer's EMA state (null before its first chunk); undefined for other layers. */
type EmaStates = (tf.Tensor3D | null | undefined)[];

/** Whether layer `layer` is a Mega layer. */
function isMega(config: { layer_kinds: readonly string[] }, layer: number): boolean {
  return config.layer_kinds[layer] === 'mega';
}

/** The EMA states [B, D, M] of the Mega layers and the wrapped kind's state. */
export class MegaState implements SequenceState {
  readonly kind: string;
  readonly inner: SequenceState | null;
  readonly ema: EmaStates;
  readonly end: number;
  readonly #owned: boolean;

  constructor(
    kind: string,
    inner: SequenceState | null,
    ema: EmaStates,
    end: number,
    owned: boolean,
  ) {
    this.kind = kind;
    this.inner = inner;
    this.ema = ema;
    this.end = end;
    this.#owned = owned;
  }

  get batchSize(): number {
    const first = this.ema.find((state) => state);
    return first ? first.shape[0] : (this.inner?.batchSize ?? 0);
  }

  #own(): tf.Tensor3D[] {
    return this.ema.filter((state): state is tf.Tensor3D => Boolean(state));
  }

  tensors(): tf.Tensor[] {
    return [...this.#own(), ...(this.inner?.tensors() ?? [])];
  }

  #map(inner: SequenceState | null, each: (state: tf.Tensor3D) => tf.Tensor3D): MegaState {
    const ema = this.ema.map((state) => (state ? tf.keep(tf.tidy(() => each(state))) : state));
    return new MegaState(this.kind, inner, ema, this.end, true);
  }

  detach(): MegaState {
    return this.#map(this.inner?.detach() ?? null, (state) => stopGradient(state));
  }

  selectRows(rows: readonly number[]): MegaState {
    return this.#map(this.inner?.selectRows(rows) ?? null, (state) =>
      tf.gather(state, tf.tensor1d(Int32Array.from(rows), 'int32'), 0),
    );
  }

  dispose(): void {
    this.inner?.dispose();
    if (this.#owned) tf.dispose(this.#own());
  }

  // tensors `ema.{i}` [B, D, M] of the Mega layers that ran; metadata n_layers, end, kind and
  // the wrapped state's under `inner.`
  save(): SavedState {
    const tensors: SavedState['tensors'] = new Map();
    this.ema.forEach((state, layer) => {
      if (state) {
        tensors.set(`ema.${layer}`, {
          shape: [...state.shape],
          data: state.dataSync() as Float32Array,
        });
      }
    });
    const metadata: SavedState['metadata'] = {
      format: MEGA_FORMAT,
      kind: this.kind,
      n_layers: String(this.ema.length),
      mega_layers: JSON.stringify(
        this.ema.flatMap((state, layer) => (state === undefined ? [] : [layer])),
      ),
      end: String(this.end),
    };
    if (this.inner !== null) {
      const inner = this.inner.save();
      for (const [name, tensor] of inner.tensors) tensors.set(`${INNER}${name}`, tensor);
      for (const [key, value] of Object.entries(inner.metadata)) metadata[`${INNER}${key}`] = value;
    }
    return { tensors, metadata };
  }
}

/** Reads a Mega state; `loadInner` reads the wrapped kind's part. Null when not Mega's format. */
export function loadMega(
  saved: SavedState,
  source: string,
  loadInner: (saved: SavedState, source: string) => SequenceState,
): MegaState | null {
  const { metadata } = saved;
  if (metadata.format !== MEGA_FORMAT) return null;
  const nLayers = Number(metadata.n_layers);
  const end = Number(metadata.end);
  let megaLayers: unknown;
  try {
    megaLayers = JSON.parse(metadata.mega_layers ?? '');
  } catch {
    megaLayers = null;
  }
  if (!Number.isInteger(nLayers) || !Number.isInteger(end) || !Array.isArray(megaLayers)) {
    throw new ModelError(`${source}: not a Mega state file (metadata n_layers/end/mega_layers)`);
  }
  const ema: EmaStates = Array.from({ length: nLayers }, (_, layer) => {
    if (!megaLayers.includes(layer)) return undefined;
    const entry = saved.tensors.get(`ema.${layer}`);
    if (entry === undefined) return null;
    if (entry.shape.length !== 3) {
      throw new ModelError(
        `${source}: ema.${layer} has shape [${entry.shape}], expected [B, D, M]`,
      );
    }
    return tf.tensor3d(entry.data, entry.shape as [number, number, number]);
  });
  const innerFormat = metadata[`${INNER}format`];
  let inner: SequenceState | null = null;
  if (innerFormat !== undefined) {
    const tensors: SavedState['tensors'] = new Map();
    for (const [name, tensor] of saved.tensors) {
      if (name.startsWith(INNER)) tensors.set(name.slice(INNER.length), tensor);
    }
    const innerMetadata = { format: innerFormat } as SavedState['metadata'];
    for (const [key, value] of Object.entries(metadata)) {
      if (key.startsWith(INNER)) innerMetadata[key.slice(INNER.length)] = value;
    }
    inner = loadInner({ tensors, metadata: innerMetadata }, source);
  }
  return new MegaState(metadata.kind ?? 'mega', inner, ema, end, true);
}

/** The views with each Mega layer's EMA state added. */
function withEma(views: LayerStateIn[], ema: EmaStates): LayerStateIn[] {
  return views.map((view, layer) => {
    const state = ema[layer];
    return state === undefined ? view : { ...view, ema: state };
  });
}

/** The kind `inner` with the Mega layers' EMA states carried beside it. */
export function megaKind(name: string, inner: SequenceStateKind): SequenceStateKind {
  return {
    description: `Mega EMA states carried across chunks, with ${inner.description}`,
    evaluation: 'whole-article',
    describe: (config) => `mega-ema${config.ema_dim}+${inner.describe(config)}`,
    attendsToPast: inner.attendsToPast,
    pass(config, previous, batch, parameters): ChunkPass {
      if (previous !== null && !(previous instanceof MegaState)) {
        throw new ModelError(`memory: a '${previous.kind}' state cannot continue a Mega model`);
      }
      if (previous !== null && previous.ema.length !== config.n_layers) {
        throw new ModelError(
          `memory has ${previous.ema.length} layers but the model has ${config.n_layers}`,
        );
      }
      if (previous !== null && previous.batchSize !== batch) {
        throw new ModelError(`memory has ${previous.batchSize} rows but the input has ${batch}`);
      }
      const innerPass = inner.pass(config, previous?.inner ?? null, batch, parameters);
      const ema: EmaStates = Array.from({ length: config.n_layers }, (_, layer) =>
        isMega(config, layer) ? (previous?.ema[layer] ?? null) : undefined,
      );
      let end = previous?.end ?? innerPass.start;
      let ran = false;
      return {
        start: innerPass.start,
        views: (chunkStart) => withEma(innerPass.views(chunkStart), ema),
        write: (outs, chunkStart) => {
          innerPass.write(outs, chunkStart);
          outs.forEach((out, layer) => {
            if (ema[layer] === undefined) return;
            if (!out.ema) throw new Error(`Mega layer ${layer} returned no EMA state`);
            ema[layer] = out.ema;
          });
          end = chunkStart + (outs[0]?.written.k.shape[2] ?? 0);
          ran = true;
        },
        result: () => (ran ? new MegaState(name, innerPass.result(), ema, end, false) : null),
      };
    },
    incremental(config, parameters): IncrementalState {
      const chunk = inner.incremental(config, parameters);
      // owned EMA states of the tokens fed so far
      const ema: EmaStates = Array.from({ length: config.n_layers }, (_, layer) =>
        isMega(config, layer) ? null : undefined,
      );
      return {
        get chunkSlots() {
          return chunk.chunkSlots;
        },
        views: (open) => withEma(chunk.views(open), ema),
        append: (layer: number, out: LayerStateOut) => {
          chunk.append(layer, out);
          if (ema[layer] === undefined) return;
          if (!out.ema) throw new Error(`Mega layer ${layer} returned no EMA state`);
          ema[layer]?.dispose();
          ema[layer] = tf.keep(tf.clone(out.ema));
        },
        rewind: (count) => {
          // the EMA cannot step back; configs with pauses (the only rewinds) are refused
          if (count > 0)
            throw new ModelError('Mega layers: generation cannot rewind the EMA state');
          chunk.rewind(count);
        },
        endChunk: () => chunk.endChunk(),
        dispose: () => {
          tf.dispose(ema.filter((state): state is tf.Tensor3D => Boolean(state)));
          chunk.dispose();
        },
      };
    },
    load: () => null,
  };
}

/** Whether `config` has Mega layers. */
export function usesMega(config: { layer_kinds: readonly string[] }): boolean {
  return config.layer_kinds.includes('mega');
}
