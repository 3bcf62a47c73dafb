import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer, defaultTokenizerPath } from '@baka/tokenizer';
import { describe, expect, it } from 'vitest';
import { createEncoderPool } from './encoder-pool';
import { openShards } from './shard-reader';
import { temporaryDirectory } from './test-files';

const tokenizer = Tokenizer.fromFile(defaultTokenizerPath());
const fixtures = fileURLToPath(new URL('./__fixtures__/', import.meta.url));
const wikitextSample = join(fixtures, 'wikitext-sample.raw');

describe('createEncoderPool', () => {
  it('starts at most one worker per core, whatever is asked', async () => {
    const pool = await createEncoderPool(defaultTokenizerPath(), { threads: 64 });
    try {
      expect(pool.threads).toBe(availableParallelism());
      const [ids] = await pool.encode(['capped']);
      expect(Array.from(ids!)).toEqual(
        Array.from(tokenizer.encode('capped', { addSpecialTokens: false })),
      );
    } finally {
      await pool.close();
    }
  });

  it('worker threads encode exactly like the tokenizer, in request order', async () => {
    const pool = await createEncoderPool(defaultTokenizerPath(), { threads: 2 });
    try {
      expect(pool.threads).toBe(2);
      const texts = readFileSync(wikitextSample, 'utf8').split('\n');
      const batches = [texts.slice(0, 9), texts.slice(9, 18), texts.slice(18)];
      const results = await Promise.all(batches.map((batch) => pool.encode(batch)));
      results.forEach((ids, b) => {
        expect(ids.map((row) => Array.from(row))).toEqual(
          batches[b]!.map((text) =>
            Array.from(tokenizer.encode(text, { addSpecialTokens: false })),
          ),
        );
      });
    } finally {
      await pool.close();
    }
  });

  it('a missing tokenizer file fails the pool start with the reason', async () => {
    await expect(createEncoderPool('/nonexistent/tokenizer.json', { threads: 2 })).rejects.toThrow(
      /tokenizer worker failed to start/,
    );
  });

  it('workers run from the TypeScript sources under tsx (node --conditions=@baka/source --import tsx)', () => {
    const dir = temporaryDirectory('shards-tsx');
    const script = join(fixtures, 'prepare-from-source.ts');
    const output = execFileSync(
      process.execPath,
      ['--conditions=@baka/source', '--import', 'tsx', script, wikitextSample, dir],
      { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' },
    );
    expect(JSON.parse(output).numDocuments).toBe(3);
    const reader = openShards(dir);
    expect(reader.manifest.tokenizer.hash).toBe(tokenizer.hash);
    expect(tokenizer.decode(reader.tokens(0, reader.numTokens))).toBe(
      readFileSync(wikitextSample, 'utf8'),
    );
    reader.close();
  });
});
