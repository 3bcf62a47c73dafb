import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveCorpus } from './corpora';
import { DATASETS } from './datasets';
import { fetchDataset } from './fetch-dataset';
import { readDocuments } from './readers';
import { collect, temporaryDirectory } from './test-files';

// A local stand-in for the Hugging Face Hub on 127.0.0.1: the tree API (checksum manifest) and
// `resolve` URLs that redirect to a file server supporting Range requests, like the real Hub.
const spec = DATASETS['wikitext-2']!;
const sample = readFileSync(
  fileURLToPath(new URL('./__fixtures__/wikitext-sample.raw', import.meta.url)),
  'utf8',
);

function wikitextParquet(text: string): Uint8Array {
  const rows = text
    .split('\n')
    .slice(0, -1)
    .map((line) => (line.trim() === '' ? '' : `${line}\n`));
  return new Uint8Array(
    parquetWriteBuffer({ columnData: [{ name: 'text', data: rows, type: 'STRING' }] }),
  );
}

const contents = new Map<string, Uint8Array>([
  [
    spec.files[0]!.path,
    wikitextParquet(
      // train: 40 distinct copies, big enough to interrupt mid-way
      Array.from({ length: 40 }, (_, copy) => sample.replaceAll(' . ', ` . (copy ${copy}) `)).join(
        '',
      ),
    ),
  ],
  [spec.files[1]!.path, wikitextParquet(' \n = Valid Article = \n \n Held out text . \n')],
  [spec.files[2]!.path, wikitextParquet(' \n = Test Article = \n \n Test text . \n')],
]);

interface Recorded {
  url: string;
  range?: string;
}
let server: Server;
let endpoint: string;
let requests: Recorded[] = [];
let interruptNext = 0;
let ignoreRange = false;
let wrongDigest: string | null = null;
let held: { response: ServerResponse; bytes: number } | null = null;

/** Waits until `partial` holds the half body sent, then drops the held connection. */
async function cutWhenWritten(partial: string): Promise<number> {
  for (;;) {
    if (held && existsSync(partial) && statSync(partial).size >= held.bytes) {
      const bytes = held.bytes;
      held.response.socket?.destroy();
      held = null;
      return bytes;
    }
    await new Promise((done) => setTimeout(done, 5));
  }
}

beforeAll(async () => {
  server = createServer((request, response) => {
    const url = request.url ?? '';
    requests.push({ url, range: request.headers.range });
    if (url === `/api/datasets/${spec.repository}/tree/${spec.revision}/${spec.directory}`) {
      const listing = [...contents].map(([path, bytes]) => ({
        type: 'file',
        path,
        size: bytes.length,
        oid: createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex'),
        lfs: {
          oid:
            path === wrongDigest
              ? '0'.repeat(64)
              : createHash('sha256').update(bytes).digest('hex'),
          size: bytes.length,
          pointerSize: 134,
        },
      }));
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(listing));
      return;
    }
    const resolvePrefix = `/datasets/${spec.repository}/resolve/${spec.revision}/`;
    if (url.startsWith(resolvePrefix)) {
      response.writeHead(302, { location: `/cdn/${url.slice(resolvePrefix.length)}` });
      response.end();
      return;
    }
    const bytes = url.startsWith('/cdn/') ? contents.get(url.slice(5)) : undefined;
    if (!bytes) {
      response.writeHead(404);
      response.end();
      return;
    }
    const match = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    const start = match && !ignoreRange ? Number(match[1]) : 0;
    const body = bytes.subarray(start);
    response.writeHead(start > 0 ? 206 : 200, {
      'content-length': String(body.length),
      ...(start > 0
        ? { 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` }
        : {}),
    });
    if (interruptNext > 0 && body.length > 1000) {
      interruptNext--;
      // Send half the body and hold the connection; `cutWhenWritten` drops it once the client
      // has written those bytes to its .partial file (deterministic, whatever the machine load).
      const half = Math.floor(body.length / 2);
      response.write(body.subarray(0, half));
      held = { response, bytes: half };
      return;
    }
    response.end(body);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((done) => server.close(done));
});

beforeEach(() => {
  requests = [];
  interruptNext = 0;
  ignoreRange = false;
  wrongDigest = null;
  held = null;
});

const downloads = () => requests.filter((r) => r.url.startsWith('/cdn/'));

describe('fetchDataset (against a local Hub on 127.0.0.1)', () => {
  it('resumes an interrupted download with a Range request, verifies it, then reuses the cache', async () => {
    const cacheDir = temporaryDirectory('fetch-cache');
    const train = spec.files[0]!.path;
    const trainBytes = contents.get(train)!;
    expect(trainBytes.length).toBeGreaterThan(4000);
    interruptNext = 1;
    const partial = join(cacheDir, 'wikitext-2', `${train}.partial`);
    const first = fetchDataset('wikitext-2', { cacheDir, endpoint, retries: 0 });
    const kept = await cutWhenWritten(partial);
    await expect(first).rejects.toThrow(
      /transfer .*partial file .*train-00000-of-00001.parquet.partial is kept, run the fetch again to resume/,
    );
    expect(statSync(partial).size).toBe(kept);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(trainBytes.length);

    requests = [];
    const result = await fetchDataset('wikitext-2', { cacheDir, endpoint, retries: 0 });
    expect(downloads()[0]).toEqual({ url: `/cdn/${train}`, range: `bytes=${kept}-` });
    expect(existsSync(partial)).toBe(false);
    for (const file of result.files) {
      expect(new Uint8Array(readFileSync(file.localPath))).toEqual(contents.get(file.path));
      expect(file.reused).toBe(false);
    }
    expect(
      JSON.parse(readFileSync(join(result.directory, 'checksums.json'), 'utf8')).revision,
    ).toBe(spec.revision);

    // The fetched corpus resolves by name and reads as articles, with the Hub's own splits.
    const corpus = resolveCorpus('wikitext-2', { cacheDir });
    expect(corpus.parts.map((part) => part.split)).toEqual(['train', 'valid', 'test']);
    const trainArticles = await collect(readDocuments(corpus.parts[0]!.source));
    expect(trainArticles.length).toBe(3 * 40);
    expect(await collect(readDocuments(corpus.parts[1]!.source))).toEqual([
      '\n = Valid Article = \n\n Held out text . \n',
    ]);

    requests = [];
    const again = await fetchDataset('wikitext-2', { cacheDir, endpoint });
    expect(again.files.every((file) => file.reused)).toBe(true);
    expect(downloads()).toEqual([]);
  });

  it('retries an interrupted transfer automatically; restarts when the server ignores Range', async () => {
    const cacheDir = temporaryDirectory('fetch-retry');
    const partialOf = (dir: string) => join(dir, 'wikitext-2', `${spec.files[0]!.path}.partial`);
    interruptNext = 1;
    const retried = fetchDataset('wikitext-2', { cacheDir, endpoint });
    const kept = await cutWhenWritten(partialOf(cacheDir));
    await retried;
    const ranges = downloads().map((r) => r.range);
    expect(ranges.slice(0, 2)).toEqual([undefined, `bytes=${kept}-`]);

    const other = temporaryDirectory('fetch-norange');
    interruptNext = 1;
    ignoreRange = true;
    const restarted = fetchDataset('wikitext-2', { cacheDir: other, endpoint });
    await cutWhenWritten(partialOf(other));
    const result = await restarted;
    expect(new Uint8Array(readFileSync(result.files[0]!.localPath))).toEqual(
      contents.get(spec.files[0]!.path),
    );
  });

  it('a checksum mismatch is an error and leaves no file behind', async () => {
    const cacheDir = temporaryDirectory('fetch-bad');
    wrongDigest = spec.files[1]!.path;
    await expect(fetchDataset('wikitext-2', { cacheDir, endpoint })).rejects.toThrow(
      /validation-00000-of-00001.parquet: checksum mismatch \(expected \d+ bytes with sha256 0{64}/,
    );
    const local = join(cacheDir, 'wikitext-2', spec.files[1]!.path);
    expect(existsSync(local)).toBe(false);
    expect(existsSync(`${local}.partial`)).toBe(false);
  });

  it('names the dataset and the URL on errors', async () => {
    await expect(fetchDataset('wikitext-7')).rejects.toThrow(/unknown dataset 'wikitext-7'/);
    await expect(
      fetchDataset('wikitext-103', { cacheDir: temporaryDirectory('fetch-404'), endpoint }),
    ).rejects.toThrow(
      /checksum manifest http:\/\/127.0.0.1:\d+\/api\/datasets\/Salesforce\/wikitext\/tree\/.*: HTTP 404/,
    );
    expect(() =>
      resolveCorpus('wikitext-103', { cacheDir: temporaryDirectory('fetch-none') }),
    ).toThrow(/wikitext-103 is not downloaded .*run `baka data fetch wikitext-103` first/);
  });
});
