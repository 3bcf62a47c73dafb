// Data pipeline benchmark on Tiny Shakespeare with the GPT-NeoX-20B tokenizer:
//   tokenizer       raw Tokenizer.encode of every document on this thread (no I/O), with a warm
//                   word cache and with a fresh tokenizer (cold cache, as prepare starts)
//   worker pool     raw encoding on worker threads (all cores), pool already started
//   prepare         prepareShards end to end (read, tokenize, write shards + index + manifest)
//   prepare, bytes  prepareShards with a byte-identity "tokenizer": the reading/writing cost alone
//   article/window  upstream batches of 5 documents read back from the shards, cut into windows
//   packed          [8, 512] blocks at random offsets read back from the shards
// Prepare's tokens/s against the raw tokenizer's shows preparation is bounded by tokenization,
// not I/O. Prints a table and writes bench/results/data.json.
//
//   node --conditions=@baka/source --import tsx bench/data.ts [--runs N]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  articleBatches,
  createEncoderPool,
  openShards,
  packedBatches,
  prepareShards,
  readDocuments,
  resolveCorpus,
  windows,
} from '@baka/data';
import { Tokenizer, defaultTokenizerPath } from '@baka/tokenizer';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'bench/results/data.json');

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Three significant figures. */
function formatNumber(value: number): string {
  if (value === 0 || !Number.isFinite(value)) return String(value);
  const decimals = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(value))));
  return value.toFixed(decimals);
}

function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, c) =>
    Math.max(title.length, ...rows.map((row) => row[c]!.length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, c) =>
        c === 0 || c === cells.length - 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!),
      )
      .join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

interface Row {
  stage: string;
  threads: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  note: string;
}

async function timed<T>(
  runs: number,
  run: () => Promise<T> | T,
): Promise<{ result: T; seconds: number }> {
  const seconds: number[] = [];
  let result: T | undefined;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    result = await run();
    seconds.push((performance.now() - start) / 1000);
  }
  return { result: result as T, seconds: median(seconds) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
  const runs = Math.max(1, Number(values.runs));
  const threads = availableParallelism();
  const corpus = resolveCorpus('tinyshakespeare');
  const documents: string[] = [];
  for await (const doc of readDocuments(corpus.parts[0]!.source)) documents.push(doc);
  const tokenizer = Tokenizer.fromFile(defaultTokenizerPath());
  const rows: Row[] = [];
  const row = (stage: string, threadCount: number, tokens: number, seconds: number, note = '') =>
    rows.push({
      stage,
      threads: threadCount,
      tokens,
      seconds,
      tokensPerSecond: tokens / seconds,
      note,
    });

  // Raw tokenizer, this thread.
  tokenizer.encode(documents[0]!, { addSpecialTokens: false }); // warm-up
  const raw = await timed(runs, () =>
    documents.reduce(
      (sum, doc) => sum + tokenizer.encode(doc, { addSpecialTokens: false }).length,
      0,
    ),
  );
  row('tokenizer (raw encode, warm cache)', 1, raw.result, raw.seconds, 'no I/O');

  // Raw tokenizer with an empty word cache (as a fresh prepare starts); loading not timed.
  const coldSeconds: number[] = [];
  let loadSeconds = 0;
  for (let i = 0; i < runs; i++) {
    const loadStart = performance.now();
    const fresh = Tokenizer.fromFile(defaultTokenizerPath());
    loadSeconds = (performance.now() - loadStart) / 1000;
    const start = performance.now();
    for (const doc of documents) fresh.encode(doc, { addSpecialTokens: false });
    coldSeconds.push((performance.now() - start) / 1000);
  }
  row(
    'tokenizer (raw encode, cold cache)',
    1,
    raw.result,
    median(coldSeconds),
    `load ${loadSeconds.toFixed(2)} s not included`,
  );

  // Raw tokenizer on the worker pool, batches of ~256 kB like prepareShards sends.
  const startPool = performance.now();
  const pool = await createEncoderPool(defaultTokenizerPath(), { threads });
  const poolStartSeconds = (performance.now() - startPool) / 1000;
  const batches: string[][] = [];
  let batch: string[] = [];
  let bytes = 0;
  for (const doc of documents) {
    batch.push(doc);
    bytes += Buffer.byteLength(doc);
    if (bytes >= 256 * 1024) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length) batches.push(batch);
  await pool.encode(batches[0]!); // warm-up
  const pooled = await timed(runs, async () => {
    const results = await Promise.all(batches.map((b) => pool.encode(b)));
    return results.flat().reduce((sum, ids) => sum + ids.length, 0);
  });
  await pool.close();
  row(
    'worker pool (raw encode)',
    threads,
    pooled.result,
    pooled.seconds,
    `pool start ${poolStartSeconds.toFixed(2)} s not included`,
  );

  // prepareShards end to end.
  const scratch = mkdtempSync(join(tmpdir(), 'baka-bench-data-'));
  try {
    for (const threadCount of [...new Set([1, threads])]) {
      const outDir = join(scratch, `shards-${threadCount}`);
      const prepared = await timed(runs, () =>
        prepareShards({ corpus: 'tinyshakespeare', outDir, threads: threadCount, overwrite: true }),
      );
      row(
        'prepare (end to end)',
        threadCount,
        prepared.result.numTokens,
        prepared.seconds,
        threadCount > 1 ? 'includes worker start' : 'tokenizes on this thread',
      );
    }
    const byteEncoder = {
      hash: 'bytes',
      vocabSize: 256,
      encode: async (texts: string[]) =>
        texts.map((text) => Uint32Array.from(Buffer.from(text, 'utf8'))),
    };
    const ioOnly = await timed(runs, () =>
      prepareShards({
        corpus: 'tinyshakespeare',
        outDir: join(scratch, 'bytes'),
        encoder: byteEncoder,
        overwrite: true,
      }),
    );
    row(
      'prepare, byte ids (I/O only)',
      1,
      ioOnly.result.numTokens,
      ioOnly.seconds,
      '1 id per byte: read + write cost',
    );

    // Batch iteration from the shards on disk.
    const reader = openShards(join(scratch, `shards-${threads}`));
    const iterateArticles = await timed(runs, () => {
      let tokens = 0;
      for (const articles of articleBatches(reader, { seed: 1, epochs: 1 }))
        tokens += articles.rows * articles.length;
      return tokens;
    });
    row(
      'article batches (5 docs, padded)',
      1,
      iterateArticles.result,
      iterateArticles.seconds,
      'tokens incl. padding',
    );
    const iterateWindows = await timed(runs, () => {
      let tokens = 0;
      for (const articles of articleBatches(reader, { seed: 1, epochs: 1 })) {
        for (const skipFirst of [0, 256]) {
          for (const window of windows(articles, { window: 512, skipFirst }))
            tokens += window.rows * window.length;
        }
      }
      return tokens;
    });
    row(
      '+ windows (512, two passes)',
      1,
      iterateWindows.result,
      iterateWindows.seconds,
      'tokens in windows',
    );
    const iteratePacked = await timed(runs, () => {
      let tokens = 0;
      for (const block of packedBatches(reader, {
        batchSize: 8,
        length: 512,
        seed: 1,
        batches: 200,
      }))
        tokens += block.rows * block.length;
      return tokens;
    });
    row('packed batches [8, 512]', 1, iteratePacked.result, iteratePacked.seconds, '200 batches');
    reader.close();
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }

  const rawRate = raw.result / raw.seconds;
  const table = renderTable(
    ['stage', 'threads', 'tokens', 'seconds', 'tokens/s', 'vs raw 1-thread', 'note'],
    rows.map((r) => [
      r.stage,
      String(r.threads),
      String(r.tokens),
      formatNumber(r.seconds),
      formatNumber(r.tokensPerSecond),
      `${(r.tokensPerSecond / rawRate).toFixed(2)}x`,
      r.note,
    ]),
  );
  const machine = {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'unknown',
    loadAverage: loadavg()[0],
    node: process.version,
  };
  process.stdout.write(
    `Data pipeline on Tiny Shakespeare (GPT-NeoX-20B tokenizer), median of ${runs} run(s)\n`,
  );
  process.stdout.write(
    `machine: ${machine.cpus} cpus (${machine.model}), load ${machine.loadAverage?.toFixed(1)}, node ${machine.node}\n\n`,
  );
  process.stdout.write(`${table}\n`);
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(
    OUT,
    `${JSON.stringify({ date: new Date().toISOString(), runs, machine, rows }, null, 2)}\n`,
  );
  process.stdout.write(`\nwrote ${OUT}\n`);
}

await main();
