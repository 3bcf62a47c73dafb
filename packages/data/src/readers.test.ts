import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parquetWriteFile } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { isWikitextTitle } from './document-splitters';
import { detectFormat, documentSource, parquetColumns, readDocuments } from './readers';
import { collect, temporaryDirectory, writeFile } from './test-files';

const fixtures = fileURLToPath(new URL('./__fixtures__/', import.meta.url));
const wikitextSample = join(fixtures, 'wikitext-sample.raw');
const dir = temporaryDirectory('readers');

describe('wikitext', () => {
  it('recognises top-level titles only', () => {
    expect(isWikitextTitle(' = Valkyria Chronicles III = \n')).toBe(true);
    expect(isWikitextTitle('= A =')).toBe(true);
    expect(isWikitextTitle(' = = Section = = \n')).toBe(false);
    expect(isWikitextTitle(' = = = Sub = = = \n')).toBe(false);
    expect(isWikitextTitle(' The sum is 1 + 1 = 2 . \n')).toBe(false);
    expect(isWikitextTitle(' \n')).toBe(false);
  });

  it('splits a raw file into articles at top-level titles; sections stay inside', async () => {
    const articles = await collect(readDocuments(wikitextSample));
    expect(articles.length).toBe(3);
    expect(articles.map((a) => a.split('\n').find((line) => line.trim() !== ''))).toEqual([
      ' = Alpha Station = ',
      ' = Beta River = ',
      ' = Gamma Bay = ',
    ]);
    expect(articles[0]).toContain(' = = History = = ');
    expect(articles[0]).toContain(' = = = Early years = = = ');
    expect(articles[1]).toContain(' = = Course = = ');
    expect(articles[1]?.startsWith(' = Beta River = \n')).toBe(true);
    // Nothing is lost: the articles concatenated are the file.
    expect(articles.join('')).toBe(readFileSync(wikitextSample, 'utf8'));
  });

  it('reads Hugging Face style parquet rows (one line per row, blank rows empty) as wikitext', async () => {
    const raw = readFileSync(wikitextSample, 'utf8');
    const rows = raw
      .split('\n')
      .slice(0, -1)
      .map((line) => (line.trim() === '' ? '' : `${line}\n`));
    const path = join(dir, 'wikitext-sample-train.parquet');
    parquetWriteFile({
      filename: path,
      columnData: [{ name: 'text', data: rows, type: 'STRING' }],
    });
    expect(detectFormat(path)).toBe('wikitext');
    const articles = await collect(readDocuments(path));
    expect(articles.length).toBe(3);
    expect(articles[2]).toBe(
      ' = Gamma Bay = \n\n Gamma Bay is the last article of this sample ; it has no sections . \n\n',
    );
  });
});

describe('parquet', () => {
  const path = join(dir, 'docs.parquet');
  parquetWriteFile({
    filename: path,
    columnData: [
      { name: 'id', data: [1, 2, 3, 4], type: 'INT32' },
      { name: 'content', data: ['first document', null, 'third — ünïcode', ''], type: 'STRING' },
    ],
    rowGroupSize: 2,
  });

  it('yields one document per row of the text column, across row groups', async () => {
    expect(await parquetColumns(path)).toEqual(['id', 'content']);
    const docs = await collect(readDocuments(path, { textField: 'content' }));
    expect(docs).toEqual(['first document', 'third — ünïcode']);
  });

  it('a missing text column is an error naming the file and the columns', async () => {
    await expect(collect(readDocuments(path))).rejects.toThrow(
      `${path}: no column 'text' (columns: id, content)`,
    );
  });

  it('a file that is not parquet is an error naming it', async () => {
    const fake = writeFile(dir, 'fake.parquet', 'this is not parquet at all');
    await expect(collect(readDocuments(fake, { format: 'parquet' }))).rejects.toThrow(
      /fake.parquet: not a readable parquet file/,
    );
  });
});

describe('jsonl', () => {
  it('yields the text field of each line', async () => {
    const path = writeFile(dir, 'docs.jsonl', '{"text":"one","n":1}\n\n{"text":"two\\nlines"}\n');
    expect(await collect(readDocuments(path))).toEqual(['one', 'two\nlines']);
  });

  it('errors name the file, line and field', async () => {
    const missing = writeFile(dir, 'missing.jsonl', '{"text":"ok"}\n{"body":"x","id":2}\n');
    await expect(collect(readDocuments(missing))).rejects.toThrow(
      `${missing}:2: no 'text' field (fields: body, id)`,
    );
    const broken = writeFile(dir, 'broken.jsonl', '{"text":"ok"}\n{"text":\n');
    await expect(collect(readDocuments(broken))).rejects.toThrow(`${broken}:2: not valid JSON`);
  });
});

describe('plain text', () => {
  it('one document per file in a directory, in name order', async () => {
    const corpus = temporaryDirectory('text-dir');
    writeFile(corpus, 'b.txt', 'second');
    writeFile(corpus, 'a.txt', 'first\n');
    writeFile(corpus, '.hidden', 'ignored');
    writeFile(corpus, 'c.txt', '');
    expect(await collect(readDocuments(corpus))).toEqual(['first\n', 'second']);
    expect(documentSource(corpus).files.map((f) => f.slice(corpus.length + 1))).toEqual([
      'a.txt',
      'b.txt',
      'c.txt',
    ]);
  });

  it('splits on a separator, also across read chunks', async () => {
    const path = writeFile(dir, 'sep.txt', 'alpha<|sep|>beta<|sep|><|sep|>gamma');
    expect(await collect(readDocuments(path, { separator: '<|sep|>' }))).toEqual([
      'alpha',
      'beta',
      'gamma',
    ]);
  });

  it('groups paragraphs into documents of at least N lines, losslessly', async () => {
    const text = 'A:\nline one\nline two\n\nB:\nhello\n\nC:\nbye\n\nD:\nend\n';
    const path = writeFile(dir, 'play.txt', text);
    const docs = await collect(readDocuments(path, { format: 'paragraphs', linesPerDocument: 5 }));
    expect(docs).toEqual(['A:\nline one\nline two\n\nB:\nhello\n\n', 'C:\nbye\n\nD:\nend\n']);
    expect(docs.join('')).toBe(text);
  });
});

describe('errors', () => {
  it('invalid UTF-8 reports the file and byte offset', async () => {
    const bytes = new Uint8Array([...new TextEncoder().encode('héllo wörld '), 0xff, 0x41]);
    const path = writeFile(dir, 'bad.txt', bytes);
    await expect(collect(readDocuments(path))).rejects.toThrow(
      `${path}: invalid UTF-8 at byte offset 14`,
    );
    // A truncated multi-byte sequence at the end of the file.
    const truncated = writeFile(
      dir,
      'truncated.raw',
      new Uint8Array([0x20, 0x3d, 0x0a, 0xe2, 0x82]),
    );
    await expect(collect(readDocuments(truncated))).rejects.toThrow(
      `${truncated}: invalid UTF-8 at byte offset 3`,
    );
  });

  it('finds the offset when the bad sequence straddles read chunks', async () => {
    const { readTextChunks } = await import('./utf8');
    // 'ab€' = 61 62 e2 82 ac, then a broken 3-byte sequence e2 82 41 at offset 5.
    const path = writeFile(
      dir,
      'straddle.txt',
      new Uint8Array([0x61, 0x62, 0xe2, 0x82, 0xac, 0xe2, 0x82, 0x41, 0x42]),
    );
    for (const chunk of [1, 2, 3, 4, 6, 64]) {
      await expect(collect(readTextChunks(path, chunk)), `chunk ${chunk}`).rejects.toThrow(
        /byte offset 5$/,
      );
    }
    const good = writeFile(dir, 'good.txt', new TextEncoder().encode('ab€ü𝄞z'));
    for (const chunk of [1, 2, 3, 5])
      expect((await collect(readTextChunks(good, chunk))).join('')).toBe('ab€ü𝄞z');
  });

  it('an empty corpus and a missing file are errors naming the file', async () => {
    const empty = writeFile(dir, 'empty.txt', '');
    await expect(collect(readDocuments(empty))).rejects.toThrow(
      `the corpus ${empty} (text) is empty`,
    );
    const onlySeparators = writeFile(dir, 'seps.txt', '@@@@');
    await expect(collect(readDocuments(onlySeparators, { separator: '@@' }))).rejects.toThrow(
      /is empty/,
    );
    expect(() => documentSource(join(dir, 'nope.txt'))).toThrow(
      `file not found: ${join(dir, 'nope.txt')}`,
    );
  });
});

describe('splitOnSeparator', () => {
  it('finds separators that straddle chunk boundaries and long documents without separators', async () => {
    const { splitOnSeparator } = await import('./document-splitters');
    async function* chunks(parts: string[]) {
      yield* parts;
    }
    expect(
      await collect(splitOnSeparator(chunks(['ab<', '|s', '|>cd', 'e<|s|', '>', 'f']), '<|s|>')),
    ).toEqual(['ab', 'cde', 'f']);
    const long = Array.from({ length: 200 }, (_, i) => `chunk ${i} `);
    expect(await collect(splitOnSeparator(chunks([...long, '##', 'tail']), '##'))).toEqual([
      long.join(''),
      'tail',
    ]);
  });
});
