// Appends tokenized documents to shard files and records the document index. Documents never
// span two shard files; a new file starts when the next document would overflow the current one.
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from './errors';
import { INDEX_FILE, type ShardFile, type TokenDtype, shardFileName } from './shard-format';

export class ShardWriter {
  readonly shards: ShardFile[] = [];
  private fd: number | null = null;
  private offsets = new Float64Array(1024);
  private documents = 0;
  private tokens = 0;

  constructor(
    private readonly dir: string,
    readonly dtype: TokenDtype,
    private readonly tokensPerShard: number,
  ) {}

  get numDocuments(): number {
    return this.documents;
  }

  get numTokens(): number {
    return this.tokens;
  }

  /** Appends one document's ids. */
  append(ids: Uint32Array): void {
    const current = this.shards[this.shards.length - 1];
    if (!current || (current.documents > 0 && current.tokens + ids.length > this.tokensPerShard))
      this.startShard();
    const shard = this.shards[this.shards.length - 1] as ShardFile;
    let bytes: Uint8Array;
    if (this.dtype === 'uint16') {
      const narrow = new Uint16Array(ids.length);
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i] as number;
        if (id > 0xffff) throw new DataError(`token id ${id} does not fit the uint16 shard dtype`);
        narrow[i] = id;
      }
      bytes = new Uint8Array(narrow.buffer);
    } else {
      bytes = new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
    }
    let written = 0;
    while (written < bytes.length)
      written += writeSync(this.fd as number, bytes, written, bytes.length - written);
    shard.documents++;
    shard.tokens += ids.length;
    shard.bytes += bytes.length;
    this.documents++;
    this.tokens += ids.length;
    if (this.documents + 1 > this.offsets.length) {
      const grown = new Float64Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    this.offsets[this.documents] = this.tokens;
  }

  private startShard(): void {
    if (this.fd !== null) closeSync(this.fd);
    const file = shardFileName(this.shards.length);
    this.fd = openSync(join(this.dir, file), 'w');
    this.shards.push({
      file,
      firstDocument: this.documents,
      documents: 0,
      firstToken: this.tokens,
      tokens: 0,
      bytes: 0,
    });
  }

  /** Closes the last shard and writes the document index; returns the index size in bytes. */
  finish(): number {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    const index = new BigUint64Array(this.documents + 1);
    for (let i = 0; i <= this.documents; i++) index[i] = BigInt(this.offsets[i] as number);
    const fd = openSync(join(this.dir, INDEX_FILE), 'w');
    try {
      writeSync(fd, new Uint8Array(index.buffer));
    } finally {
      closeSync(fd);
    }
    return index.byteLength;
  }

  /** Closes without finishing (after an error). */
  abort(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
