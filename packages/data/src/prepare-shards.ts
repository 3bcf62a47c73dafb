// Tokenizes a corpus into shards (see shard-format.ts) with a pool of worker threads. The main
// thread streams documents, sends batches to the workers and writes results in corpus order, so
// memory stays bounded by the batches in flight. Re-running with the same inputs is a no-op;
// a directory made with another tokenizer or from other inputs is an error, never a silent mix.
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { Tokenizer, defaultTokenizerPath } from '@baka/tokenizer';
import { asyncBufferFromFile, parquetMetadataAsync, parquetSchema } from 'hyparquet';
import { type ResolveOptions, type ResolvedCorpus, resolveCorpus } from './corpora';
import { type Encoder, createEncoderPool } from './encoder-pool';
import { DataError } from './errors';
import { readDocuments } from './readers';
import {
  INDEX_FILE,
  MANIFEST_FILE,
  SHARD_FORMAT,
  SHARD_FORMAT_VERSION,
  type ShardManifest,
  dtypeForVocabulary,
  readManifest,
} from './shard-format';
import { openShards } from './shard-reader';
import { ShardWriter } from './shard-writer';
import { type DocumentRange, type SplitName, trailingSplits } from './token-documents';

export interface PrepareProgress {
  documents: number;
  tokens: number;
  /** UTF-8 bytes of text tokenized so far. */
  bytes: number;
  /** Estimated total text bytes (file sizes; uncompressed text column size for parquet). */
  totalBytes?: number;
}

export interface PrepareOptions extends ResolveOptions {
  /** A corpus name ('tinyshakespeare', 'wikitext-103', 'wikitext-2'), a path, or a resolved corpus. */
  corpus: string | ResolvedCorpus;
  /** tokenizer.json (default: the bundled GPT-NeoX-20B tokenizer). */
  tokenizerPath?: string;
  outDir: string;
  /**
   * Worker threads; 1 = tokenize on this thread. Default: one per 4 MB of text, at most one per
   * core (starting a worker costs more than tokenizing a small corpus like Tiny Shakespeare).
   */
  threads?: number;
  /** Maximum tokens per shard file (default 2^27). */
  tokensPerShard?: number;
  /** Replace shards of another corpus/tokenizer in outDir instead of failing. */
  overwrite?: boolean;
  onProgress?: (progress: PrepareProgress) => void;
  /**
   * Tokenize with this instead of a tokenizer.json (custom tokenizers, tests). `hash` identifies
   * it in the manifest; ids must be < vocabSize.
   */
  encoder?: { encode: Encoder; hash: string; vocabSize: number };
}

export interface PreparedShards extends ShardManifest {
  /** True when outDir already held these shards and nothing was done. */
  reused: boolean;
}

/** Text bytes per worker thread when the thread count is automatic. */
const BYTES_PER_THREAD = 4 * 1024 * 1024;

function defaultThreads(totalBytes: number): number {
  return Math.max(1, Math.min(availableParallelism(), Math.floor(totalBytes / BYTES_PER_THREAD)));
}

/** Text bytes per batch sent to a worker. */
const BATCH_BYTES = 256 * 1024;

function fileIdentity(corpus: ResolvedCorpus) {
  return corpus.parts.flatMap((part) =>
    part.source.files.map((path) => {
      const stat = statSync(path);
      return { path: resolve(path), size: stat.size, mtimeMs: Math.floor(stat.mtimeMs) };
    }),
  );
}

function fingerprint(
  corpus: ResolvedCorpus,
  files: ShardManifest['corpus']['files'],
  tokensPerShard: number,
): string {
  const identity = {
    formatVersion: SHARD_FORMAT_VERSION,
    files,
    parts: corpus.parts.map((part) => ({
      ...part.source,
      files: part.source.files.map((f) => resolve(f)),
      split: part.split,
    })),
    validFraction: corpus.validFraction,
    tokensPerShard,
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex');
}

/** Text bytes a file will yield, for the ETA (parquet: uncompressed size of the text column). */
async function estimatedTextBytes(path: string, textField: string): Promise<number> {
  if (extname(path).toLowerCase() !== '.parquet') return statSync(path).size;
  try {
    const metadata = await parquetMetadataAsync(await asyncBufferFromFile(path));
    const index = parquetSchema(metadata).children.findIndex(
      (child) => child.element.name === textField,
    );
    let total = 0;
    for (const group of metadata.row_groups) {
      total += Number(group.columns[index]?.meta_data?.total_uncompressed_size ?? 0);
    }
    return total || statSync(path).size;
  } catch {
    return statSync(path).size; // the reader reports unreadable files with a proper message
  }
}

const tokenizers = new Map<string, Tokenizer>();

/** Loads a tokenizer.json once per (path, size, mtime) in this process. */
function loadTokenizer(path: string): Tokenizer {
  const stat = statSync(path);
  const key = `${path}\0${stat.size}\0${stat.mtimeMs}`;
  let tokenizer = tokenizers.get(key);
  if (!tokenizer) {
    tokenizer = Tokenizer.fromFile(path);
    tokenizers.set(key, tokenizer);
  }
  return tokenizer;
}

function shortHash(hash: string): string {
  return `${hash.slice(0, 12)}…`;
}

/** Whether `name` is a file this module writes into a shard directory. */
function isShardFile(name: string): boolean {
  return (
    /^tokens-\d{5}\.bin$/.test(name) ||
    name === INDEX_FILE ||
    name === MANIFEST_FILE ||
    name === `${MANIFEST_FILE}.tmp`
  );
}

/** Removes files this module writes (a stale, incomplete run), leaving anything else alone. */
function clearShardFiles(dir: string): void {
  for (const name of readdirSync(dir)) if (isShardFile(name)) rmSync(join(dir, name));
}

/** Whether `path` is `dir` itself or lies inside it. */
function isWithin(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Refuses an output directory that would mix shards into something else: a file, a directory of
 * the input corpus (or inside one), or a non-empty directory that holds no shards of ours.
 */
function checkShardTarget(
  outDir: string,
  corpus: ResolvedCorpus,
  corpusArgument: string | ResolvedCorpus,
): void {
  const inputDirs =
    typeof corpusArgument === 'string' &&
    existsSync(corpusArgument) &&
    statSync(corpusArgument).isDirectory()
      ? [resolve(corpusArgument)]
      : [];
  for (const part of corpus.parts) {
    for (const file of part.source.files) {
      if (isWithin(resolve(file), outDir) && isShardFile(basename(file))) {
        throw new DataError(
          `${outDir} holds the input file ${file}; choose another --out directory`,
        );
      }
    }
  }
  const inside = inputDirs.find((dir) => isWithin(outDir, dir));
  if (inside) {
    throw new DataError(
      `${outDir} is inside the input corpus ${inside}; write the shards outside the corpus`,
    );
  }
  if (!existsSync(outDir)) return;
  if (!statSync(outDir).isDirectory()) {
    throw new DataError(`${outDir} is a file, not a directory; --out needs a directory`);
  }
  const foreign = readdirSync(outDir).find((name) => !isShardFile(name));
  if (foreign !== undefined && !existsSync(join(outDir, MANIFEST_FILE))) {
    throw new DataError(
      `${outDir} is not empty and holds no shards (it holds '${foreign}'); choose a new or empty directory`,
    );
  }
}

export async function prepareShards(options: PrepareOptions): Promise<PreparedShards> {
  const started = performance.now();
  const corpus =
    typeof options.corpus === 'string' ? resolveCorpus(options.corpus, options) : options.corpus;
  const tokensPerShard = options.tokensPerShard ?? 2 ** 27;
  if (!Number.isInteger(tokensPerShard) || tokensPerShard < 1) {
    throw new DataError(`tokensPerShard must be a positive integer, got ${tokensPerShard}`);
  }
  let tokenizerPath: string | undefined;
  let identity: { hash: string; vocabSize: number };
  if (options.encoder) {
    identity = { hash: options.encoder.hash, vocabSize: options.encoder.vocabSize };
  } else {
    tokenizerPath = resolve(options.tokenizerPath ?? defaultTokenizerPath());
    if (!existsSync(tokenizerPath))
      throw new DataError(`tokenizer file not found: ${tokenizerPath}`);
    const tokenizer = loadTokenizer(tokenizerPath);
    identity = { hash: tokenizer.hash, vocabSize: tokenizer.vocabSize };
  }
  const outDir = resolve(options.outDir);
  checkShardTarget(outDir, corpus, options.corpus);
  const files = fileIdentity(corpus);
  const corpusFingerprint = fingerprint(corpus, files, tokensPerShard);

  const existing = readManifest(outDir);
  if (existing && !options.overwrite) {
    if (existing.tokenizer.hash !== identity.hash) {
      throw new DataError(
        `${outDir} holds shards made with tokenizer ${shortHash(existing.tokenizer.hash)}${existing.tokenizer.path ? ` (${existing.tokenizer.path})` : ''}, not ${shortHash(identity.hash)}${tokenizerPath ? ` (${tokenizerPath})` : ''}; use another --out directory or delete it`,
      );
    }
    if (existing.corpus.fingerprint !== corpusFingerprint) {
      throw new DataError(
        `${outDir} holds shards of different inputs (${existing.corpus.description}); the corpus or its options changed. Use another --out directory or delete it`,
      );
    }
    let complete = true;
    try {
      openShards(outDir).close(); // checks every file against the manifest
    } catch (error) {
      if (!(error instanceof DataError)) throw error;
      complete = false; // damaged output of the same inputs: rebuild it below
    }
    if (complete) return { ...existing, reused: true };
  }
  mkdirSync(outDir, { recursive: true });
  clearShardFiles(outDir);

  let totalBytes = 0;
  for (const part of corpus.parts) {
    for (const file of part.source.files)
      totalBytes += await estimatedTextBytes(file, part.source.textField ?? 'text');
  }
  options.onProgress?.({ documents: 0, tokens: 0, bytes: 0, totalBytes });
  const pool = options.encoder
    ? { encode: options.encoder.encode, threads: 1, close: async () => {} }
    : await createEncoderPool(tokenizerPath as string, {
        threads: options.threads ?? defaultThreads(totalBytes),
        tokenizer: loadTokenizer(tokenizerPath as string),
      });
  const dtype = dtypeForVocabulary(identity.vocabSize);
  const writer = new ShardWriter(outDir, dtype, tokensPerShard);
  const partRanges: Array<{ split: SplitName; range: DocumentRange }> = [];
  let textBytes = 0;
  try {
    const inFlight: Array<Promise<{ ids: Uint32Array[]; bytes: number }>> = [];
    const maxInFlight = pool.threads * 2;
    const drainOne = async () => {
      const { ids, bytes } = await (inFlight.shift() as Promise<{
        ids: Uint32Array[];
        bytes: number;
      }>);
      for (const document of ids) {
        for (let i = 0; i < document.length; i++) {
          if ((document[i] as number) >= identity.vocabSize) {
            throw new DataError(
              `token id ${document[i]} is outside the tokenizer's vocabulary of ${identity.vocabSize}`,
            );
          }
        }
        writer.append(document);
      }
      textBytes += bytes;
      options.onProgress?.({
        documents: writer.numDocuments,
        tokens: writer.numTokens,
        bytes: textBytes,
        totalBytes,
      });
    };
    for (const part of corpus.parts) {
      // Everything before this part must be written to know where the part starts.
      while (inFlight.length > 0) await drainOne();
      const start = writer.numDocuments;
      let batch: string[] = [];
      let batchBytes = 0;
      const send = () => {
        const texts = batch;
        const bytes = batchBytes;
        inFlight.push(pool.encode(texts).then((ids) => ({ ids, bytes })));
        batch = [];
        batchBytes = 0;
      };
      for await (const document of readDocuments(part.source)) {
        batch.push(document);
        batchBytes += Buffer.byteLength(document, 'utf8');
        if (batchBytes >= BATCH_BYTES) {
          send();
          while (inFlight.length >= maxInFlight) await drainOne();
        }
      }
      if (batch.length > 0) send();
      while (inFlight.length > 0) await drainOne();
      partRanges.push({ split: part.split, range: { start, end: writer.numDocuments } });
    }
  } catch (error) {
    writer.abort();
    throw error;
  } finally {
    await pool.close();
  }
  const indexBytes = writer.finish();

  const splits: Partial<Record<SplitName, DocumentRange>> = {};
  for (const { split, range } of partRanges) {
    const known = splits[split];
    splits[split] = known ? { start: known.start, end: range.end } : range;
  }
  if (!splits.valid && corpus.validFraction > 0 && splits.train) {
    const train = splits.train;
    const held = trailingSplits(train.end - train.start, corpus.validFraction);
    if (held.valid) {
      splits.train = { start: train.start, end: train.start + held.valid.start };
      splits.valid = { start: train.start + held.valid.start, end: train.end };
    }
  }
  const manifest: ShardManifest = {
    format: SHARD_FORMAT,
    formatVersion: SHARD_FORMAT_VERSION,
    tokenizer: { ...identity, ...(tokenizerPath ? { path: tokenizerPath } : {}) },
    corpus: {
      name: corpus.name,
      description: corpus.description,
      fingerprint: corpusFingerprint,
      files,
    },
    dtype,
    numDocuments: writer.numDocuments,
    numTokens: writer.numTokens,
    numTextBytes: textBytes,
    splits,
    index: { file: INDEX_FILE, bytes: indexBytes },
    shards: writer.shards,
    createdAt: new Date().toISOString(),
    seconds: (performance.now() - started) / 1000,
  };
  const manifestPath = join(outDir, MANIFEST_FILE);
  writeFileSync(`${manifestPath}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(`${manifestPath}.tmp`, manifestPath);
  return { ...manifest, reused: false };
}
