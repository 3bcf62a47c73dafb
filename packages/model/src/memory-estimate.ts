// How much memory a model needs to train, estimated from its config before anything is
// allocated: every parameter is float32 (4 bytes) and training with AdamW holds four copies of
// it (weights, gradients, first and second moments). Activations come on top, so this is a floor.
import type { BakaConfig } from './config';
import { ModelError } from './errors';
import { countParameters } from './count-parameters';

/** Copies of every parameter while training with AdamW: weights, gradients, two moments. */
export const TRAINING_COPIES = 4;

/** Parameters of a config, from the shapes alone. */
export function parameterCount(config: BakaConfig): number {
  return countParameters({ config }).total;
}

/** Bytes to train a model of `config` with AdamW (parameters x 4 bytes x 4), activations aside. */
export function estimatedTrainingBytes(config: BakaConfig): number {
  return parameterCount(config) * 4 * TRAINING_COPIES;
}

/** `1.6 GB`, `23.4 GB`, `2.1 TB` (decimal units). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Refuses a config whose training estimate exceeds `limit` bytes, before allocating it. */
export function checkFitsInMemory(config: BakaConfig, limit: number): void {
  const needed = estimatedTrainingBytes(config);
  if (needed <= limit) return;
  const parameters = parameterCount(config);
  throw new ModelError(
    `the model config needs an estimated ${formatBytes(needed)} to train (${parameters.toExponential(2)} parameters x 4 bytes x ${TRAINING_COPIES} ` +
      `for weights, gradients and AdamW moments), more than the ${formatBytes(limit)} of memory here; ` +
      `make dim_model (${config.dim_model}), dim_ff (${config.dim_ff}), n_layers (${config.n_layers}) or n_vocab (${config.n_vocab}) smaller`,
  );
}
