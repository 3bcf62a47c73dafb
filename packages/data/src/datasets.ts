// Named datasets downloadable from the Hugging Face Hub, and where they are cached.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { SplitName } from './token-documents';

export interface DatasetFile {
  split: SplitName;
  /** Path inside the dataset repository (also the path inside the cache directory). */
  path: string;
}

export interface DatasetSpec {
  name: string;
  /** Hugging Face dataset repository. */
  repository: string;
  /** Pinned commit, so the files (and their checksums) never change under us. */
  revision: string;
  /** Directory inside the repository listed by the checksum manifest. */
  directory: string;
  files: DatasetFile[];
  description: string;
}

// Salesforce/wikitext at the commit that converted the dataset to parquet ("Convert dataset to
// Parquet (#8)"). Each row of the `text` column is one line of the original raw file.
const WIKITEXT_REPOSITORY = 'Salesforce/wikitext';
const WIKITEXT_REVISION = 'b08601e04326c79dfdd32d625aee71d232d685c3';

export const DATASETS: Readonly<Record<string, DatasetSpec>> = {
  'wikitext-103': {
    name: 'wikitext-103',
    repository: WIKITEXT_REPOSITORY,
    revision: WIKITEXT_REVISION,
    directory: 'wikitext-103-raw-v1',
    files: [
      { split: 'train', path: 'wikitext-103-raw-v1/train-00000-of-00002.parquet' },
      { split: 'train', path: 'wikitext-103-raw-v1/train-00001-of-00002.parquet' },
      { split: 'valid', path: 'wikitext-103-raw-v1/validation-00000-of-00001.parquet' },
      { split: 'test', path: 'wikitext-103-raw-v1/test-00000-of-00001.parquet' },
    ],
    description: 'WikiText-103 (raw), ~28k Wikipedia articles, ~540 MB of text',
  },
  'wikitext-2': {
    name: 'wikitext-2',
    repository: WIKITEXT_REPOSITORY,
    revision: WIKITEXT_REVISION,
    directory: 'wikitext-2-raw-v1',
    files: [
      { split: 'train', path: 'wikitext-2-raw-v1/train-00000-of-00001.parquet' },
      { split: 'valid', path: 'wikitext-2-raw-v1/validation-00000-of-00001.parquet' },
      { split: 'test', path: 'wikitext-2-raw-v1/test-00000-of-00001.parquet' },
    ],
    description: 'WikiText-2 (raw), ~600 Wikipedia articles, ~11 MB of text',
  },
};

/**
 * The dataset cache: `override`, else `$BAKA_CACHE_DIR/datasets`, else
 * `$XDG_CACHE_HOME/baka/datasets`, else `~/.cache/baka/datasets`.
 */
export function datasetCacheDir(override?: string): string {
  if (override) return resolve(override);
  if (process.env.BAKA_CACHE_DIR) return join(resolve(process.env.BAKA_CACHE_DIR), 'datasets');
  if (process.env.XDG_CACHE_HOME)
    return join(resolve(process.env.XDG_CACHE_HOME), 'baka', 'datasets');
  return join(homedir(), '.cache', 'baka', 'datasets');
}

/** Where a dataset's files live in the cache. */
export function datasetDirectory(spec: DatasetSpec, cacheDir?: string): string {
  return join(datasetCacheDir(cacheDir), spec.name);
}

/** The Hub endpoint: `override`, else `$BAKA_HF_ENDPOINT`, else https://huggingface.co. */
export function hubEndpoint(override?: string): string {
  return (override ?? process.env.BAKA_HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
}
