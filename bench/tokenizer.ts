// Tokenizer benchmark: @baka/tokenizer against Hugging Face `tokenizers` (Python binding of the
// Rust library) in the same run, encoding Tiny Shakespeare with the GPT-NeoX-20B tokenizer.
//   single: the whole corpus as one text on one thread (run 1 starts with an empty word cache)
//   batch:  the corpus split into paragraphs; ours on worker threads (all cores), HF with Rayon
// Runs alternate between the two sides so both see the same machine load; wall-clock and CPU
// seconds are both reported (CPU time is steadier on a shared machine). Prints a table with
// tokens/s and ratios to HF single-thread, writes bench/results/tokenizer.json.
//
//   node --conditions=@baka/source --import tsx bench/tokenizer.ts [--runs N] [--no-python]
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  closeParallelEncoders,
  defaultTokenizerPath,
  encodeBatchParallel,
  Tokenizer,
} from '@baka/tokenizer';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CORPUS = join(ROOT, 'packages/data/corpora/tinyshakespeare.txt');
const OUT = join(ROOT, 'bench/results/tokenizer.json');

interface Sample {
  tokens: number;
  wall: number;
  cpu: number;
}

interface Row {
  implementation: string;
  mode: string;
  threads: number;
  tokens: number;
  wallSeconds: number;
  cpuSeconds: number;
  tokensPerSecond: number;
  ratioToHfSingleWall: number | null;
  ratioToHfSingleCpu: number | null;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function measure(encode: () => number | Promise<number>): Promise<Sample> {
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const tokens = await encode();
  const wall = (performance.now() - start) / 1000;
  const cpuUsed = process.cpuUsage(cpuStart);
  return { tokens, wall, cpu: (cpuUsed.user + cpuUsed.system) / 1e6 };
}

/** The Python side: a child process answering `single` / `batch` commands with timings. */
class PythonSide {
  private readonly lines: AsyncIterator<string>;
  readonly info: Promise<{ version: string; threads: number } | null>;

  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    this.info = this.next().catch(() => null) as Promise<{
      version: string;
      threads: number;
    } | null>;
  }

  static start(): PythonSide {
    const child = spawn('python3', [
      join(ROOT, 'bench/tokenizer_hf.py'),
      defaultTokenizerPath(),
      CORPUS,
    ]);
    child.stderr.on('data', (chunk) => process.stderr.write(chunk));
    child.on('error', () => {});
    return new PythonSide(child);
  }

  private async next(): Promise<unknown> {
    const line = await this.lines.next();
    if (line.done) throw new Error('python tokenizers side exited');
    return JSON.parse(line.value);
  }

  async run(command: 'single' | 'batch'): Promise<Sample> {
    this.child.stdin.write(`${command}\n`);
    return (await this.next()) as Sample;
  }

  close(): void {
    this.child.stdin.end('quit\n');
  }
}

function table(rows: Row[]): string {
  const header = [
    'implementation',
    'mode',
    'threads',
    'tokens',
    'wall s',
    'cpu s',
    'tokens/s',
    'vs HF (wall)',
    'vs HF (cpu)',
  ];
  const ratio = (value: number | null) => (value === null ? '—' : `${value.toFixed(2)}x`);
  const cells = rows.map((row) => [
    row.implementation,
    row.mode,
    String(row.threads),
    String(row.tokens),
    row.wallSeconds.toFixed(3),
    row.cpuSeconds.toFixed(3),
    `${(row.tokensPerSecond / 1e6).toFixed(2)}M`,
    ratio(row.ratioToHfSingleWall),
    ratio(row.ratioToHfSingleCpu),
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
      runs: { type: 'string', default: '7' },
      'no-python': { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 2) throw new Error('--runs expects an integer >= 2');
  const text = readFileSync(CORPUS, 'utf8');
  const paragraphs = text.split('\n\n');
  const json = readFileSync(defaultTokenizerPath(), 'utf8');
  const threads = availableParallelism();
  const python = values['no-python'] ? null : PythonSide.start();
  const info = python ? await python.info : null;
  if (python && !info) process.stderr.write('python tokenizers unavailable: HF side skipped\n');
  const hf = info ? python : null;

  const loadStart = performance.now();
  const tokenizer = Tokenizer.fromJSON(json);
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const samples = {
    oursSingle: [] as Sample[],
    oursBatch: [] as Sample[],
    hfSingle: [] as Sample[],
    hfBatch: [] as Sample[],
  };
  for (let run = 0; run < runs; run++) {
    samples.oursSingle.push(await measure(() => tokenizer.encode(text).length));
    if (hf) samples.hfSingle.push(await hf.run('single'));
  }
  for (let run = 0; run < runs; run++) {
    samples.oursBatch.push(
      await measure(async () =>
        (await encodeBatchParallel(json, paragraphs, { threads })).reduce(
          (sum, ids) => sum + ids.length,
          0,
        ),
      ),
    );
    if (hf) samples.hfBatch.push(await hf.run('batch'));
  }
  closeParallelEncoders();
  hf?.close();

  const summarize = (list: Sample[], from: number) => ({
    tokens: list[0]!.tokens,
    wall: median(list.slice(from).map((sample) => sample.wall)),
    cpu: median(list.slice(from).map((sample) => sample.cpu)),
  });
  const hfSingle = hf ? summarize(samples.hfSingle, 1) : null;
  const row = (
    implementation: string,
    mode: string,
    threadCount: number,
    sample: { tokens: number; wall: number; cpu: number },
  ): Row => ({
    implementation,
    mode,
    threads: threadCount,
    tokens: sample.tokens,
    wallSeconds: sample.wall,
    cpuSeconds: sample.cpu,
    tokensPerSecond: sample.tokens / sample.wall,
    ratioToHfSingleWall: hfSingle
      ? sample.tokens / sample.wall / (hfSingle.tokens / hfSingle.wall)
      : null,
    ratioToHfSingleCpu:
      hfSingle && threadCount === 1
        ? sample.tokens / sample.cpu / (hfSingle.tokens / hfSingle.cpu)
        : null,
  });
  const rows: Row[] = [
    row('@baka/tokenizer', 'single, run 1 (cold cache)', 1, samples.oursSingle[0]!),
    row('@baka/tokenizer', 'single, median of runs 2+', 1, summarize(samples.oursSingle, 1)),
    row('@baka/tokenizer', 'batch, run 1 (starts workers)', threads, samples.oursBatch[0]!),
    row('@baka/tokenizer', 'batch, median of runs 2+', threads, summarize(samples.oursBatch, 1)),
  ];
  if (hf && info) {
    const name = `HF tokenizers ${info.version}`;
    rows.push(
      row(name, 'single, run 1', 1, samples.hfSingle[0]!),
      row(name, 'single, median of runs 2+', 1, hfSingle!),
      row(name, 'batch, median of runs 2+', info.threads, summarize(samples.hfBatch, 1)),
    );
  }
  const oursRow = rows[1]!;
  const coldRow = rows[0]!;
  const summary =
    hfSingle === null
      ? 'HF side skipped'
      : `single thread, @baka/tokenizer vs HF tokenizers: ${oursRow.ratioToHfSingleWall!.toFixed(2)}x ` +
        `(wall) / ${oursRow.ratioToHfSingleCpu!.toFixed(2)}x (cpu) warm; ` +
        `${coldRow.ratioToHfSingleWall!.toFixed(2)}x / ${coldRow.ratioToHfSingleCpu!.toFixed(2)}x on run 1`;
  process.stdout.write(
    `Tokenizer benchmark: GPT-NeoX-20B tokenizer on Tiny Shakespeare (${text.length} characters), ` +
      `${runs} alternating runs, ${threads} threads, load average ${loadavg()[0]!.toFixed(1)}\n` +
      `@baka/tokenizer load: ${loadSeconds.toFixed(3)} s\n\n${table(rows)}\n\n${summary}\n`,
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
        samples,
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
