// A corpus as tokenized documents for training, tokenized once: shards are cached under
// `<cacheDir>/<corpus>-<tokenizer digest>/` and reused by later runs (prepareShards checks the
// source files and re-tokenizes when they changed).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { openShards, prepareShards, type TokenDocuments } from '@baka/data';

export interface CorpusDocumentsOptions {
  /** 'tinyshakespeare', 'wikitext-2', 'wikitext-103' or a path. */
  corpus: string;
  tokenizerPath: string;
  /** Where cached shards live (the CLI uses `<runs-dir>/.shards`). */
  cacheDir: string;
  /** Ids must be below this (the model's n_vocab); checked when the shards are opened. */
  vocabSize?: number;
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
  const outDir = shardCacheDirectory(options.cacheDir, options.corpus, options.tokenizerPath);
  let lastReport = 0;
  const prepare = (overwrite: boolean) =>
    prepareShards({
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
  return openShards(
    outDir,
    options.vocabSize !== undefined ? { vocabSize: options.vocabSize } : {},
  );
}
