import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultCorpusPath, resolveCorpus, TINYSHAKESPEARE_LINES_PER_DOCUMENT } from './corpora';
import { readDocuments } from './readers';
import { collect, temporaryDirectory, writeFile } from './test-files';

describe('resolveCorpus', () => {
  it('tinyshakespeare: whole speeches grouped into documents of >= 200 lines, losslessly', async () => {
    const corpus = resolveCorpus('tinyshakespeare');
    expect(corpus.validFraction).toBe(0.1);
    expect(corpus.parts.length).toBe(1);
    const docs = await collect(readDocuments(corpus.parts[0]!.source));
    const text = readFileSync(defaultCorpusPath(), 'utf8');
    expect(docs.join('')).toBe(text);
    expect(docs.length).toBeGreaterThan(150);
    expect(docs.length).toBeLessThan(250);
    for (const doc of docs.slice(0, -1)) {
      const lines = doc.split('\n').length - 1;
      expect(lines).toBeGreaterThanOrEqual(TINYSHAKESPEARE_LINES_PER_DOCUMENT);
      expect(doc.endsWith('\n\n')).toBe(true); // ends after a whole speech
    }
    expect(docs[1]?.startsWith('\n')).toBe(false);
  });

  it('a path resolves with its detected format; unknown names are errors', () => {
    const dir = temporaryDirectory('corpora');
    const path = writeFile(dir, 'wiki.valid.tokens', ' = A = \n');
    const corpus = resolveCorpus(path, { validFraction: 0 });
    expect(corpus.parts[0]?.source.format).toBe('wikitext');
    expect(corpus.validFraction).toBe(0);
    expect(() => resolveCorpus('tinyshakespear')).toThrow(
      /unknown corpus 'tinyshakespear': expected tinyshakespeare, wikitext-103, wikitext-2 or a path/,
    );
  });
});
