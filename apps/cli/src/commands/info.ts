// `baka info`: a checkpoint's config and parameter counts.
//   baka info --checkpoint DIR [--json]
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  configJson,
  countParameters,
  readCheckpointConfig,
  readSafetensorsMetadata,
  TOKENIZER_FILE,
  WEIGHTS_FILE,
} from '@baka/model';
import type { Command } from 'commander';
import { UserError, action, resolveUserPath } from '../cli-kit';

export interface CheckpointInfo {
  config: ReturnType<typeof readCheckpointConfig>;
  parameters: { total: number; inputEmbedding: number; withoutInputEmbedding: number };
  tokenizer: boolean;
}

/** Reads config.json (validated) and checks the weights header; no tensors are loaded. */
export function checkpointInfo(checkpoint: string): CheckpointInfo {
  const dir = resolveUserPath(checkpoint);
  if (!existsSync(dir)) throw new UserError(`--checkpoint: directory not found: ${checkpoint}`);
  const config = readCheckpointConfig(dir);
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
    .option('--json', 'print one JSON object')
    .action(
      action((flags: { checkpoint: string; json?: boolean }) => {
        const info = checkpointInfo(flags.checkpoint);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(info)}\n`);
          return;
        }
        const lines = [`checkpoint ${flags.checkpoint}`, 'config:'];
        // the fields config.json holds (a uniform model has no per-layer fields)
        const shown = Object.entries(
          JSON.parse(configJson(info.config)) as Record<string, unknown>,
        );
        const width = Math.max(16, ...shown.map(([key]) => key.length + 1));
        for (const [key, value] of shown) lines.push(`  ${key.padEnd(width)}${value}`);
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
