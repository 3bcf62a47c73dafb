// `baka info`: a checkpoint's config (each key with its schema description) and parameter counts.
//   baka info --checkpoint DIR [--set key=value ...] [--json]
// --set shows the checkpoint's config with those keys changed (and the parameters it would have).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  configFields,
  countParameters,
  makeConfig,
  parseConfigSettings,
  readCheckpointConfig,
  readSafetensorsMetadata,
  TOKENIZER_FILE,
  WEIGHTS_FILE,
} from '@baka/model';
import type { Command } from 'commander';
import { UserError, action, asUserError, collect, resolveUserPath } from '../cli-kit';

export interface CheckpointInfo {
  config: ReturnType<typeof readCheckpointConfig>;
  parameters: { total: number; inputEmbedding: number; withoutInputEmbedding: number };
  tokenizer: boolean;
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
  };
}

function millions(n: number): string {
  return `${(n / 1e6).toFixed(2)}M`;
}

export function register(program: Command): void {
  program
    .command('info')
    .description('show a checkpoint: config and parameter counts')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory')
    .option('--set <key=value>', 'show the config with this model key changed; repeatable', collect)
    .option('--json', 'print one JSON object')
    .action(
      action((flags: { checkpoint: string; set?: string[]; json?: boolean }) => {
        const info = checkpointInfo(flags.checkpoint, flags.set ?? []);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(info)}\n`);
          return;
        }
        const lines = [`checkpoint ${flags.checkpoint}`, 'config:'];
        for (const field of configFields()) {
          const value = String(info.config[field.key as keyof typeof info.config]);
          lines.push(`  ${field.key.padEnd(16)}${value.padEnd(16)}${field.description}`);
        }
        const { total, inputEmbedding, withoutInputEmbedding } = info.parameters;
        lines.push(
          'parameters:',
          `  total           ${total} (${millions(total)})`,
          `  input embedding ${inputEmbedding} (${millions(inputEmbedding)})`,
          `  without it      ${withoutInputEmbedding} (${millions(withoutInputEmbedding)})`,
          `tokenizer.json    ${info.tokenizer ? 'yes' : 'no (the bundled GPT-NeoX-20B tokenizer is used)'}`,
        );
        process.stdout.write(`${lines.join('\n')}\n`);
      }),
    );
}
