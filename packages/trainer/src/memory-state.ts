// memory.safetensors: the detached XL memory carried between training windows (`carryMemory`),
// saved with a checkpoint so a resumed run feeds the next window exactly what it would have got.
//
// Tensors `layers.{i}.k` [B, H, P, K] and `layers.{i}.v` [B, H, P, V] (unrotated, as cached);
// metadata: n_layers, source, max_length, and each layer's start position (JSON).
import { XLMemory } from '@baka/cache';
import { readSafetensors, readSafetensorsMetadata, serializeSafetensors } from '@baka/model';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError } from './trainer-state';

export const MEMORY_FILE = 'memory.safetensors';

export function serializeMemory(memory: XLMemory): Uint8Array {
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  const starts: (number | null)[] = [];
  memory.layers().forEach((layer, i) => {
    if (layer.k === null || layer.v === null) {
      starts.push(null);
      return;
    }
    starts.push(layer.start);
    tensors.set(`layers.${i}.k`, {
      dtype: 'F32',
      shape: [...layer.k.shape],
      data: layer.k.dataSync() as Float32Array,
    });
    tensors.set(`layers.${i}.v`, {
      dtype: 'F32',
      shape: [...layer.v.shape],
      data: layer.v.dataSync() as Float32Array,
    });
  });
  return serializeSafetensors(tensors, {
    format: 'baka-xl-memory',
    n_layers: String(memory.nLayers),
    source: memory.source,
    max_length: memory.maxLength === undefined ? '' : String(memory.maxLength),
    starts: JSON.stringify(starts),
  });
}

/** Reads memory.safetensors into a memory that owns its tensors (the caller disposes it). */
export function readMemory(path: string): XLMemory {
  const metadata = readSafetensorsMetadata(path);
  const nLayers = Number(metadata.n_layers);
  const source = metadata.source;
  let starts: (number | null)[];
  try {
    starts = JSON.parse(metadata.starts ?? '');
  } catch {
    throw new CheckpointError(`${path}: metadata 'starts' is not valid JSON`);
  }
  if (
    !Number.isInteger(nLayers) ||
    (source !== 'previous-layer' && source !== 'same-layer') ||
    starts.length !== nLayers
  ) {
    throw new CheckpointError(`${path}: not an XL memory file (metadata n_layers/source/starts)`);
  }
  const tensors = readSafetensors(path);
  const layers = starts.map((start, i) => {
    const k = tensors.get(`layers.${i}.k`);
    const v = tensors.get(`layers.${i}.v`);
    if (start === null || !k || !v) return { k: null, v: null, start: 0 };
    return {
      k: tf.tensor4d(k.data as Float32Array, k.shape as [number, number, number, number]),
      v: tf.tensor4d(v.data as Float32Array, v.shape as [number, number, number, number]),
      start,
    };
  });
  return XLMemory.owning(
    { nLayers, source, ...(metadata.max_length ? { maxLength: Number(metadata.max_length) } : {}) },
    layers,
  );
}
