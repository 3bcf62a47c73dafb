// A corpus as tokenized documents for training, tokenized once: shards are cached under
// `<cacheDir>/<corpus>-<tokenizer digest>/` and reused by later runs (prepareShards checks the
// source files and re-tokenizes when they changed). A directory of prepared shards (written by
// `baka data prepare --out DIR`) is opened as it is, once its tokenizer is checked. The recall
// corpus (`recall[:options]`) is generated in memory, in its own vocabulary.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  DataError,
  isRecallCorpus,
  openShards,
  parseRecallCorpus,
  recallDocuments,
  recallTokenizerPath,
  prepareShards,
  type ReadOptions,
  readManifest,
  type TokenDocuments,
} from '@baka/data';
import { Tokenizer } from '@baka/tokenizer';

export interface CorpusDocumentsOptions {
  /** 'tinyshakespeare', 'wikitext-2', 'wikitext-103', a path or a directory of prepared shards. */
  corpus: string;
  tokenizerPath: string;
  /** Where cached shards live (the CLI uses `<runs-dir>/.shards`). */
  cacheDir: string;
  /** Ids must be below this (the model's n_vocab); checked when the shards are opened. */
  vocabSize?: number;
  /** How a path's files are read (format, JSONL field / parquet column, separator). */
  read?: ReadOptions;
  /** Progress messages (one line each) while tokenizing. */
  onProgress?: (message: string) => void;
}

/** The cache directory for a corpus + tokenizer pair. */
export function shardCacheDirectory(
  cacheDir: string,
  corpus: string,
  tokenizerPath: string,
): string {
  const digest = createHash('sha256')
    .update(readFileSync(tokenizerPath))
    .digest('hex')
    .slice(0, 12);
  const name = basename(corpus).replace(/[^A-Za-z0-9._-]/g, '_');
  const where = createHash('sha256').update(corpus).digest('hex').slice(0, 8);
  return join(cacheDir, `${name}-${where}-${digest}`);
}

export async function openCorpusDocuments(
  options: CorpusDocumentsOptions,
): Promise<TokenDocuments> {
  if (isRecallCorpus(options.corpus)) {
    const recall = parseRecallCorpus(options.corpus);
    if (Tokenizer.fromFile(options.tokenizerPath).hash !== recallTokenizerHash()) {
      throw new DataError(
        `${options.corpus}: the recall corpus is ids of its own vocabulary; use its tokenizer (${recallTokenizerPath()}, the default for this corpus), not ${options.tokenizerPath}`,
      );
    }
    return recallDocuments(recall);
  }
  const openOptions = options.vocabSize !== undefined ? { vocabSize: options.vocabSize } : {};
  const manifest = preparedShards(options.corpus);
  if (manifest !== undefined) {
    const hash = Tokenizer.fromFile(options.tokenizerPath).hash;
    if (manifest.tokenizer.hash !== hash) {
      throw new DataError(
        `${options.corpus} holds shards made with tokenizer ${manifest.tokenizer.hash.slice(0, 12)}${manifest.tokenizer.path ? ` (${manifest.tokenizer.path})` : ''}, but this run tokenizes with ${hash.slice(0, 12)} (${options.tokenizerPath}); prepare the shards with this run's --tokenizer`,
      );
    }
    return openShards(options.corpus, openOptions);
  }
  const outDir = shardCacheDirectory(options.cacheDir, options.corpus, options.tokenizerPath);
  let lastReport = 0;
  const prepare = (overwrite: boolean) =>
    prepareShards({
      ...options.read,
      corpus: options.corpus,
      tokenizerPath: options.tokenizerPath,
      outDir,
      overwrite,
      onProgress: (progress) => {
        const now = performance.now();
        if (now - lastReport < 2000) return;
        lastReport = now;
        const share = progress.totalBytes
          ? ` (${Math.round((100 * progress.bytes) / progress.totalBytes)}%)`
          : '';
        options.onProgress?.(
          `tokenizing ${options.corpus}: ${progress.documents} documents, ${progress.tokens} tokens${share}`,
        );
      },
    });
  let prepared: Awaited<ReturnType<typeof prepareShards>>;
  try {
    prepared = await prepare(false);
  } catch (error) {
    // The cache holds shards of an older version of the corpus files: it is ours to replace.
    if (!/different inputs|incomplete|missing/.test((error as Error).message)) throw error;
    prepared = await prepare(true);
  }
  if (!prepared.reused) options.onProgress?.(`tokenized ${options.corpus} into ${outDir}`);
  return openShards(outDir, openOptions);
}

let recallHash: string | undefined;
function recallTokenizerHash(): string {
  recallHash ??= Tokenizer.fromFile(recallTokenizerPath()).hash;
  return recallHash;
}

/** The manifest of a directory of prepared shards, or undefined when `corpus` is not one. */
function preparedShards(corpus: string): ReturnType<typeof readManifest> {
  let isDirectory = false;
  try {
    isDirectory = statSync(corpus).isDirectory();
  } catch {
    return undefined;
  }
  return isDirectory ? readManifest(corpus) : undefined;
}
