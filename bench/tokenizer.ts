// Tokenizer benchmark: @baka/tokenizer against Hugging Face `tokenizers` (Python binding of the
// Rust library) in the same run, encoding Tiny Shakespeare with the GPT-NeoX-20B tokenizer.
//   single: the whole corpus as one text on one thread (first run = empty word cache, then warm)
//   batch:  the corpus split into paragraphs, ours on worker threads (all cores), HF with Rayon
// Prints a table with tokens/s and ratios to HF single-thread, writes bench/results/tokenizer.json.
//
//   node --conditions=@baka/source --import tsx bench/tokenizer.ts [--runs N] [--no-python]
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  Tokenizer,
  closeParallelEncoders,
  defaultTokenizerPath,
  encodeBatchParallel,
} from '../packages/tokenizer/src/index';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CORPUS = join(ROOT, 'packages/data/corpora/tinyshakespeare.txt');
const OUT = join(ROOT, 'bench/results/tokenizer.json');

interface Timing {
  tokens: number;
  seconds: number[];
}

interface Row {
  implementation: string;
  mode: string;
  threads: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  ratioToHfSingle: number | null;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function time(runs: number, encode: () => number | Promise<number>): Promise<Timing> {
  const seconds: number[] = [];
  let tokens = 0;
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    tokens = await encode();
    seconds.push((performance.now() - start) / 1000);
  }
  return { tokens, seconds };
}

function pythonSide(
  runs: number,
): { version: string; threads: number; single: Timing; batch: Timing } | null {
  const result = spawnSync(
    'python3',
    [join(ROOT, 'bench/tokenizer_hf.py'), defaultTokenizerPath(), CORPUS, String(runs)],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  if (result.status !== 0) {
    process.stderr.write(
      `python tokenizers unavailable, skipping the HF side:\n${result.stderr}\n`,
    );
    return null;
  }
  return JSON.parse(result.stdout);
}

function table(rows: Row[]): string {
  const header = [
    'implementation',
    'mode',
    'threads',
    'tokens',
    'seconds',
    'tokens/s',
    'vs HF single',
  ];
  const cells = rows.map((row) => [
    row.implementation,
    row.mode,
    String(row.threads),
    String(row.tokens),
    row.seconds.toFixed(3),
    `${(row.tokensPerSecond / 1e6).toFixed(2)}M`,
    row.ratioToHfSingle === null ? '—' : `${row.ratioToHfSingle.toFixed(2)}x`,
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((row) => row[column]!.length)),
  );
  const line = (values: string[]) =>
    values
      .map((value, column) =>
        column < 2 ? value.padEnd(widths[column]!) : value.padStart(widths[column]!),
      )
      .join('  ');
  return [
    line(header),
    widths.map((width) => '-'.repeat(width)).join('  '),
    ...cells.map(line),
  ].join('\n');
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '5' },
      'no-python': { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 2) throw new Error('--runs expects an integer >= 2');
  const text = readFileSync(CORPUS, 'utf8');
  const paragraphs = text.split('\n\n');
  const json = readFileSync(defaultTokenizerPath(), 'utf8');
  const threads = availableParallelism();

  const loadStart = performance.now();
  const tokenizer = Tokenizer.fromJSON(json);
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const single = await time(runs, () => tokenizer.encode(text).length);
  const batch = await time(runs, async () =>
    (await encodeBatchParallel(json, paragraphs, { threads })).reduce(
      (sum, ids) => sum + ids.length,
      0,
    ),
  );
  closeParallelEncoders();
  const hf = values['no-python'] ? null : pythonSide(runs);

  const hfSingle = hf ? hf.single.tokens / median(hf.single.seconds) : null;
  const row = (
    implementation: string,
    mode: string,
    threadCount: number,
    tokens: number,
    seconds: number,
  ): Row => ({
    implementation,
    mode,
    threads: threadCount,
    tokens,
    seconds,
    tokensPerSecond: tokens / seconds,
    ratioToHfSingle: hfSingle === null ? null : tokens / seconds / hfSingle,
  });
  const rows: Row[] = [
    row('@baka/tokenizer', 'single, first run', 1, single.tokens, single.seconds[0]!),
    row('@baka/tokenizer', 'single, median', 1, single.tokens, median(single.seconds.slice(1))),
    row('@baka/tokenizer', 'batch, first run', threads, batch.tokens, batch.seconds[0]!),
    row('@baka/tokenizer', 'batch, median', threads, batch.tokens, median(batch.seconds.slice(1))),
  ];
  if (hf) {
    rows.push(
      row(
        `HF tokenizers ${hf.version}`,
        'single, first run',
        1,
        hf.single.tokens,
        hf.single.seconds[0]!,
      ),
      row(
        `HF tokenizers ${hf.version}`,
        'single, median',
        1,
        hf.single.tokens,
        median(hf.single.seconds),
      ),
      row(
        `HF tokenizers ${hf.version}`,
        'batch, median',
        hf.threads,
        hf.batch.tokens,
        median(hf.batch.seconds),
      ),
    );
  }
  const ours = single.tokens / median(single.seconds.slice(1));
  const summary =
    hfSingle === null
      ? 'HF side skipped'
      : `single-thread: @baka/tokenizer ${(ours / hfSingle).toFixed(2)}x HF tokenizers (warm median); ` +
        `${(single.tokens / single.seconds[0]! / hfSingle).toFixed(2)}x on the first run`;
  process.stdout.write(
    `Tokenizer benchmark: GPT-NeoX-20B tokenizer on Tiny Shakespeare (${text.length} characters), ` +
      `${runs} runs, ${threads} threads, load average ${loadavg()[0]!.toFixed(1)}\n` +
      `tokenizer load: ${loadSeconds.toFixed(3)} s\n\n${table(rows)}\n\n${summary}\n`,
  );
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(
    OUT,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        node: process.version,
        cpu: cpus()[0]?.model ?? 'unknown',
        threads,
        loadAverage: loadavg(),
        corpus: 'packages/data/corpora/tinyshakespeare.txt',
        tokenizer: 'packages/tokenizer/assets/gpt-neox-20b.tokenizer.json',
        runs,
        loadSeconds,
        rows,
        raw: { ours: { single, batch }, hf },
        summary,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`wrote ${OUT}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
}
