// `baka tokenizer`: encode and decode with a Hugging Face tokenizer.json, and train a byte-level BPE.
//   baka tokenizer encode [--tokenizer FILE] [--input FILE] [--json]
//   baka tokenizer decode [--tokenizer FILE] [--input FILE] [--skip-special-tokens]
//   baka tokenizer train --input FILE... --vocab-size N --out FILE [--special-tokens T...] [--min-frequency N]
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { BpeTrainer, Tokenizer, defaultTokenizerPath } from '@baka/tokenizer';
import type { Command } from 'commander';
import { UserError, action, parseIntFlag, resolveUserPath } from '../cli-kit';
import { ProgressBar } from '../progress';

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** Reads `--input FILE`, or stdin without it, as UTF-8 text (a leading BOM is kept). */
function readInput(input: string | undefined): { text: string; name: string } {
  if (input === undefined) return { text: utf8.decode(readFileSync(0)), name: 'stdin' };
  const path = resolveUserPath(input);
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new UserError(`--input: file not found: ${input}`);
  }
  return { text: utf8.decode(readFileSync(path)), name: input };
}

function loadTokenizer(file: string | undefined): Tokenizer {
  if (file === undefined) return Tokenizer.fromFile(defaultTokenizerPath());
  const path = resolveUserPath(file);
  if (!existsSync(path)) throw new UserError(`--tokenizer: file not found: ${file}`);
  return Tokenizer.fromFile(path);
}

/** Token ids written as a JSON array or separated by whitespace. */
export function parseIds(text: string, source: string, vocabSize: number): number[] {
  const trimmed = text.trim();
  let values: unknown[];
  if (trimmed.startsWith('[')) {
    try {
      values = JSON.parse(trimmed);
    } catch (error) {
      throw new UserError(`${source}: not a valid JSON array of ids (${(error as Error).message})`);
    }
    if (!Array.isArray(values)) throw new UserError(`${source}: expected a JSON array of ids`);
  } else {
    values = trimmed.length === 0 ? [] : trimmed.split(/\s+/);
  }
  return values.map((value, index) => {
    const id = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new UserError(
        `${source}: id #${index + 1} is ${JSON.stringify(value)}; expected a non-negative integer`,
      );
    }
    if (id >= vocabSize) {
      throw new UserError(`${source}: id ${id} is outside the vocabulary (size ${vocabSize})`);
    }
    return id;
  });
}

function runEncode(flags: { tokenizer?: string; input?: string; json?: boolean }): void {
  const tokenizer = loadTokenizer(flags.tokenizer);
  const { text } = readInput(flags.input);
  const ids = tokenizer.encode(text);
  process.stdout.write(flags.json ? `${JSON.stringify(Array.from(ids))}\n` : `${ids.join(' ')}\n`);
}

function runDecode(flags: {
  tokenizer?: string;
  input?: string;
  skipSpecialTokens?: boolean;
  keepSpecialTokens?: boolean;
}): void {
  const tokenizer = loadTokenizer(flags.tokenizer);
  const { text, name } = readInput(flags.input);
  const source = flags.input === undefined ? name : `--input ${name}`;
  const ids = parseIds(text, source, tokenizer.vocabSize);
  process.stdout.write(tokenizer.decode(ids, { skipSpecialTokens: !flags.keepSpecialTokens }));
}

interface TrainFlags {
  input: string[];
  vocabSize: string;
  out: string;
  specialTokens?: string[];
  minFrequency?: string;
  force?: boolean;
}

function runTrain(flags: TrainFlags): void {
  const vocabSize = parseIntFlag('--vocab-size', flags.vocabSize, { min: 1 });
  const minFrequency =
    flags.minFrequency === undefined
      ? 0
      : parseIntFlag('--min-frequency', flags.minFrequency, { min: 0 });
  const specialTokens = flags.specialTokens ?? [];
  const minimum = new Set(specialTokens).size + 256;
  if (vocabSize < minimum) {
    throw new UserError(
      `--vocab-size must be at least ${minimum} (256 byte tokens + ${minimum - 256} special tokens), got ${vocabSize}`,
    );
  }
  const inputs = flags.input.map((input) => {
    const path = resolveUserPath(input);
    if (!existsSync(path) || !statSync(path).isFile()) {
      throw new UserError(`--input: file not found: ${input}`);
    }
    return path;
  });
  const out = resolveUserPath(flags.out);
  if (inputs.includes(out)) throw new UserError(`--out: ${flags.out} is one of the --input files`);
  if (existsSync(out)) {
    if (statSync(out).isDirectory()) {
      throw new UserError(`--out: ${flags.out} is a directory; give the path of a file to write`);
    }
    if (!flags.force) {
      throw new UserError(`--out: ${flags.out} already exists; add --force to replace it`);
    }
  }
  const trainer = new BpeTrainer({ vocabSize, minFrequency, specialTokens });
  const totalBytes = inputs.reduce((sum, path) => sum + statSync(path).size, 0);
  const reading = new ProgressBar({ label: 'counting words', total: totalBytes, unit: 'B' });
  let readBytes = 0;
  for (const path of inputs) {
    const bytes = readFileSync(path);
    trainer.feed(utf8.decode(bytes));
    readBytes += bytes.length;
    reading.update(readBytes, `${trainer.distinctWords} distinct words`);
  }
  reading.finish();
  const merging = new ProgressBar({ label: 'merging', total: vocabSize, unit: 'tokens' });
  let lastUpdate = 0;
  const json = trainer.train((progress) => {
    const now = performance.now();
    if (now - lastUpdate > 200 || progress.done === progress.total) {
      lastUpdate = now;
      merging.update(progress.done);
    }
  });
  merging.finish();
  const model = json.model as { vocab: Record<string, number>; merges: unknown[] };
  const temporary = `${out}.tmp-${process.pid}`;
  writeFileSync(temporary, `${JSON.stringify(json, null, 2)}\n`);
  renameSync(temporary, out);
  process.stdout.write(
    `wrote ${flags.out}: vocabulary ${Object.keys(model.vocab).length} ` +
      `(${model.merges.length} merges, ${specialTokens.length} special tokens) ` +
      `from ${trainer.distinctWords} distinct words\n`,
  );
}

export function register(program: Command): void {
  const tokenizer = program
    .command('tokenizer')
    .description('Encode, decode and train tokenizers (Hugging Face tokenizer.json)');
  tokenizer
    .command('encode')
    .description('print the token ids of a text (the whole input is one text)')
    .option('--tokenizer <file>', 'tokenizer.json (default: the bundled GPT-NeoX-20B tokenizer)')
    .option('--input <file>', 'text file to encode (default: stdin)')
    .option('--json', 'print one JSON array instead of space-separated ids')
    .action(action(runEncode));
  tokenizer
    .command('decode')
    .description('print the text of token ids (a JSON array or whitespace-separated)')
    .option('--tokenizer <file>', 'tokenizer.json (default: the bundled GPT-NeoX-20B tokenizer)')
    .option('--input <file>', 'file holding the ids (default: stdin)')
    .option(
      '--keep-special-tokens',
      'print special tokens such as <|endoftext|> (default: left out)',
    )
    .option('--skip-special-tokens', 'leave out special tokens (the default, as Hugging Face)')
    .action(action(runDecode));
  tokenizer
    .command('train')
    .description('train a byte-level BPE tokenizer (same result as Hugging Face BpeTrainer)')
    .requiredOption('--input <files...>', 'training text files (read line by line)')
    .requiredOption('--vocab-size <n>', 'vocabulary size, special and 256 byte tokens included')
    .requiredOption('--out <file>', 'where to write the tokenizer.json')
    .option('--special-tokens <tokens...>', 'special tokens, given the first ids')
    .option('--min-frequency <n>', 'do not merge pairs seen fewer times', '0')
    .option('--force', 'replace --out if it already exists')
    .action(action(runTrain));
}
