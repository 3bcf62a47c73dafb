import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer, defaultTokenizerPath, trainBpe } from '@baka/tokenizer';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/baka.js', import.meta.url));
const trainCorpus = fileURLToPath(
  new URL('../../../../packages/tokenizer/src/__fixtures__/train-corpus.txt', import.meta.url),
);
const work = mkdtempSync(join(tmpdir(), 'baka-cli-tokenizer-'));

function baka(args: string[], input?: string) {
  const result = spawnSync(process.execPath, [bin, 'tokenizer', ...args], {
    encoding: 'utf8',
    input,
    timeout: 120_000,
    env: { ...process.env, INIT_CWD: work },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('baka tokenizer', () => {
  const tokenizer = Tokenizer.fromFile(defaultTokenizerPath());
  const text = '\ufeffROMEO:  But soft!\r\n\tWhat light — 日本語 😀 <|endoftext|>\u0085end\n';

  it('encode --json prints exactly one JSON array with the ids of the whole input', () => {
    writeFileSync(join(work, 'input.txt'), text);
    const result = baka(['encode', '--input', 'input.txt', '--json']);
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(Array.from(tokenizer.encode(text)));
  });

  it('encode reads stdin and prints space-separated ids; decode turns them back into the text', () => {
    const encoded = baka(['encode'], text);
    expect(encoded.status, encoded.stderr).toBe(0);
    expect(encoded.stdout).toBe(`${Array.from(tokenizer.encode(text)).join(' ')}\n`);
    const decoded = baka(['decode', '--keep-special-tokens'], encoded.stdout);
    expect(decoded.status, decoded.stderr).toBe(0);
    expect(decoded.stdout).toBe(text);
    // Special tokens are left out by default, as Hugging Face `tokenizers` decodes.
    const ids = JSON.stringify([0, 12092, 1]);
    expect(baka(['decode'], ids).stdout).toBe('Hello');
    expect(baka(['decode', '--skip-special-tokens'], ids).stdout).toBe('Hello');
    expect(baka(['decode', '--keep-special-tokens'], ids).stdout).toBe(
      '<|endoftext|>Hello<|padding|>',
    );
  });

  it('train writes the tokenizer.json the library trains, with a progress bar, and it encodes', () => {
    const out = join(work, 'trained.json');
    const result = baka([
      'train',
      '--input',
      trainCorpus,
      '--vocab-size',
      '400',
      '--out',
      'trained.json',
      '--special-tokens',
      '<|endoftext|>',
      '<|padding|>',
      '--min-frequency',
      '2',
    ]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(
      /wrote trained\.json: vocabulary 400 \(142 merges, 2 special tokens\)/,
    );
    expect(result.stderr).toMatch(/merging/);
    const written = JSON.parse(readFileSync(out, 'utf8'));
    const expected = trainBpe([readFileSync(trainCorpus, 'utf8')], {
      vocabSize: 400,
      minFrequency: 2,
      specialTokens: ['<|endoftext|>', '<|padding|>'],
    });
    expect(written).toEqual(expected);
    const encoded = baka(['encode', '--tokenizer', 'trained.json', '--json'], 'hello there');
    expect(JSON.parse(encoded.stdout)).toEqual(
      Array.from(Tokenizer.fromJSON(expected).encode('hello there')),
    );
  });

  it('train --out never replaces a file without --force, nor a directory or an input', () => {
    const train = (out: string, ...more: string[]) =>
      baka(['train', '--input', trainCorpus, '--vocab-size', '300', '--out', out, ...more]);
    writeFileSync(join(work, 'mine.json'), 'precious');
    const refused = train('mine.json');
    expect(refused.status).toBe(2);
    expect(refused.stderr).toBe(
      'baka: --out: mine.json already exists; add --force to replace it\n',
    );
    expect(readFileSync(join(work, 'mine.json'), 'utf8')).toBe('precious');
    const directory = train('.');
    expect(directory.status).toBe(2);
    expect(directory.stderr).toMatch(/^baka: --out: \. is a directory/);
    const input = train(trainCorpus, '--force');
    expect(input.status).toBe(2);
    expect(input.stderr).toMatch(/is one of the --input files/);
    // Negative control: with --force the file is replaced by a tokenizer.
    const forced = train('mine.json', '--force');
    expect(forced.status, forced.stderr).toBe(0);
    expect(Tokenizer.fromFile(join(work, 'mine.json')).vocabSize).toBe(300);
  });

  it('names the flag or file in errors and exits with 2', () => {
    const missing = baka(['encode', '--input', 'missing.txt']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe('baka: --input: file not found: missing.txt\n');
    const badTokenizer = baka(['encode', '--tokenizer', 'nope.json'], 'x');
    expect(badTokenizer.stderr).toMatch(/--tokenizer: file not found: nope\.json/);
    writeFileSync(join(work, 'broken.json'), '{"model": {"type": "WordPiece", "vocab": {}}}');
    const unsupported = baka(['encode', '--tokenizer', 'broken.json'], 'x');
    expect(unsupported.status).toBe(2);
    expect(unsupported.stderr).toMatch(
      /broken\.json: unsupported tokenizer\.json component model "WordPiece"/,
    );
    const badIds = baka(['decode'], '1 2 x');
    expect(badIds.status).toBe(2);
    expect(badIds.stderr).toMatch(/stdin: id #3 is "x"; expected a non-negative integer/);
    const outside = baka(['decode'], '[1, 999999]');
    expect(outside.stderr).toMatch(/id 999999 is outside the vocabulary \(size 50277\)/);
    const small = baka(['train', '--input', trainCorpus, '--vocab-size', '100', '--out', 'x.json']);
    expect(small.status).toBe(2);
    expect(small.stderr).toMatch(/--vocab-size must be at least 256/);
  });

  it('a pre-tokenizer regex that backtracks catastrophically is refused at load, not a hang', () => {
    const json = JSON.parse(readFileSync(defaultTokenizerPath(), 'utf8'));
    json.pre_tokenizer = {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: { Regex: '(?:\\s*\\w+)+$' },
          behavior: 'Isolated',
          invert: false,
        },
        json.pre_tokenizer,
      ],
    };
    const evil = join(work, 'evil-tokenizer.json');
    writeFileSync(evil, JSON.stringify(json));
    const started = Date.now();
    const result = spawnSync(process.execPath, [bin, 'tokenizer', 'encode', '--tokenizer', evil], {
      encoding: 'utf8',
      input: `${'a'.repeat(40)}!`,
      timeout: 30_000,
      env: { ...process.env, INIT_CWD: work },
    });
    expect(result.status, `${result.error ?? ''} after ${Date.now() - started} ms`).toBe(2);
    expect(result.stderr.trim()).toMatch(
      /^baka: .*Split.*: the regex \/\(\?:\\s\*\\w\+\)\+\$\/ repeats a group that itself contains a quantifier \(a nested quantifier, '\)\+' at offset \d+\), which can backtrack catastrophically and hang; rewrite it/,
    );
  });
});
