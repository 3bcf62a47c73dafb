// The on-disk shard format (version 1). A shard directory holds:
//   manifest.json        written last (atomically): the directory is complete iff it exists
//   documents.idx        (numDocuments + 1) little-endian uint64 global token offsets
//   tokens-00000.bin ... token ids, little-endian uint16 (vocabulary <= 65535) or uint32;
//                        whole documents only, concatenated in document order
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from './errors';
import { readJsonFile } from './json-file';
import type { DocumentRange, SplitName } from './token-documents';

export const SHARD_FORMAT = 'baka-shards';
export const SHARD_FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const INDEX_FILE = 'documents.idx';

export type TokenDtype = 'uint16' | 'uint32';

export interface ShardFile {
  file: string;
  firstDocument: number;
  documents: number;
  firstToken: number;
  tokens: number;
  bytes: number;
}

export interface ShardManifest {
  format: typeof SHARD_FORMAT;
  formatVersion: number;
  tokenizer: { hash: string; vocabSize: number; path?: string };
  corpus: {
    name: string;
    description: string;
    /** sha256 of the inputs' identity (paths, sizes, mtimes, reader options). */
    fingerprint: string;
    files: Array<{ path: string; size: number; mtimeMs: number }>;
  };
  dtype: TokenDtype;
  numDocuments: number;
  numTokens: number;
  /** UTF-8 bytes of text tokenized. */
  numTextBytes: number;
  splits: Partial<Record<SplitName, DocumentRange>>;
  index: { file: string; bytes: number };
  shards: ShardFile[];
  createdAt: string;
  /** Seconds spent tokenizing and writing. */
  seconds: number;
}

export function bytesPerToken(dtype: TokenDtype): number {
  return dtype === 'uint16' ? 2 : 4;
}

export function dtypeForVocabulary(vocabSize: number): TokenDtype {
  return vocabSize <= 65535 ? 'uint16' : 'uint32';
}

export function shardFileName(index: number): string {
  return `tokens-${String(index).padStart(5, '0')}.bin`;
}

/** Reads and checks a manifest; errors name the file. Returns undefined when there is none. */
export function readManifest(dir: string): ShardManifest | undefined {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) return undefined;
  const manifest = readJsonFile(path, 'shard manifest') as ShardManifest;
  if (manifest?.format !== SHARD_FORMAT) throw new DataError(`${path}: not a baka shard manifest`);
  if (manifest.formatVersion !== SHARD_FORMAT_VERSION) {
    throw new DataError(
      `${path}: shard format version ${manifest.formatVersion}, this version reads ${SHARD_FORMAT_VERSION}; prepare the shards again`,
    );
  }
  return manifest;
}
