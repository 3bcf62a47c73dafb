// memory.safetensors: the detached sequence state carried between training windows
// (`carryMemory`), saved with a checkpoint so a resumed run feeds the next window exactly what it
// would have got. What the file holds is the sequence-state kind's (SequenceState.save); the
// metadata's `format` names the kind that reads it back (for the XL memory: tensors
// `layers.{i}.k` / `layers.{i}.v`, unrotated, and each layer's start position).
import {
  loadSequenceState,
  ModelError,
  readSafetensors,
  readSafetensorsMetadata,
  type SavedState,
  type SequenceState,
  serializeSafetensors,
} from '@baka/model';
import { CheckpointError } from './trainer-state';

export const MEMORY_FILE = 'memory.safetensors';

export function serializeMemory(memory: SequenceState): Uint8Array {
  const saved = memory.save();
  const tensors = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  for (const [name, { shape, data }] of saved.tensors) {
    tensors.set(name, { dtype: 'F32', shape, data });
  }
  return serializeSafetensors(tensors, saved.metadata);
}

/** Reads memory.safetensors into a state that owns its tensors (the caller disposes it). */
export function readMemory(path: string): SequenceState {
  const metadata = readSafetensorsMetadata(path);
  if (typeof metadata.format !== 'string') {
    throw new CheckpointError(`${path}: no 'format' in the metadata; not a sequence state file`);
  }
  const tensors: SavedState['tensors'] = new Map();
  for (const [name, tensor] of readSafetensors(path)) {
    tensors.set(name, { shape: [...tensor.shape], data: tensor.data as Float32Array });
  }
  try {
    return loadSequenceState({ tensors, metadata: metadata as SavedState['metadata'] }, path);
  } catch (error) {
    if (error instanceof ModelError) throw new CheckpointError(error.message);
    throw error;
  }
}
