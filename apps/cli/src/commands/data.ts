// `baka data`: download named corpora, tokenize a corpus into shards, and describe shards.
//   baka data fetch NAME [--cache-dir DIR] [--endpoint URL]
//   baka data prepare --corpus NAME|PATH --out DIR [--tokenizer FILE] [--format F] [--text-field F] ...
//   baka data info --shards DIR [--json]
import { availableParallelism } from 'node:os';
import {
  CORPUS_FORMATS,
  CORPUS_NAMES,
  type CorpusFormat,
  DATASETS,
  type ShardReader,
  fetchDataset,
  openShards,
  prepareShards,
} from '@baka/data';
import type { Command } from 'commander';
import { UserError, action, parseIntFlag, parseNumberFlag, resolveUserPath } from '../cli-kit';
import { ProgressBar, formatCount } from '../progress';

export interface PrepareFlags {
  corpus: string;
  out: string;
  tokenizer?: string;
  format: string;
  textField?: string;
  separator?: string;
  linesPerDocument?: string;
  validFraction?: string;
  threads?: string;
  cacheDir?: string;
  force?: boolean;
}

function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}

/** A corpus flag is a name when it is one, otherwise a path relative to where the user typed it. */
function corpusArgument(value: string): string {
  return (CORPUS_NAMES as readonly string[]).includes(value) ? value : resolveUserPath(value);
}

/** The reader flags `--format`, `--text-field` and `--separator`, checked. */
export function readerOptions(flags: {
  format?: string | undefined;
  textField?: string | undefined;
  separator?: string | undefined;
}): { format?: CorpusFormat | 'auto'; textField?: string; separator?: string } {
  const format = flags.format ?? 'auto';
  if (format !== 'auto' && !CORPUS_FORMATS.includes(format as CorpusFormat)) {
    throw new UserError(`--format expects auto, ${CORPUS_FORMATS.join(', ')}; got '${format}'`);
  }
  return {
    format: format as CorpusFormat | 'auto',
    ...(flags.textField ? { textField: flags.textField } : {}),
    ...(flags.separator ? { separator: flags.separator.replaceAll('\\n', '\n') } : {}),
  };
}

export async function runPrepare(flags: PrepareFlags): Promise<void> {
  const read = readerOptions(flags);
  const validFraction =
    flags.validFraction === undefined
      ? undefined
      : parseNumberFlag('--valid-fraction', flags.validFraction, { min: 0 });
  if (validFraction !== undefined && validFraction >= 1) {
    throw new UserError(
      `--valid-fraction expects a number in [0, 1), got '${flags.validFraction}'`,
    );
  }
  const outDir = resolveUserPath(flags.out);
  let bar: ProgressBar | null = null;
  const started = performance.now();
  const result = await prepareShards({
    corpus: corpusArgument(flags.corpus),
    outDir,
    ...read,
    ...(flags.tokenizer ? { tokenizerPath: resolveUserPath(flags.tokenizer) } : {}),
    ...(flags.linesPerDocument
      ? {
          linesPerDocument: parseIntFlag('--lines-per-document', flags.linesPerDocument, {
            min: 1,
          }),
        }
      : {}),
    ...(validFraction !== undefined ? { validFraction } : {}),
    ...(flags.threads ? { threads: threadsFlag(flags.threads) } : {}),
    ...(flags.cacheDir ? { cacheDir: resolveUserPath(flags.cacheDir) } : {}),
    overwrite: Boolean(flags.force),
    onProgress: (progress) => {
      bar ??= new ProgressBar({ label: 'tokenizing', total: progress.totalBytes, unit: 'B' });
      const seconds = (performance.now() - started) / 1000;
      const rate = seconds > 0 ? progress.tokens / seconds : 0;
      bar.update(
        progress.bytes,
        `| ${formatCount(progress.tokens)} tokens ${formatCount(rate)} tokens/s | ${formatCount(progress.documents)} docs`,
      );
    },
  });
  (bar as ProgressBar | null)?.finish();
  if (result.reused) {
    process.stdout.write(
      `${outDir}: already up to date (${formatCount(result.numTokens)} tokens, ${result.numDocuments} documents); nothing to do\n`,
    );
    return;
  }
  process.stdout.write(
    `wrote ${result.shards.length} shard file(s) to ${outDir}: ${result.numDocuments} documents, ${result.numTokens} tokens (${result.dtype}) in ${result.seconds.toFixed(1)} s, ${formatCount(result.numTokens / Math.max(result.seconds, 1e-9))} tokens/s\n`,
  );
}

export async function runFetch(
  name: string,
  flags: { cacheDir?: string; endpoint?: string },
): Promise<void> {
  if (!DATASETS[name]) {
    throw new UserError(`unknown dataset '${name}': expected ${Object.keys(DATASETS).join(', ')}`);
  }
  let bar: ProgressBar | null = null;
  let current = -1;
  const result = await fetchDataset(name, {
    ...(flags.cacheDir ? { cacheDir: resolveUserPath(flags.cacheDir) } : {}),
    ...(flags.endpoint ? { endpoint: flags.endpoint } : {}),
    onProgress: (progress) => {
      if (progress.fileIndex !== current) {
        bar?.finish();
        current = progress.fileIndex;
        const label = `[${progress.fileIndex + 1}/${progress.files}] ${progress.file.split('/').pop()}`;
        bar = new ProgressBar({ label, total: progress.totalBytes, unit: 'B' });
      }
      (bar as ProgressBar | null)?.update(
        progress.bytes,
        progress.phase === 'verify' ? 'verifying' : '',
      );
    },
  });
  (bar as ProgressBar | null)?.finish();
  for (const file of result.files) {
    process.stdout.write(
      `${file.reused ? 'cached    ' : 'downloaded'} ${file.localPath} (${formatBytes(file.size)}, ${file.algorithm} ${file.digest.slice(0, 16)}… verified)\n`,
    );
  }
  process.stdout.write(`${name} is ready: baka data prepare --corpus ${name} --out DIR\n`);
}

export function runInfo(flags: { shards: string; json?: boolean }): void {
  const reader = openShards(resolveUserPath(flags.shards));
  try {
    process.stdout.write(
      flags.json ? `${JSON.stringify(reader.manifest, null, 2)}\n` : describeShards(reader),
    );
  } finally {
    reader.close();
  }
}

/** Human-readable summary of a shard directory. */
export function describeShards(reader: ShardReader): string {
  const { manifest } = reader;
  const lines = [
    `shards     ${reader.directory}`,
    `corpus     ${manifest.corpus.description}`,
    `tokenizer  ${manifest.tokenizer.hash}${manifest.tokenizer.path ? ` (${manifest.tokenizer.path})` : ''}, vocabulary ${manifest.tokenizer.vocabSize}`,
    `format     v${manifest.formatVersion}, ${manifest.dtype}, ${manifest.shards.length} shard file(s), ${formatBytes(manifest.shards.reduce((sum, s) => sum + s.bytes, 0))}`,
    `documents  ${manifest.numDocuments}`,
    `tokens     ${manifest.numTokens} (${(manifest.numTokens / Math.max(manifest.numDocuments, 1)).toFixed(1)} per document, ${(manifest.numTextBytes / Math.max(manifest.numTokens, 1)).toFixed(2)} bytes per token)`,
  ];
  for (const [split, range] of Object.entries(manifest.splits)) {
    if (!range) continue;
    const start =
      range.start < reader.numDocuments ? reader.documentStart(range.start) : reader.numTokens;
    const end =
      range.end < reader.numDocuments ? reader.documentStart(range.end) : reader.numTokens;
    lines.push(
      `${split.padEnd(10)} ${range.end - range.start} documents [${range.start}, ${range.end}), ${end - start} tokens`,
    );
  }
  lines.push(`created    ${manifest.createdAt} in ${manifest.seconds.toFixed(1)} s`);
  return `${lines.join('\n')}\n`;
}

/** `--threads N`, capped at the cores (each worker holds its own tokenizer and buffers). */
function threadsFlag(value: string): number {
  const threads = parseIntFlag('--threads', value, { min: 1 });
  const cores = availableParallelism();
  if (threads <= cores) return threads;
  process.stderr.write(
    `note: --threads ${threads} capped at ${cores}, the cores of this machine\n`,
  );
  return cores;
}

export function register(program: Command): void {
  const data = program.command('data').description('Corpora and tokenized shards');

  data
    .command('fetch')
    .description(
      `Download a dataset into the cache (${Object.keys(DATASETS).join(', ')}); resumable, checksum-verified`,
    )
    .argument('<name>', 'dataset name')
    .option(
      '--cache-dir <dir>',
      'dataset cache (default $BAKA_CACHE_DIR/datasets or ~/.cache/baka/datasets)',
    )
    .option(
      '--endpoint <url>',
      'Hugging Face Hub base URL (default $BAKA_HF_ENDPOINT or https://huggingface.co)',
    )
    .action(action(runFetch));

  data
    .command('prepare')
    .description('Tokenize a corpus into binary shards on all cores')
    .requiredOption('--corpus <name|path>', `${CORPUS_NAMES.join(', ')}, or a file/directory`)
    .requiredOption('--out <dir>', 'output directory for the shards')
    .option('--tokenizer <file>', 'tokenizer.json (default: the bundled GPT-NeoX-20B tokenizer)')
    .option('--format <format>', `auto, ${CORPUS_FORMATS.join(', ')}`, 'auto')
    .option('--text-field <name>', 'jsonl field / parquet column holding the text (default text)')
    .option(
      '--separator <text>',
      'text format: split files into documents at this string (\\n allowed)',
    )
    .option('--lines-per-document <n>', 'paragraphs format: minimum lines per document')
    .option(
      '--valid-fraction <f>',
      'last fraction of documents held out as valid, when the corpus has no valid files (default 0.1)',
    )
    .option('--threads <n>', 'tokenizer worker threads (default and at most: the cores)')
    .option('--cache-dir <dir>', 'dataset cache for named corpora')
    .option('--force', 'replace shards of another corpus or tokenizer in --out')
    .action(action(runPrepare));

  data
    .command('info')
    .description('Describe prepared shards: manifest, counts, splits')
    .requiredOption('--shards <dir>', 'shard directory')
    .option('--json', 'print the manifest as JSON')
    .action(action(runInfo));
}
