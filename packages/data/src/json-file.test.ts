import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from './errors';
import { readJsonFile } from './json-file';

const dir = mkdtempSync(join(tmpdir(), 'baka-json-file-'));

describe('readJsonFile', () => {
  it('parses the file', () => {
    const path = join(dir, 'ok.json');
    writeFileSync(path, '{"a": [1, 2]}');
    expect(readJsonFile(path, 'test file')).toEqual({ a: [1, 2] });
  });

  it('errors name the file, its description and what went wrong', () => {
    const missing = join(dir, 'missing.json');
    expect(() => readJsonFile(missing, '--flag file')).toThrow(`--flag file not found: ${missing}`);
    const directory = join(dir, 'a-directory');
    mkdirSync(directory);
    expect(() => readJsonFile(directory, '--flag file')).toThrow(
      new RegExp(`^cannot read --flag file ${directory}: .*EISDIR`),
    );
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '[1,');
    expect(() => readJsonFile(bad, '--flag file')).toThrow(
      new RegExp(`^${bad}: not valid JSON \\(`),
    );
    expect(() => readJsonFile(bad, '--flag file')).toThrow(DataError);
  });
});
