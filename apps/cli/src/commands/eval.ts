// `baka eval`: upstream's loss of a checkpoint on a batch of token ids.
//   baka eval --checkpoint DIR --input-ids FILE [--json] [--backend NAME]
// FILE is a JSON array of equal-length rows of token ids (one batch); labels = input ids. With
// --json the last stdout line is one JSON object: { loss, perplexity, tokens, rows, length, ... }.
import { existsSync } from 'node:fs';
import { readInputIds } from '@baka/data';
import { type BakaCausalLM, evaluateLoss, loadCheckpoint } from '@baka/model';
import type { Command } from 'commander';
import { backendOption, describeBackend, initBackend, type BackendChoice } from '../backend';
import { UserError, action, resolveUserPath } from '../cli-kit';

export interface EvalResult {
  loss: number;
  perplexity: number;
  tokens: number;
  rows: number;
  length: number;
  seconds: number;
}

/** Loads DIR as a model; errors name the flag. */
export async function loadCheckpointFlag(checkpoint: string | undefined): Promise<BakaCausalLM> {
  if (checkpoint === undefined) throw new UserError('--checkpoint DIR is required');
  const dir = resolveUserPath(checkpoint);
  if (!existsSync(dir)) throw new UserError(`--checkpoint: directory not found: ${checkpoint}`);
  return loadCheckpoint(dir);
}

/** Upstream's loss (labels = input ids) of `model` on the batch in FILE. */
export function evaluateInputIds(model: BakaCausalLM, file: string): EvalResult {
  const path = resolveUserPath(file);
  const batch = readInputIds(path);
  const started = performance.now();
  const { loss, tokens } = evaluateLoss(model, batch);
  return {
    loss,
    perplexity: Math.exp(loss),
    tokens,
    rows: batch.rows,
    length: batch.length,
    seconds: (performance.now() - started) / 1000,
  };
}

export function register(program: Command): void {
  program
    .command('eval')
    .description("evaluate a checkpoint: upstream's loss (labels = input ids)")
    .requiredOption('--checkpoint <dir>', 'checkpoint directory (config.json + model.safetensors)')
    .option('--input-ids <file>', 'JSON array of equal-length rows of token ids (one batch)')
    .option('--json', 'print the result as one JSON line (the last line of stdout)')
    .addOption(backendOption())
    .action(
      action(
        async (flags: {
          checkpoint: string;
          inputIds?: string;
          json?: boolean;
          backend: BackendChoice;
        }) => {
          if (flags.inputIds === undefined) throw new UserError('--input-ids FILE is required');
          const report = await initBackend(flags.backend);
          process.stderr.write(`${describeBackend(report)}\n`);
          const model = await loadCheckpointFlag(flags.checkpoint);
          try {
            const result = evaluateInputIds(model, flags.inputIds);
            if (flags.json) {
              process.stdout.write(
                `${JSON.stringify({ ...result, checkpoint: flags.checkpoint, backend: report.name })}\n`,
              );
            } else {
              process.stdout.write(
                `loss ${result.loss.toFixed(4)}  perplexity ${result.perplexity.toFixed(2)}  tokens ${result.tokens}  (${result.rows} x ${result.length}, ${result.seconds.toFixed(2)} s)\n`,
              );
            }
          } finally {
            model.dispose();
          }
        },
      ),
    );
}
