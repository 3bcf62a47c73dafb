// `baka generate`: sample a continuation of a prompt, streaming the decoded text.
//   baka generate --checkpoint DIR --prompt TEXT|- | --prompt-file FILE [--stop TEXT...]
//                 [--keep-special-tokens] [--max-new-tokens N] [--temperature T]
//                 [--top-k K] [--top-p P] [--seed S] [--num-samples N] [--backend NAME]
// The tokenizer is DIR/tokenizer.json, or the bundled GPT-NeoX-20B one when absent. One sample
// streams as it is generated; N > 1 samples are generated side by side (one batch) and printed
// one after another when done, each under a `--- sample k of N ---` line.
import { existsSync, readFileSync } from 'node:fs';
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
  promptFile?: string;
  stop?: string[];
  keepSpecialTokens?: boolean;
  maxNewTokens: string;
  temperature: string;
  topK?: string;
  topP?: string;
  seed: string;
  numSamples: string;
  set?: string[];
  backend: BackendChoice;
}

/**
 * Streams text for token ids as they come: decodes the whole continuation each time and writes
 * the new suffix, holding back an incomplete UTF-8 character (decoded as U+FFFD at the end) and
 * any end that could be the start of a stop string. Once a stop string is decoded, the text
 * before it is written and `stopped` turns true. Special tokens are left out unless kept.
 */
export class TextStreamer {
  #ids: number[] = [];
  #written = 0;
  stopped = false;
  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly write: (text: string) => void,
    private readonly options: { stop?: readonly string[]; keepSpecialTokens?: boolean } = {},
  ) {}

  #decode(): string {
    return this.tokenizer.decode(this.#ids, {
      skipSpecialTokens: !this.options.keepSpecialTokens,
    });
  }

  /** Writes `text` up to `end`; returns true when a stop string ends the stream. */
  #emit(text: string, final: boolean): void {
    const stops = (this.options.stop ?? []).filter((stop) => stop.length > 0);
    let end = text.length;
    let found = -1;
    for (const stop of stops) {
      const at = text.indexOf(stop, Math.max(0, this.#written - stop.length + 1));
      if (at >= 0 && (found < 0 || at < found)) found = at;
    }
    if (found >= 0) {
      end = found;
      this.stopped = true;
    } else if (!final) {
      let hold = 0;
      for (const stop of stops) {
        for (let k = Math.min(stop.length - 1, text.length); k > hold; k--) {
          if (text.endsWith(stop.slice(0, k))) {
            hold = k;
            break;
          }
        }
      }
      end = text.length - hold;
    }
    if (end > this.#written) {
      this.write(text.slice(this.#written, end));
      this.#written = end;
    }
  }

  push(id: number): void {
    if (this.stopped) return;
    this.#ids.push(id);
    const text = this.#decode();
    this.#emit(text.endsWith('\uFFFD') ? text.slice(0, -1) : text, false);
  }

  flush(): void {
    if (!this.stopped) this.#emit(this.#decode(), true);
  }
}

/** The prompt: `--prompt TEXT`, `--prompt -` (stdin) or `--prompt-file FILE`. */
function readPrompt(flags: GenerateFlags): string {
  if (flags.prompt !== undefined && flags.promptFile !== undefined) {
    throw new UserError('--prompt and --prompt-file cannot be used together');
  }
  let prompt: string;
  if (flags.promptFile !== undefined) {
    const path = resolveUserPath(flags.promptFile);
    if (!existsSync(path)) throw new UserError(`--prompt-file: file not found: ${path}`);
    prompt = readFileSync(path, 'utf8');
    if (prompt.length === 0) throw new UserError(`--prompt-file: ${path} is empty`);
  } else if (flags.prompt === '-') {
    prompt = readFileSync(0, 'utf8');
    if (prompt.length === 0) throw new UserError('--prompt -: stdin was empty');
  } else {
    if (flags.prompt === undefined || flags.prompt.length === 0) {
      throw new UserError(
        '--prompt TEXT is required (a non-empty prompt; --prompt - reads stdin, --prompt-file FILE a file)',
      );
    }
    prompt = flags.prompt;
  }
  return prompt;
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
    .option('--prompt <text>', "the text to continue ('-': read it from stdin)")
    .option('--prompt-file <file>', 'read the prompt from this file')
    .option('--stop <text...>', 'stop when the output contains any of these strings (not printed)')
    .option(
      '--keep-special-tokens',
      'print special tokens such as <|endoftext|> (default: left out)',
    )
    .option('--max-new-tokens <n>', 'tokens to generate', '100')
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', '0.8')
    .option('--top-k <k>', 'sample from the k most likely tokens')
    .option('--top-p <p>', 'sample from the smallest set of tokens with probability >= p')
    .option('--seed <s>', 'sampling seed (same seed, same text)', '0')
    .option(
      '--num-samples <n>',
      'samples generated side by side in one batch (sample k uses seed + k - 1)',
      '1',
    )
    .option('--set <key=value>', SET_FLAG_HELP, collect)
    .addOption(backendOption())
    .action(
      action(async (flags: GenerateFlags) => {
        const promptText = readPrompt(flags);
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
        const numSamples = parseIntFlag('--num-samples', flags.numSamples, { min: 1 });
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
          const prompt = Array.from(tokenizer.encode(promptText));
          if (prompt.length === 0) throw new UserError('the prompt encodes to no tokens');
          const tooLarge = prompt.find((id) => id >= model.config.n_vocab);
          if (tooLarge !== undefined) {
            throw new UserError(
              `the tokenizer (${tokenizerPath}) gave id ${tooLarge} but the model's vocabulary has ${model.config.n_vocab} tokens; put the matching tokenizer.json in the checkpoint directory`,
            );
          }
          const eos = tokenizer.specialTokens.eos;
          const streamerOptions = {
            ...(flags.stop ? { stop: flags.stop } : {}),
            ...(flags.keepSpecialTokens ? { keepSpecialTokens: true } : {}),
          };
          // one sample streams to stdout; several are collected and printed when all are done
          const texts = Array.from({ length: numSamples }, () => promptText);
          if (numSamples === 1) process.stdout.write(promptText);
          const streamers = texts.map(
            (_, sample) =>
              new TextStreamer(
                tokenizer,
                numSamples === 1
                  ? (text) => process.stdout.write(text)
                  : (text) => {
                      texts[sample] += text;
                    },
                streamerOptions,
              ),
          );
          const started = performance.now();
          const samples = model.generateSamples(prompt, {
            numSamples,
            maxNewTokens,
            temperature,
            ...(topK === undefined ? {} : { topK }),
            ...(topP === undefined ? {} : { topP }),
            seed,
            ...(eos === undefined ? {} : { stopTokens: [eos] }),
            onToken: (id, sample) => streamers[sample]?.push(id),
            shouldStop: (sample) => streamers[sample]?.stopped === true,
          });
          for (const streamer of streamers) streamer.flush();
          if (numSamples === 1) {
            process.stdout.write('\n');
          } else {
            texts.forEach((text, sample) => {
              process.stdout.write(`--- sample ${sample + 1} of ${numSamples} ---\n${text}\n`);
            });
          }
          const seconds = (performance.now() - started) / 1000;
          const tokens = samples.reduce((sum, sample) => sum + sample.length, 0);
          const what = numSamples === 1 ? '' : `${numSamples} samples, `;
          process.stderr.write(
            `${what}${tokens} tokens in ${seconds.toFixed(2)} s (${(tokens / Math.max(seconds, 1e-9)).toFixed(1)} tokens/s, prompt ${prompt.length} tokens)\n`,
          );
        } finally {
          model.dispose();
        }
      }),
    );
}
