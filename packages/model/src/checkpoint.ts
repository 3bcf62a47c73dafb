// Checkpoint directories (docs/architecture.md §5): config.json (upstream field names + model_type
// 'baka_xl' + our option fields) and model.safetensors (float32, upstream state_dict names, PyTorch
// layout), optionally tokenizer.json. Written atomically: a temporary sibling directory is filled,
// then renamed into place (an existing checkpoint is moved aside first and removed afterwards).
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BakaCausalLM } from './causal-lm';
import type { BakaConfig } from './config';
import { configDefault, isUniform, makeConfig } from './config';
import { ModelError } from './errors';
import { readSafetensors, readSafetensorsLazily, writeSafetensors } from './safetensors';
import type { FloatDtype, SafetensorsTensor, TensorData } from './safetensors';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const TOKENIZER_FILE = 'tokenizer.json';

/** Reads and validates DIR/config.json (an upstream-style config without our fields is fine). */
export function readCheckpointConfig(dir: string): BakaConfig {
  const path = join(dir, CONFIG_FILE);
  if (!existsSync(path))
    throw new ModelError(`${dir}: not a checkpoint directory (no ${CONFIG_FILE})`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ModelError(`${path}: invalid JSON (${(error as Error).message})`);
  }
  return makeConfig(json, path);
}

type CheckpointTensor = { shape: number[]; data: Float32Array; dtype: FloatDtype };

function weightsPath(dir: string): string {
  const path = join(dir, WEIGHTS_FILE);
  if (!existsSync(path))
    throw new ModelError(`${dir}: no ${WEIGHTS_FILE} in the checkpoint directory`);
  return path;
}

/** A stored tensor as float32 (F16/BF16/F64 widened/narrowed); other dtypes are refused. */
function asFloat32(path: string, name: string, dtype: string, data: TensorData): Float32Array {
  if (!['F32', 'F16', 'BF16', 'F64'].includes(dtype)) {
    throw new ModelError(`${path}: tensor '${name}' has dtype ${dtype}, expected a float dtype`);
  }
  return data instanceof Float32Array ? data : Float32Array.from(data as Float64Array);
}

/**
 * Reads DIR/model.safetensors as float32 tensors (F16/BF16/F64 are widened/narrowed); each keeps
 * the dtype it was stored in, at whose precision the model checks its rotary frequencies.
 */
export function readCheckpointTensors(dir: string): Map<string, CheckpointTensor> {
  const path = weightsPath(dir);
  const out = new Map<string, CheckpointTensor>();
  for (const [name, tensor] of readSafetensors(path)) {
    const data = asFloat32(path, name, tensor.dtype, tensor.data);
    out.set(name, { shape: tensor.shape, data, dtype: tensor.dtype as FloatDtype });
  }
  return out;
}

/**
 * The same tensors with `data` read from the file when asked for (each access reads again):
 * what loadCheckpoint hands to fromTensors, which takes one tensor at a time into the backend.
 */
function checkpointTensorsLazily(dir: string): Map<string, CheckpointTensor> {
  const path = weightsPath(dir);
  const out = new Map<string, CheckpointTensor>();
  for (const [name, tensor] of readSafetensorsLazily(path)) {
    asFloat32(path, name, tensor.dtype, new Float32Array(0)); // the dtype check, before any read
    out.set(name, {
      shape: tensor.shape,
      dtype: tensor.dtype as FloatDtype,
      get data() {
        return asFloat32(path, name, tensor.dtype, tensor.read());
      },
    });
  }
  return out;
}

/** Loads a checkpoint directory written by us or by PyTorch with upstream's names. */
export async function loadCheckpoint(dir: string): Promise<BakaCausalLM> {
  const config = readCheckpointConfig(dir);
  // one tensor's host copy at a time: each is read from the file as its variable is made
  // (a 760 MB checkpoint: load peak 2.6 -> 1.6 GB of RSS)
  return BakaCausalLM.fromTensors(config, checkpointTensorsLazily(dir), join(dir, WEIGHTS_FILE));
}

/** The model's tensors as float32 safetensors entries (state_dict order, PyTorch layout). */
export function modelTensors(model: BakaCausalLM): Map<string, SafetensorsTensor> {
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, variable] of model.parameters) {
    tensors.set(name, {
      dtype: 'F32',
      shape: [...variable.shape],
      data: variable.dataSync() as Float32Array,
    });
  }
  return tensors;
}

/**
 * config.json text: every field, ours included, model_type first. A uniform model (no thin
 * layers, one MLP width) leaves out the per-layer fields, and float32 rotary tables leave out
 * `rotary_precision`, so such a model writes the 003 config (as files written before the field).
 */
const RMT_KEYS = [
  'n_rmt_tokens',
  'rmt_mask',
  'rmt_grad_chunks',
  'n_rmt_margins',
  'rmt_solidifier',
  'use_flash_attn',
] as const satisfies readonly (keyof BakaConfig)[];
const PAUSE_AND_RMT_KEYS = ['n_pauses', 'is_pause_pos_random', 'pause_seed', ...RMT_KEYS] as const;

/** split_norm and qk_norm's fields, each left out at its default. */
const QK_NORM_KEYS = [
  'split_norm',
  'qk_norm',
  'qk_norm_scope',
  'qk_norm_weights',
  'qk_norm_scale',
  'qk_norm_learned_scale',
] as const satisfies readonly (keyof BakaConfig)[];

export function configJson(config: BakaConfig): string {
  // fields of later variants are left out at their 003 values, so a 003 model writes 003's config
  const written: Partial<BakaConfig> = { ...config };
  if (isUniform(config)) {
    delete written.layer_kinds;
    delete written.layer_dim_ff;
    delete written.thin_rotary_scale;
  }
  if (config.norm === 'layernorm') delete written.norm;
  if (config.rotary_precision === 'float32') delete written.rotary_precision;
  if (config.n_pauses === 0 && config.n_rmt_tokens === 0) {
    for (const key of PAUSE_AND_RMT_KEYS) delete written[key];
  } else if (config.n_rmt_tokens === 0) {
    for (const key of RMT_KEYS) delete written[key];
  }
  if (config.mamba_each_nth_layer === 0) delete written.mamba_each_nth_layer;
  if (!config.mamba_carry_state) delete written.mamba_carry_state;
  if (!config.layer_kinds.includes('mega')) {
    delete written.ema_dim;
    delete written.mega_z_dim;
    delete written.mega_h_dim;
  }
  for (const key of QK_NORM_KEYS) {
    if (written[key] === configDefault(key)) delete written[key];
  }
  if (config.recurrent_layers.length === 0) {
    delete written.recurrent_layers;
    delete written.n_state_vectors;
    delete written.state_gate;
  }
  if (config.n_memory_tokens === 0) {
    delete written.n_memory_tokens;
    delete written.memory_tokens_every;
    delete written.memory_tokens_in_xl;
  }
  if (config.n_mem_kv === 0) delete written.n_mem_kv;
  return `${JSON.stringify(written, null, 2)}\n`;
}

/** The files a model checkpoint directory may hold besides those a caller adds. */
export const MODEL_CHECKPOINT_FILES: readonly string[] = [
  CONFIG_FILE,
  WEIGHTS_FILE,
  TOKENIZER_FILE,
];

/**
 * Checks that DIR may receive a checkpoint: it does not exist, is an empty directory, or is a
 * checkpoint (config.json present) holding only files named in `knownFiles` plus the model's own.
 * Anything else — a file, a directory with the user's files, a runs directory — is refused with
 * one line naming the path, so a save never deletes what it did not write.
 */
export function checkCheckpointTarget(dir: string, knownFiles: readonly string[] = []): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) {
    throw new ModelError(
      `${dir} is a file, not a directory; choose a directory for the checkpoint`,
    );
  }
  const entries = readdirSync(dir, { withFileTypes: true });
  if (entries.length === 0) return;
  const known = new Set([...MODEL_CHECKPOINT_FILES, ...knownFiles]);
  const foreign = entries.find((entry) => !entry.isFile() || !known.has(entry.name));
  if (foreign || !entries.some((entry) => entry.name === CONFIG_FILE)) {
    const what = foreign ? `'${foreign.name}'` : 'files but no config.json';
    throw new ModelError(
      `${dir} is not empty and is not a checkpoint (it holds ${what}); refusing to replace it: choose a new or empty directory`,
    );
  }
}

/**
 * Writes DIR atomically: config.json, model.safetensors, and tokenizer.json when given, plus
 * any `files` (name -> contents) a caller adds (e.g. a trainer's state). An existing DIR is
 * replaced only when it is a checkpoint made of the model's files, the given `files` and
 * `knownFiles` (see checkCheckpointTarget); anything else is refused before a byte is written.
 */
export async function saveCheckpoint(
  dir: string,
  model: BakaCausalLM,
  extra: {
    tokenizerJson?: string;
    files?: Record<string, string | Uint8Array>;
    /** Further file names an existing checkpoint at DIR may hold and this save may replace. */
    knownFiles?: readonly string[];
  } = {},
): Promise<void> {
  checkCheckpointTarget(dir, [...Object.keys(extra.files ?? {}), ...(extra.knownFiles ?? [])]);
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const unique = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const temporary = join(parent, `.${basename(dir)}.tmp-${unique}`);
  mkdirSync(temporary);
  try {
    writeFileSync(join(temporary, CONFIG_FILE), configJson(model.config));
    writeSafetensors(join(temporary, WEIGHTS_FILE), modelTensors(model), { format: 'pt' });
    if (extra.tokenizerJson !== undefined)
      writeFileSync(join(temporary, TOKENIZER_FILE), extra.tokenizerJson);
    for (const [name, contents] of Object.entries(extra.files ?? {})) {
      if (name.includes('/') || name.includes('\\') || name.startsWith('.')) {
        throw new ModelError(`saveCheckpoint: extra file name '${name}' must be a plain file name`);
      }
      writeFileSync(join(temporary, name), contents);
    }
    if (existsSync(dir)) {
      const aside = join(parent, `.${basename(dir)}.old-${unique}`);
      renameSync(dir, aside);
      renameSync(temporary, dir);
      rmSync(aside, { recursive: true, force: true });
    } else {
      renameSync(temporary, dir);
    }
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    throw error;
  }
}
