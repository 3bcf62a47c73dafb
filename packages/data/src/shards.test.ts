import { mkdirSync, readdirSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer, defaultTokenizerPath } from '@baka/tokenizer';
import { beforeAll, describe, expect, it } from 'vitest';
import { articleBatches } from './article-batches';
import { defaultCorpusPath } from './corpora';
import { type PrepareProgress, prepareShards } from './prepare-shards';
import { readDocuments } from './readers';
import { openShards } from './shard-reader';
import { collect, temporaryDirectory, writeFile } from './test-files';

const tokenizer = Tokenizer.fromFile(defaultTokenizerPath());
const fixtures = fileURLToPath(new URL('./__fixtures__/', import.meta.url));
const wikitextSample = join(fixtures, 'wikitext-sample.raw');

/** A byte-level stand-in tokenizer (id = byte + offset) for dtype and identity tests. */
function byteEncoder(offset: number, hash: string, vocabSize: number) {
  return {
    hash,
    vocabSize,
    encode: async (texts: string[]) =>
      texts.map((text) => Uint32Array.from(Buffer.from(text, 'utf8'), (b) => b + offset)),
  };
}

describe('prepareShards + openShards', () => {
  const tinyDir = temporaryDirectory('shards-tiny');
  const progress: PrepareProgress[] = [];
  beforeAll(async () => {
    await prepareShards({
      corpus: 'tinyshakespeare',
      outDir: tinyDir,
      threads: 2, // worker threads, running from the TypeScript sources under vitest
      tokensPerShard: 100_000,
      onProgress: (p) => progress.push(p),
    });
  });

  it('opening checks every id against a smaller vocabulary (a model n_vocab) too', () => {
    const reader = openShards(tinyDir);
    let largest = 0;
    for (let i = 0; i < reader.numDocuments; i++) {
      for (const id of reader.document(i)) largest = Math.max(largest, id);
    }
    reader.close();
    openShards(tinyDir, { vocabSize: largest + 1 }).close();
    expect(() => openShards(tinyDir, { vocabSize: largest })).toThrow(
      new RegExp(
        `tokens-\\d+\\.bin: token id ${largest} \\(token \\d+ of the file\\) is outside the vocabulary 0\\.\\.${largest - 1} of the model \\(${largest} tokens\\)`,
      ),
    );
  });

  it('tinyshakespeare: decoded documents equal the corpus documents and the file', async () => {
    const reader = openShards(tinyDir);
    const { manifest } = reader;
    expect(manifest.tokenizer.hash).toBe(tokenizer.hash);
    expect(manifest.dtype).toBe('uint16');
    const text = readFileSync(defaultCorpusPath(), 'utf8');
    const expected = await collect(
      readDocuments({ files: [defaultCorpusPath()], format: 'paragraphs', linesPerDocument: 200 }),
    );
    expect(reader.numDocuments).toBe(expected.length);
    const decoded = expected.map((_, i) => tokenizer.decode(reader.document(i)));
    expect(decoded).toEqual(expected);
    expect(decoded.join('')).toBe(text);
    expect(reader.numTokens).toBe(
      Array.from({ length: reader.numDocuments }, (_, i) => reader.documentLength(i)).reduce(
        (a, b) => a + b,
      ),
    );
    // Several shard files; no document crosses a file boundary.
    expect(manifest.shards.length).toBeGreaterThan(2);
    for (const shard of manifest.shards) {
      expect(reader.documentStart(shard.firstDocument)).toBe(shard.firstToken);
      expect(shard.tokens).toBeLessThanOrEqual(100_000);
    }
    // Validation split: the last 10% of documents.
    const n = reader.numDocuments;
    const valid = Math.ceil(n * 0.1);
    expect(manifest.splits).toEqual({
      train: { start: 0, end: n - valid },
      valid: { start: n - valid, end: n },
    });
    // Progress started at zero with the total known, and reached the end.
    expect(progress[0]).toEqual({
      documents: 0,
      tokens: 0,
      bytes: 0,
      totalBytes: statSync(defaultCorpusPath()).size,
    });
    const last = progress[progress.length - 1];
    expect(last?.tokens).toBe(reader.numTokens);
    expect(last?.documents).toBe(n);
    expect(last?.bytes).toBe(Buffer.byteLength(text));
    expect(last?.totalBytes).toBe(statSync(defaultCorpusPath()).size);
    reader.close();
  });

  it('reads any token range, across shard files, without the whole shard', () => {
    const reader = openShards(tinyDir);
    // The expected stream: each document encoded on its own, concatenated.
    const documents = Array.from({ length: reader.numDocuments }, (_, i) => reader.document(i));
    const all = new Uint32Array(reader.numTokens);
    let at = 0;
    for (const doc of documents) {
      all.set(doc, at);
      at += doc.length;
    }
    expect(tokenizer.encode(tokenizer.decode(documents[3]!), { addSpecialTokens: false })).toEqual(
      documents[3],
    );
    const boundary = reader.manifest.shards[1]!.firstToken;
    for (const [start, end] of [
      [0, 10],
      [boundary - 5, boundary + 5],
      [reader.numTokens - 3, reader.numTokens],
      [1234, 1234],
    ] as const) {
      expect(Array.from(reader.tokens(start, end))).toEqual(Array.from(all.subarray(start, end)));
    }
    expect(() => reader.tokens(0, reader.numTokens + 1)).toThrow(/outside/);
    expect(() => reader.document(reader.numDocuments)).toThrow(/out of range/);
    // Batches straight from the reader.
    const [batch] = articleBatches(reader, { seed: 1 });
    expect(batch?.rows).toBe(5);
    reader.close();
  });

  it('re-running with the same inputs is a no-op', async () => {
    const manifestBefore = statSync(join(tinyDir, 'manifest.json')).mtimeMs;
    const shardBefore = statSync(join(tinyDir, 'tokens-00000.bin')).mtimeMs;
    const calls: PrepareProgress[] = [];
    const result = await prepareShards({
      corpus: 'tinyshakespeare',
      outDir: tinyDir,
      threads: 1,
      tokensPerShard: 100_000,
      onProgress: (p) => calls.push(p),
    });
    expect(result.reused).toBe(true);
    expect(calls).toEqual([]);
    expect(statSync(join(tinyDir, 'manifest.json')).mtimeMs).toBe(manifestBefore);
    expect(statSync(join(tinyDir, 'tokens-00000.bin')).mtimeMs).toBe(shardBefore);
  });

  it('a different tokenizer or different inputs in the same directory is an error', async () => {
    await expect(
      prepareShards({
        corpus: 'tinyshakespeare',
        outDir: tinyDir,
        tokensPerShard: 100_000,
        encoder: byteEncoder(0, 'bytes-v1', 256),
      }),
    ).rejects.toThrow(
      new RegExp(`${tinyDir} holds shards made with tokenizer ${tokenizer.hash.slice(0, 12)}`),
    );
    await expect(
      prepareShards({ corpus: wikitextSample, outDir: tinyDir, threads: 1 }),
    ).rejects.toThrow(/holds shards of different inputs/);
  });

  it('refuses a file, a directory of other files and a directory inside the corpus; they stay as they were', async () => {
    const root = temporaryDirectory('shards-refuse');
    const corpusDir = join(root, 'corpus');
    mkdirSync(corpusDir);
    writeFile(corpusDir, 'a.txt', 'first document\n\nsecond document\n');
    const user = join(root, 'papers');
    mkdirSync(user);
    writeFile(user, 'draft.tex', 'mine');
    const file = writeFile(root, 'file.txt', 'a file');
    const encoder = byteEncoder(0, 'bytes-v1', 256);
    const attempt = (outDir: string, corpus = corpusDir) =>
      prepareShards({ corpus, outDir, encoder, validFraction: 0 });
    await expect(attempt(user)).rejects.toThrow(
      `${user} is not empty and holds no shards (it holds 'draft.tex'); choose a new or empty directory`,
    );
    await expect(attempt(file)).rejects.toThrow(`${file} is a file, not a directory`);
    await expect(attempt(corpusDir)).rejects.toThrow(
      `${corpusDir} is inside the input corpus ${corpusDir}`,
    );
    await expect(attempt(join(corpusDir, 'shards'))).rejects.toThrow(/is inside the input corpus/);
    expect(readdirSync(user)).toEqual(['draft.tex']);
    expect(readdirSync(corpusDir)).toEqual(['a.txt']);
    expect(readFileSync(file, 'utf8')).toBe('a file');
    // Negative control: a new directory next to the corpus, and then the same one again, work.
    const out = join(root, 'shards');
    expect((await attempt(out)).numDocuments).toBeGreaterThan(0);
    expect((await attempt(out)).reused).toBe(true);
  });

  it('a wikitext file round-trips article by article', async () => {
    const dir = temporaryDirectory('shards-wiki');
    const manifest = await prepareShards({
      corpus: wikitextSample,
      outDir: dir,
      threads: 1,
      validFraction: 0,
    });
    expect(manifest.numDocuments).toBe(3);
    expect(manifest.splits).toEqual({ train: { start: 0, end: 3 } });
    const reader = openShards(dir);
    const articles = await collect(readDocuments(wikitextSample));
    expect(articles.map((_, i) => tokenizer.decode(reader.document(i)))).toEqual(articles);
    expect(articles.map((_, i) => tokenizer.decode(reader.document(i))).join('')).toBe(
      readFileSync(wikitextSample, 'utf8'),
    );
    reader.close();
  });

  it('uses uint32 when the vocabulary exceeds 65535', async () => {
    const dir = temporaryDirectory('shards-u32');
    const corpus = writeFile(
      temporaryDirectory('u32-corpus'),
      'docs.jsonl',
      '{"text":"héllo"}\n{"text":"world"}\n',
    );
    const manifest = await prepareShards({
      corpus,
      outDir: dir,
      validFraction: 0,
      encoder: byteEncoder(70_000, 'big-v1', 70_256),
    });
    expect(manifest.dtype).toBe('uint32');
    const reader = openShards(dir);
    expect(Array.from(reader.document(0))).toEqual(
      Array.from(Buffer.from('héllo'), (b) => b + 70_000),
    );
    expect(statSync(join(dir, 'tokens-00000.bin')).size).toBe(4 * manifest.numTokens);
    reader.close();
  });

  it('a truncated shard or index is a clear error naming the file', async () => {
    const dir = temporaryDirectory('shards-trunc');
    const corpus = writeFile(
      temporaryDirectory('trunc-corpus'),
      'docs.jsonl',
      '{"text":"alpha beta"}\n{"text":"gamma delta"}\n',
    );
    await prepareShards({
      corpus,
      outDir: dir,
      validFraction: 0,
      encoder: byteEncoder(0, 'bytes-v1', 256),
    });
    const shard = join(dir, 'tokens-00000.bin');
    truncateSync(shard, statSync(shard).size - 2);
    expect(() => openShards(dir)).toThrow(
      `${shard} is truncated: 40 bytes, the manifest says 42; prepare the shards again`,
    );
    // A reader opened before the truncation reports it on read.
    const dir2 = temporaryDirectory('shards-trunc2');
    await prepareShards({
      corpus,
      outDir: dir2,
      validFraction: 0,
      encoder: byteEncoder(0, 'bytes-v1', 256),
    });
    const reader = openShards(dir2);
    truncateSync(join(dir2, 'tokens-00000.bin'), 10);
    expect(() => reader.document(1)).toThrow(
      new RegExp(`${join(dir2, 'tokens-00000.bin')} is truncated`),
    );
    reader.close();
    truncateSync(join(dir2, 'documents.idx'), 8);
    expect(() => openShards(dir2)).toThrow(`${join(dir2, 'documents.idx')} is truncated`);
    // Preparing the same inputs again rebuilds the damaged directory.
    const rebuilt = await prepareShards({
      corpus,
      outDir: dir2,
      validFraction: 0,
      encoder: byteEncoder(0, 'bytes-v1', 256),
    });
    expect(rebuilt.reused).toBe(false);
    expect(Buffer.from(openShards(dir2).document(1)).toString()).toBe('gamma delta');
    expect(() => openShards(temporaryDirectory('empty'))).toThrow(
      /no shards in .*run `baka data prepare` first/,
    );
  });
});
