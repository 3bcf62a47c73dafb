// `baka generate`: sample a continuation of a prompt, streaming the decoded text.
//   baka generate --checkpoint DIR --prompt TEXT [--max-new-tokens N] [--temperature T]
//                 [--top-k K] [--top-p P] [--seed S] [--backend NAME]
// The tokenizer is DIR/tokenizer.json, or the bundled GPT-NeoX-20B one when absent.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer, defaultTokenizerPath } from '@baka/tokenizer';
import { TOKENIZER_FILE } from '@baka/model';
import type { Command } from 'commander';
import { backendOption, describeBackend, initBackend, type BackendChoice } from '../backend';
import {
  UserError,
  action,
  collect,
  parseIntFlag,
  parseNumberFlag,
  resolveUserPath,
} from '../cli-kit';
import { resolveCheckpointArgument, runsDirectory } from '../run-directory';
import { loadCheckpointFlag, SET_FLAG_HELP } from './eval';

interface GenerateFlags {
  checkpoint: string;
  runsDir?: string;
  prompt?: string;
  maxNewTokens: string;
  temperature: string;
  topK?: string;
  topP?: string;
  seed: string;
  set?: string[];
  backend: BackendChoice;
}

/**
 * Streams text for token ids as they come: decodes the whole continuation each time and writes
 * the new suffix, holding back an incomplete UTF-8 character (decoded as U+FFFD at the end).
 */
export class TextStreamer {
  #ids: number[] = [];
  #written = 0;
  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly write: (text: string) => void,
  ) {}

  push(id: number): void {
    this.#ids.push(id);
    const text = this.tokenizer.decode(this.#ids);
    const stable = text.endsWith('\uFFFD') ? text.slice(0, -1) : text;
    if (stable.length > this.#written) {
      this.write(stable.slice(this.#written));
      this.#written = stable.length;
    }
  }

  flush(): void {
    const text = this.tokenizer.decode(this.#ids);
    if (text.length > this.#written) this.write(text.slice(this.#written));
    this.#written = text.length;
  }
}

export function register(program: Command): void {
  program
    .command('generate')
    .description('generate text from a checkpoint (streams tokens as they are sampled)')
    .requiredOption(
      '--checkpoint <dir|run>',
      'checkpoint directory, run directory or run name (its newest checkpoint)',
    )
    .option('--runs-dir <dir>', 'where run names are looked up (default: <repo root>/runs)')
    .option('--prompt <text>', 'the text to continue')
    .option('--max-new-tokens <n>', 'tokens to generate', '100')
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', '0.8')
    .option('--top-k <k>', 'sample from the k most likely tokens')
    .option('--top-p <p>', 'sample from the smallest set of tokens with probability >= p')
    .option('--seed <s>', 'sampling seed (same seed, same text)', '0')
    .option('--set <key=value>', SET_FLAG_HELP, collect)
    .addOption(backendOption())
    .action(
      action(async (flags: GenerateFlags) => {
        if (flags.prompt === undefined || flags.prompt.length === 0) {
          throw new UserError('--prompt TEXT is required (a non-empty prompt)');
        }
        const maxNewTokens = parseIntFlag('--max-new-tokens', flags.maxNewTokens, { min: 0 });
        const temperature = parseNumberFlag('--temperature', flags.temperature, { min: 0 });
        const topK =
          flags.topK === undefined ? undefined : parseIntFlag('--top-k', flags.topK, { min: 1 });
        const topP =
          flags.topP === undefined ? undefined : parseNumberFlag('--top-p', flags.topP, { min: 0 });
        if (topP !== undefined && !(topP > 0 && topP <= 1)) {
          throw new UserError(`--top-p expects a number in (0, 1], got '${flags.topP}'`);
        }
        const seed = parseIntFlag('--seed', flags.seed, { min: 0 });
        flags.checkpoint = resolveCheckpointArgument(
          flags.checkpoint,
          runsDirectory(flags.runsDir),
        );
        const report = await initBackend(flags.backend);
        process.stderr.write(`${describeBackend(report)}\n`);
        const dir = resolveUserPath(flags.checkpoint);
        const model = await loadCheckpointFlag(flags.checkpoint, flags.set ?? []);
        try {
          const tokenizerPath = existsSync(join(dir, TOKENIZER_FILE))
            ? join(dir, TOKENIZER_FILE)
            : defaultTokenizerPath();
          const tokenizer = Tokenizer.fromFile(tokenizerPath);
          const prompt = Array.from(tokenizer.encode(flags.prompt));
          if (prompt.length === 0) throw new UserError('--prompt encodes to no tokens');
          const tooLarge = prompt.find((id) => id >= model.config.n_vocab);
          if (tooLarge !== undefined) {
            throw new UserError(
              `the tokenizer (${tokenizerPath}) gave id ${tooLarge} but the model's vocabulary has ${model.config.n_vocab} tokens; put the matching tokenizer.json in the checkpoint directory`,
            );
          }
          const eos = tokenizer.specialTokens.eos;
          process.stdout.write(flags.prompt);
          const streamer = new TextStreamer(tokenizer, (text) => process.stdout.write(text));
          const started = performance.now();
          const generated = model.generate(prompt, {
            maxNewTokens,
            temperature,
            ...(topK === undefined ? {} : { topK }),
            ...(topP === undefined ? {} : { topP }),
            seed,
            ...(eos === undefined ? {} : { stopTokens: [eos] }),
            onToken: (id) => streamer.push(id),
          });
          streamer.flush();
          process.stdout.write('\n');
          const seconds = (performance.now() - started) / 1000;
          process.stderr.write(
            `${generated.length} tokens in ${seconds.toFixed(2)} s (${(generated.length / Math.max(seconds, 1e-9)).toFixed(1)} tokens/s, prompt ${prompt.length} tokens)\n`,
          );
        } finally {
          model.dispose();
        }
      }),
    );
}
