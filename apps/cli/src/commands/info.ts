// `baka info`: a checkpoint's config (each key with its schema description), parameter counts,
// and for a training checkpoint its step, tokens and losses.
//   baka info --checkpoint DIR|RUN [--runs-dir DIR] [--set key=value ...] [--json]
// --set shows the checkpoint's config with those keys changed (and the parameters it would have).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  configFields,
  configJson,
  countParameters,
  type FieldInfo,
  makeConfig,
  parseConfigSettings,
  readCheckpointConfig,
  readSafetensorsMetadata,
  TOKENIZER_FILE,
  WEIGHTS_FILE,
} from '@baka/model';
import { CHECKPOINT_FILES, CheckpointError, parseTrainerState } from '@baka/trainer';
import type { Command } from 'commander';
import { UserError, action, asUserError, collect, resolveUserPath } from '../cli-kit';
import { resolveCheckpointArgument, runsDirectory } from '../run-directory';

export interface CheckpointInfo {
  config: ReturnType<typeof readCheckpointConfig>;
  parameters: { total: number; inputEmbedding: number; withoutInputEmbedding: number };
  tokenizer: boolean;
  /** From trainer_state.json; null for a model-only checkpoint. */
  training: {
    run: string;
    step: number;
    tokens: number;
    elapsedSeconds: number;
    firstLoss: number | null;
    lastLoss: number | null;
    bestLoss: number | null;
    skippedSteps: number;
  } | null;
}

function trainingState(dir: string): CheckpointInfo['training'] {
  const path = join(dir, CHECKPOINT_FILES.trainerState);
  if (!existsSync(path)) return null;
  try {
    const state = parseTrainerState(readFileSync(path, 'utf8'), path);
    return {
      run: state.runName,
      step: state.step,
      tokens: state.tokens,
      elapsedSeconds: state.elapsedSeconds,
      firstLoss: state.firstLoss,
      lastLoss: state.lastLoss,
      bestLoss: state.bestLoss,
      skippedSteps: state.skippedSteps,
    };
  } catch (error) {
    if (error instanceof CheckpointError) throw new UserError(`--checkpoint: ${error.message}`);
    throw error;
  }
}

/** Reads config.json (validated) and checks the weights header; no tensors are loaded. */
export function checkpointInfo(
  checkpoint: string,
  settings: readonly string[] = [],
): CheckpointInfo {
  const dir = resolveUserPath(checkpoint);
  if (!existsSync(dir)) throw new UserError(`--checkpoint: directory not found: ${checkpoint}`);
  const saved = readCheckpointConfig(dir);
  const overrides = asUserError('', () => parseConfigSettings(settings));
  const config = asUserError('', () => makeConfig({ ...saved, ...overrides }, '--set'));
  const weights = join(dir, WEIGHTS_FILE);
  if (!existsSync(weights))
    throw new UserError(`--checkpoint: no ${WEIGHTS_FILE} in ${checkpoint}`);
  readSafetensorsMetadata(weights); // validates the header and sizes
  const counts = countParameters({ config });
  return {
    config,
    parameters: { ...counts, withoutInputEmbedding: counts.total - counts.inputEmbedding },
    tokenizer: existsSync(join(dir, TOKENIZER_FILE)),
    training: trainingState(dir),
  };
}

/** Characters of the value column of `baka info`'s config table (a space follows). */
export const VALUE_WIDTH = 15;

/**
 * A value cut into lines of at most `width` characters: after commas where it can (a list stays
 * readable, one or more items a line), inside an item only when the item alone is too long.
 */
export function wrapValue(value: string, width = VALUE_WIDTH): string[] {
  const pieces = value
    .split(/(?<=,)/)
    .flatMap((piece) =>
      Array.from({ length: Math.ceil(piece.length / width) }, (_, i) =>
        piece.slice(i * width, (i + 1) * width),
      ),
    );
  const lines: string[] = [];
  for (const piece of pieces) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last]!.length + piece.length <= width) lines[last] += piece;
    else lines.push(piece);
  }
  return lines.length > 0 ? lines : [''];
}

/**
 * The config table of `baka info`: key, value, description in aligned columns. A value longer than
 * the value column (a layer_kinds list) continues on the next lines of its column, so every
 * description starts at the same place.
 */
export function configLines(written: Record<string, unknown>, fields: FieldInfo[]): string[] {
  const shown = fields.filter((field) => field.key in written);
  const width = Math.max(16, ...shown.map((field) => field.key.length + 1));
  return shown.flatMap((field) => {
    const [first, ...rest] = wrapValue(String(written[field.key]));
    return [
      `  ${field.key.padEnd(width)}${first!.padEnd(VALUE_WIDTH + 1)}${field.description}`,
      ...rest.map((line) => `  ${''.padEnd(width)}${line}`),
    ];
  });
}

function millions(n: number): string {
  return `${(n / 1e6).toFixed(2)}M`;
}

export function register(program: Command): void {
  program
    .command('info')
    .description('show a checkpoint: config and parameter counts')
    .requiredOption(
      '--checkpoint <dir|run>',
      'checkpoint directory, run directory or run name (its newest checkpoint)',
    )
    .option('--runs-dir <dir>', 'where run names are looked up (default: <repo root>/runs)')
    .option('--set <key=value>', 'show the config with this model key changed; repeatable', collect)
    .option('--json', 'print one JSON object')
    .action(
      action((flags: { checkpoint: string; runsDir?: string; set?: string[]; json?: boolean }) => {
        flags.checkpoint = resolveCheckpointArgument(
          flags.checkpoint,
          runsDirectory(flags.runsDir),
        );
        const info = checkpointInfo(flags.checkpoint, flags.set ?? []);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(info)}\n`);
          return;
        }
        const lines = [`checkpoint ${flags.checkpoint}`, 'config:'];
        // the fields config.json holds (a uniform model has no per-layer fields), described
        const written = JSON.parse(configJson(info.config)) as Record<string, unknown>;
        lines.push(...configLines(written, configFields()));
        const { total, inputEmbedding, withoutInputEmbedding } = info.parameters;
        lines.push(
          'parameters:',
          `  total           ${total} (${millions(total)})`,
          `  input embedding ${inputEmbedding} (${millions(inputEmbedding)})`,
          `  without it      ${withoutInputEmbedding} (${millions(withoutInputEmbedding)})`,
          `tokenizer.json    ${info.tokenizer ? 'yes' : 'no (the bundled GPT-NeoX-20B tokenizer is used)'}`,
        );
        const training = info.training;
        if (training) {
          const loss = (value: number | null) => (value === null ? '-' : value.toFixed(4));
          lines.push(
            'training:',
            `  run             ${training.run}`,
            `  step            ${training.step}`,
            `  tokens          ${training.tokens}`,
            `  seconds         ${training.elapsedSeconds.toFixed(1)}`,
            `  loss            first ${loss(training.firstLoss)}, last ${loss(training.lastLoss)}, best ${loss(training.bestLoss)}${training.skippedSteps > 0 ? ` (${training.skippedSteps} steps skipped)` : ''}`,
          );
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      }),
    );
}
