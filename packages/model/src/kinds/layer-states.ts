// Carried layer states: a sequence-state wrapper that hands the recurrent state a layer ended a
// chunk with (LayerStateOut.recurrent: a Mamba block's conv window and scan state, a Mega layer's
// EMA state) to the same layer at the next chunk (LayerStateIn.recurrent), and from one forward call to the next.
// It wraps whatever the config's memory is (xl, none, RMT around either): that part runs as it
// would alone. Selected by mamba_carry_state (without it every chunk starts Mamba blocks from
// zero, upstream 007) and by Mega layers, whose EMA always carries on (section 1.8). Inside a training window the gradient flows through the carried state
// from chunk to chunk; `detach()` cuts it at a window boundary, like the XL memory.
// docs/architecture.md section 1.6.
//
// Shape legend: B batch rows (every recurrent tensor has its rows first).
import * as tf from '@tensorflow/tfjs-core';
import type { LayerStateIn, RecurrentState } from '../baka-net';
import type { BakaConfig } from '../config';
import { ModelError } from '../errors';
import { stopGradient } from '../memory';
import { nestedSavedState, nestSavedState } from '../sequence-state';
import type { ChunkPass, SavedState, SequenceState, SequenceStateKind } from '../sequence-state';
import { hasMamba } from './mamba';
import { hasMega } from './mega';

/** memory.safetensors metadata `format` of carried layer states. */
export const LAYER_STATES_FORMAT = 'baka-layer-states';
const INNER = 'inner.';

/** Whether layer `layer` carries its recurrent state from chunk to chunk. */
export function carriesLayerState(config: BakaConfig, layer: number): boolean {
  return (config.mamba_carry_state && hasMamba(config, layer)) || hasMega(config, layer);
}

/** Whether any layer of `config` carries its recurrent state (the wrapper is in use). */
export function carriesLayerStates(config: BakaConfig): boolean {
  return (
    (config.mamba_carry_state && config.mamba_each_nth_layer > 0) ||
    config.layer_kinds.includes('mega')
  );
}

/** Per layer: its state after the last chunk (undefined for a layer that carries none). */
type LayerStates = readonly (RecurrentState | undefined)[];

function mapStates(
  layers: LayerStates,
  change: (tensor: tf.Tensor) => tf.Tensor,
): (RecurrentState | undefined)[] {
  return layers.map((state) =>
    state === undefined
      ? undefined
      : Object.fromEntries(Object.entries(state).map(([name, tensor]) => [name, change(tensor)])),
  );
}

/** The wrapped kind's state and every carrying layer's recurrent state. */
export class LayerStatesState implements SequenceState {
  readonly kind: string;
  readonly inner: SequenceState | null;
  readonly layers: LayerStates;
  readonly end: number;
  readonly batchSize: number;
  readonly #owned: boolean;

  constructor(
    kind: string,
    inner: SequenceState | null,
    layers: LayerStates,
    end: number,
    owned: boolean,
  ) {
    const first = layers.find((state) => state !== undefined);
    const tensor = first === undefined ? undefined : Object.values(first)[0];
    if (tensor === undefined) throw new ModelError('carried layer states: no layer carries one');
    this.kind = kind;
    this.inner = inner;
    this.layers = layers;
    this.end = end;
    this.batchSize = tensor.shape[0] as number;
    this.#owned = owned;
  }

  #own(): tf.Tensor[] {
    return this.layers.flatMap((state) => (state === undefined ? [] : Object.values(state)));
  }

  tensors(): tf.Tensor[] {
    return [...this.#own(), ...(this.inner?.tensors() ?? [])];
  }

  detach(): LayerStatesState {
    const layers = mapStates(this.layers, (tensor) => tf.keep(stopGradient(tensor)));
    return new LayerStatesState(this.kind, this.inner?.detach() ?? null, layers, this.end, true);
  }

  selectRows(rows: readonly number[]): LayerStatesState {
    const layers = tf.tidy(() => {
      const indices = tf.tensor1d(Int32Array.from(rows), 'int32');
      return mapStates(this.layers, (tensor) => tf.keep(tf.gather(tensor, indices, 0)));
    });
    return new LayerStatesState(
      this.kind,
      this.inner?.selectRows(rows) ?? null,
      layers,
      this.end,
      true,
    );
  }

  dispose(): void {
    this.inner?.dispose();
    if (this.#owned) tf.dispose(this.#own());
  }

  // tensors `layers.{i}.{name}` (e.g. layers.0.conv, layers.0.ssm); metadata kind, end, n_layers;
  // the wrapped state's under `inner.`
  save(): SavedState {
    const saved: SavedState = {
      tensors: new Map(),
      metadata: {
        format: LAYER_STATES_FORMAT,
        kind: this.kind,
        end: String(this.end),
        n_layers: String(this.layers.length),
      },
    };
    this.layers.forEach((state, layer) => {
      for (const [name, tensor] of Object.entries(state ?? {})) {
        saved.tensors.set(`layers.${layer}.${name}`, {
          shape: [...tensor.shape],
          data: tensor.dataSync() as Float32Array,
        });
      }
    });
    if (this.inner !== null) nestSavedState(this.inner.save(), INNER, saved);
    return saved;
  }
}

/** Reads carried layer states; `loadInner` reads the wrapped kind's part. Null when not their format. */
export function loadLayerStates(
  saved: SavedState,
  source: string,
  loadInner: (saved: SavedState, source: string) => SequenceState,
): LayerStatesState | null {
  if (saved.metadata.format !== LAYER_STATES_FORMAT) return null;
  const end = Number(saved.metadata.end);
  const nLayers = Number(saved.metadata.n_layers);
  if (!Number.isInteger(end) || !Number.isInteger(nLayers) || nLayers < 1) {
    throw new ModelError(`${source}: not a layer-states file (metadata end, n_layers)`);
  }
  const layers: Record<string, tf.Tensor>[] = Array.from({ length: nLayers }, () => ({}));
  for (const [name, { shape, data }] of saved.tensors) {
    const match = /^layers\.(\d+)\.([A-Za-z_]\w*)$/.exec(name);
    if (match === null) continue; // the wrapped state's tensors (inner.*)
    const layer = layers[Number(match[1])];
    if (layer === undefined) {
      throw new ModelError(`${source}: tensor ${name} names a layer beyond n_layers ${nLayers}`);
    }
    layer[match[2] as string] = tf.tensor(data, shape);
  }
  const nested = nestedSavedState(saved, INNER);
  const inner = nested === null ? null : loadInner(nested, source);
  const states = layers.map((state) => (Object.keys(state).length === 0 ? undefined : state));
  return new LayerStatesState(saved.metadata.kind ?? 'layer-states', inner, states, end, true);
}

/** The kind `inner` with every carrying layer's recurrent state handed from chunk to chunk. */
export function layerStatesKind(name: string, inner: SequenceStateKind): SequenceStateKind {
  return {
    description: `layer states carried from chunk to chunk, with ${inner.description}`,
    // the state flows through the whole article, whatever the wrapped kind does
    evaluation: 'whole-article',
    describe: (config) =>
      [
        inner.describe(config),
        ...(config.mamba_carry_state && config.mamba_each_nth_layer > 0 ? ['mamba-state'] : []),
        ...(config.layer_kinds.includes('mega') ? [`mega-ema${config.ema_dim}`] : []),
      ].join('+'),
    attendsToPast: inner.attendsToPast,
    pass(config, previous, batch, parameters): ChunkPass {
      if (previous !== null && !(previous instanceof LayerStatesState)) {
        throw new ModelError(
          `memory: a '${previous.kind}' state cannot continue a model that carries layer states`,
        );
      }
      if (previous !== null && previous.batchSize !== batch) {
        throw new ModelError(`memory has ${previous.batchSize} rows but the input has ${batch}`);
      }
      const innerPass = inner.pass(config, previous?.inner ?? null, batch, parameters);
      const carrying = Array.from({ length: config.n_layers }, (_, layer) =>
        carriesLayerState(config, layer),
      );
      // null: a fresh sequence (the layer starts from zero and hands its state back)
      let current: (RecurrentState | null | undefined)[] = carrying.map((carries, layer) =>
        carries ? (previous?.layers[layer] ?? null) : undefined,
      );
      let end = previous?.end ?? innerPass.start;
      return {
        start: innerPass.start,
        ...(innerPass.enter ? { enter: (x: tf.Tensor3D) => innerPass.enter!(x) } : {}),
        views: (chunkStart) =>
          innerPass
            .views(chunkStart)
            .map(
              (view, layer): LayerStateIn =>
                current[layer] === undefined ? view : { ...view, recurrent: current[layer] },
            ),
        write: (outs, chunkStart) => {
          innerPass.write(outs, chunkStart);
          current = outs.map((out, layer) => {
            if (!carrying[layer]) return undefined;
            if (out.recurrent === undefined) {
              throw new ModelError(`layer ${layer} carries a state but handed none back`);
            }
            return out.recurrent;
          });
          end = chunkStart + (outs[0]?.written.k.shape[2] ?? 0);
        },
        ...(innerPass.leave ? { leave: (y: tf.Tensor3D) => innerPass.leave!(y) } : {}),
        result: () => {
          if (current.every((state) => state === null || state === undefined)) return null;
          const layers = current.map((state) => state ?? undefined);
          return new LayerStatesState(name, innerPass.result(), layers, end, false);
        },
      };
    },
    // within a chunk and across chunks the decoder hands each layer its last step's state
    // (generation.ts); the wrapped kind keeps the attention cache
    incremental: (config, parameters) => inner.incremental(config, parameters),
    load: () => null,
  };
}
