import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openShards } from '@baka/data';
import { Tokenizer, defaultTokenizerPath } from '@baka/tokenizer';
import { describe, expect, it, vi } from 'vitest';
import { runFetch, runInfo, runPrepare } from './data';

const bin = fileURLToPath(new URL('../../bin/baka.js', import.meta.url));
const sample = fileURLToPath(
  new URL('../../../../packages/data/src/__fixtures__/wikitext-sample.raw', import.meta.url),
);

function baka(...args: string[]) {
  const result = spawnSync(process.execPath, [bin, 'data', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, INIT_CWD: tmpdir() },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function captureStdout(run: () => Promise<void> | void): Promise<string> {
  let text = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    text += String(chunk);
    return true;
  });
  try {
    await run();
  } finally {
    spy.mockRestore();
  }
  return text;
}

describe('baka data', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'baka-cli-data-')), 'shards');

  it('prepare tokenizes a wikitext file into shards that decode to the input; a rerun is a no-op', async () => {
    const first = baka(
      'prepare',
      '--corpus',
      sample,
      '--out',
      out,
      '--threads',
      '2',
      '--valid-fraction',
      '0.3',
    );
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(
      /wrote 1 shard file\(s\) to .*shards: 3 documents, \d+ tokens \(uint16\)/,
    );
    expect(first.stderr).toMatch(/tokenizing .*tokens\/s/); // the progress bar (plain lines off a TTY)
    const reader = openShards(out);
    const tokenizer = Tokenizer.fromFile(defaultTokenizerPath());
    expect(tokenizer.decode(reader.tokens(0, reader.numTokens))).toBe(readFileSync(sample, 'utf8'));
    expect(reader.splits).toEqual({ train: { start: 0, end: 2 }, valid: { start: 2, end: 3 } });
    reader.close();

    // Rerun and info in-process (spawning the CLI is slow on a loaded machine).
    const printed = await captureStdout(() =>
      runPrepare({ corpus: sample, out, format: 'auto', validFraction: '0.3' }),
    );
    expect(printed).toMatch(/already up to date .*nothing to do/);
    const info = await captureStdout(() => runInfo({ shards: out }));
    expect(info).toMatch(/documents {2}3\n/);
    expect(info).toMatch(/train {6}2 documents \[0, 2\)/);
    expect(info).toMatch(/valid {6}1 documents \[2, 3\)/);
    expect(info).toContain(tokenizer.hash);
    expect(
      JSON.parse(await captureStdout(() => runInfo({ shards: out, json: true }))).numDocuments,
    ).toBe(3);
  });

  it('errors name the flag or file (exit 2, one line, no stack)', async () => {
    const badFormat = baka('prepare', '--corpus', sample, '--out', out, '--format', 'csv');
    expect(badFormat.status).toBe(2);
    expect(badFormat.stderr).toBe(
      "baka: --format expects auto, text, paragraphs, wikitext, jsonl, parquet; got 'csv'\n",
    );
    // The same actions in-process (each error is what `baka:` prints).
    const flags = { corpus: sample, out, format: 'auto' };
    await expect(runPrepare({ ...flags, corpus: '/nonexistent/corpus.txt' })).rejects.toThrow(
      'file not found: /nonexistent/corpus.txt',
    );
    await expect(runPrepare({ ...flags, validFraction: '1.5' })).rejects.toThrow(
      "--valid-fraction expects a number in [0, 1), got '1.5'",
    );
    await expect(runPrepare({ ...flags, threads: 'two' })).rejects.toThrow(
      "--threads expects an integer >= 1, got 'two'",
    );
    await expect(
      runPrepare({ ...flags, tokenizer: '/nonexistent/tokenizer.json' }),
    ).rejects.toThrow('tokenizer file not found: /nonexistent/tokenizer.json');
    await expect(runFetch('wikitext-7', {})).rejects.toThrow(
      "unknown dataset 'wikitext-7': expected wikitext-103, wikitext-2",
    );
    await expect(
      runFetch('wikitext-2', { endpoint: 'http://127.0.0.1:9', cacheDir: tmpdir() }),
    ).rejects.toThrow(
      /^cannot reach http:\/\/127.0.0.1:9\/api\/datasets\/Salesforce\/wikitext\/tree\//,
    );
  });

  it('a shard whose ids are outside the vocabulary is refused when opened (one line, exit 2)', () => {
    const shards = join(mkdtempSync(join(tmpdir(), 'baka-cli-data-')), 'shards');
    const prepared = baka('prepare', '--corpus', sample, '--out', shards, '--threads', '1');
    expect(prepared.status, prepared.stderr).toBe(0);
    // Token 5 of the file becomes 65535, past the bundled tokenizer's 50277 ids.
    const fd = openSync(join(shards, 'tokens-00000.bin'), 'r+');
    writeSync(fd, Buffer.from([0xff, 0xff]), 0, 2, 5 * 2);
    closeSync(fd);
    const info = baka('info', '--shards', shards);
    expect(info.status).toBe(2);
    expect(info.stderr).toMatch(
      /^baka: .*tokens-00000\.bin: token id 65535 \(token 5 of the file\) is outside the vocabulary 0\.\.50276 of the tokenizer in manifest\.json \(50277 tokens\); prepare the shards again/,
    );
    expect(info.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('--threads above the cores is capped at them, with a note', () => {
    const shards = join(mkdtempSync(join(tmpdir(), 'baka-cli-data-')), 'shards');
    const result = baka('prepare', '--corpus', sample, '--out', shards, '--threads', '64');
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toContain(
      `note: --threads 64 capped at ${availableParallelism()}, the cores of this machine\n`,
    );
  });
});
