import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultTokenizerPath, Tokenizer } from '@baka/tokenizer';
import { describe, expect, it } from 'vitest';
import { openCorpusDocuments } from './corpus-documents';

describe('openCorpusDocuments', () => {
  it('tokenizes once into the cache, reuses it, and re-tokenizes when the corpus changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baka-corpus-'));
    const corpus = join(dir, 'corpus.txt');
    writeFileSync(
      corpus,
      'First paragraph here.\n\nSecond one, longer than the first.\n\nThird.\n',
    );
    const cacheDir = join(dir, 'cache');
    const messages: string[] = [];
    const options = {
      corpus,
      tokenizerPath: defaultTokenizerPath(),
      cacheDir,
      onProgress: (m: string) => messages.push(m),
    };
    const first = await openCorpusDocuments(options);
    const tokenizer = Tokenizer.fromFile(defaultTokenizerPath());
    const all = Array.from({ length: first.numDocuments }, (_, i) =>
      tokenizer.decode(Array.from(first.document(i))),
    );
    expect(all.join('')).toContain('Second one, longer than the first.');
    expect(messages.some((m) => m.startsWith('tokenized'))).toBe(true);
    expect(readdirSync(cacheDir)).toHaveLength(1);

    messages.length = 0;
    const again = await openCorpusDocuments(options);
    expect(again.numTokens).toBe(first.numTokens);
    expect(messages).toEqual([]);

    writeFileSync(corpus, 'A different corpus entirely, with new words.\n\nAnd more.\n');
    const changed = await openCorpusDocuments(options);
    const text = Array.from({ length: changed.numDocuments }, (_, i) =>
      tokenizer.decode(Array.from(changed.document(i))),
    ).join('');
    expect(text).toContain('A different corpus entirely');
    expect(text).not.toContain('Second one');
  });
});
