// Random access to prepared shards: any document or token range is read with positioned reads
// (fs.readSync at an offset), so opening a 100M-token corpus reads only the manifest and the
// document index and scans the token files once in 4 MB chunks. Every file's size is checked
// against the manifest when opening, and every id against the vocabulary (an id the model cannot
// embed would otherwise surface as a GatherV2 failure in the middle of training).
import { closeSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from './errors';
import { type ShardFile, type ShardManifest, bytesPerToken, readManifest } from './shard-format';
import {
  type DocumentRange,
  offsetDocuments,
  type SplitName,
  type TokenDocuments,
} from './token-documents';

export interface ShardReader extends TokenDocuments {
  readonly manifest: ShardManifest;
  readonly directory: string;
  /** Closes open file descriptors (the reader reopens them on demand). */
  close(): void;
}

function checkSize(path: string, expected: number): void {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new DataError(`shard file missing: ${path}; prepare the shards again`);
  }
  if (size !== expected) {
    throw new DataError(
      `${path} is ${size < expected ? 'truncated' : 'longer than expected'}: ${size} bytes, the manifest says ${expected}; prepare the shards again`,
    );
  }
}

/** Reads a shard file in chunks; the first id >= vocabSize is an error naming the file. */
function checkVocabulary(
  path: string,
  width: number,
  tokens: number,
  vocabSize: number,
  source: string,
): void {
  const chunkTokens = 1 << 21;
  const buffer = Buffer.allocUnsafe(Math.min(tokens, chunkTokens) * width);
  const fd = openSync(path, 'r');
  try {
    for (let start = 0; start < tokens; start += chunkTokens) {
      const count = Math.min(chunkTokens, tokens - start);
      let got = 0;
      while (got < count * width) {
        const n = readSync(fd, buffer, got, count * width - got, start * width + got);
        if (n === 0) throw new DataError(`${path} is truncated; prepare the shards again`);
        got += n;
      }
      const ids =
        width === 2
          ? new Uint16Array(buffer.buffer, buffer.byteOffset, count)
          : new Uint32Array(buffer.buffer, buffer.byteOffset, count);
      for (let i = 0; i < count; i++) {
        if ((ids[i] as number) >= vocabSize) {
          throw new DataError(
            `${path}: token id ${ids[i]} (token ${start + i} of the file) is outside the vocabulary 0..${vocabSize - 1} of ${source}; prepare the shards again with the right tokenizer`,
          );
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

export interface OpenShardsOptions {
  /**
   * Ids must be below this (e.g. the model's n_vocab); default and upper bound: the vocabulary
   * size of the tokenizer the manifest names.
   */
  vocabSize?: number;
}

export function openShards(dir: string, options: OpenShardsOptions = {}): ShardReader {
  const manifest = readManifest(dir);
  if (!manifest)
    throw new DataError(`no shards in ${dir} (no manifest.json); run \`baka data prepare\` first`);
  const width = bytesPerToken(manifest.dtype);
  const indexPath = join(dir, manifest.index.file);
  checkSize(indexPath, (manifest.numDocuments + 1) * 8);
  for (const shard of manifest.shards) checkSize(join(dir, shard.file), shard.tokens * width);
  const manifestVocabulary = manifest.tokenizer?.vocabSize;
  if (!Number.isInteger(manifestVocabulary) || manifestVocabulary < 1) {
    throw new DataError(
      `${join(dir, 'manifest.json')}: tokenizer.vocabSize must be a positive integer, got ${JSON.stringify(manifestVocabulary)}`,
    );
  }
  const limit = Math.min(manifestVocabulary, options.vocabSize ?? manifestVocabulary);
  const source =
    limit === manifestVocabulary
      ? `the tokenizer in manifest.json (${manifestVocabulary} tokens)`
      : `the model (${limit} tokens)`;
  for (const shard of manifest.shards) {
    checkVocabulary(join(dir, shard.file), width, shard.tokens, limit, source);
  }

  const raw = readFileSync(indexPath);
  const index = new BigUint64Array(raw.buffer, raw.byteOffset, manifest.numDocuments + 1);
  const offsets = Float64Array.from(index, (value) => Number(value));
  if (offsets[manifest.numDocuments] !== manifest.numTokens) {
    throw new DataError(
      `${indexPath}: the index ends at token ${offsets[manifest.numDocuments]}, the manifest says ${manifest.numTokens}`,
    );
  }
  const descriptors = new Map<string, number>();
  const shards = manifest.shards;

  const descriptor = (shard: ShardFile): number => {
    let fd = descriptors.get(shard.file);
    if (fd === undefined) {
      fd = openSync(join(dir, shard.file), 'r');
      descriptors.set(shard.file, fd);
    }
    return fd;
  };

  /** The shard holding global token `token` (binary search on firstToken). */
  const shardOf = (token: number): ShardFile => {
    let low = 0;
    let high = shards.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((shards[middle] as ShardFile).firstToken <= token) low = middle;
      else high = middle - 1;
    }
    return shards[low] as ShardFile;
  };

  const readRange = (start: number, end: number, out: Uint32Array, at: number): void => {
    let position = start;
    while (position < end) {
      const shard = shardOf(position);
      const stop = Math.min(end, shard.firstToken + shard.tokens);
      const count = stop - position;
      const buffer = Buffer.allocUnsafe(count * width);
      const fd = descriptor(shard);
      const offset = (position - shard.firstToken) * width;
      let got = 0;
      while (got < buffer.length) {
        const n = readSync(fd, buffer, got, buffer.length - got, offset + got);
        if (n === 0) {
          const size = fstatSync(fd).size;
          throw new DataError(
            `${join(dir, shard.file)} is truncated: ${size} bytes, needed bytes up to ${offset + buffer.length}; prepare the shards again`,
          );
        }
        got += n;
      }
      const values =
        width === 2
          ? new Uint16Array(buffer.buffer, buffer.byteOffset, count)
          : new Uint32Array(buffer.buffer, buffer.byteOffset, count);
      out.set(values, at + (position - start));
      position = stop;
    }
  };

  const read = (start: number, end: number): Uint32Array => {
    const out = new Uint32Array(end - start);
    readRange(start, end, out, 0);
    return out;
  };

  return {
    ...offsetDocuments(offsets, read, ` in ${dir}`),
    manifest,
    directory: dir,
    splits: manifest.splits as Partial<Record<SplitName, DocumentRange>>,
    close() {
      for (const fd of descriptors.values()) closeSync(fd);
      descriptors.clear();
    },
  };
}
