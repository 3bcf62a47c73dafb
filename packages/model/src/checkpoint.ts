// Checkpoint directories (DESIGN §2): config.json (upstream field names + model_type 'baka_xl' +
// our option fields) and model.safetensors (float32, upstream state_dict names, PyTorch layout),
// optionally tokenizer.json. Written atomically: a temporary sibling directory is filled, then
// renamed into place (an existing checkpoint is moved aside first and removed afterwards).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BakaCausalLM } from './causal-lm';
import type { BakaConfig } from './config';
import { makeConfig } from './config';
import { ModelError } from './errors';
import { readSafetensors, writeSafetensors } from './safetensors';
import type { FloatDtype, SafetensorsTensor } from './safetensors';

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

/**
 * Reads DIR/model.safetensors as float32 tensors (F16/BF16/F64 are widened/narrowed); each keeps
 * the dtype it was stored in, at whose precision the model checks its rotary frequencies.
 */
export function readCheckpointTensors(
  dir: string,
): Map<string, { shape: number[]; data: Float32Array; dtype: FloatDtype }> {
  const path = join(dir, WEIGHTS_FILE);
  if (!existsSync(path))
    throw new ModelError(`${dir}: no ${WEIGHTS_FILE} in the checkpoint directory`);
  const out = new Map<string, { shape: number[]; data: Float32Array; dtype: FloatDtype }>();
  for (const [name, tensor] of readSafetensors(path)) {
    if (!['F32', 'F16', 'BF16', 'F64'].includes(tensor.dtype)) {
      throw new ModelError(
        `${path}: tensor '${name}' has dtype ${tensor.dtype}, expected a float dtype`,
      );
    }
    const data =
      tensor.data instanceof Float32Array
        ? tensor.data
        : Float32Array.from(tensor.data as Float64Array);
    out.set(name, { shape: tensor.shape, data, dtype: tensor.dtype as FloatDtype });
  }
  return out;
}

/** Loads a checkpoint directory written by us or by PyTorch with upstream's names. */
export async function loadCheckpoint(dir: string): Promise<BakaCausalLM> {
  const config = readCheckpointConfig(dir);
  return BakaCausalLM.fromTensors(config, readCheckpointTensors(dir), join(dir, WEIGHTS_FILE));
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

/** config.json text: every field, ours included, model_type first. */
export function configJson(config: BakaConfig): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * Writes DIR atomically: config.json, model.safetensors, and tokenizer.json when given, plus
 * any `files` (name -> contents) a caller adds (e.g. a trainer's state). An existing DIR is
 * replaced as a whole.
 */
export async function saveCheckpoint(
  dir: string,
  model: BakaCausalLM,
  extra: { tokenizerJson?: string; files?: Record<string, string | Uint8Array> } = {},
): Promise<void> {
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
