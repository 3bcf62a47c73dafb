// Downloads a named dataset's parquet files from the Hugging Face Hub into the cache: resumable
// (a `.partial` file continued with an HTTP Range request) and verified against the checksum
// manifest the Hub publishes for the pinned revision (the tree API lists each file's size and,
// for LFS/Xet files, its sha256; for small git files the git blob sha1).
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DATASETS, type DatasetSpec, datasetDirectory, hubEndpoint } from './datasets';
import { DataError } from './errors';

export interface ExpectedFile {
  path: string;
  size: number;
  /** 'sha256' for LFS files; 'git-sha1' (sha1 of "blob <size>\0" + content) for plain git files. */
  algorithm: 'sha256' | 'git-sha1';
  digest: string;
}

export interface FetchProgress {
  file: string;
  fileIndex: number;
  files: number;
  /** Bytes of this file on disk so far. */
  bytes: number;
  totalBytes: number;
  phase: 'download' | 'verify';
}

export interface FetchOptions {
  cacheDir?: string;
  /** Hub base URL (default $BAKA_HF_ENDPOINT or https://huggingface.co). */
  endpoint?: string;
  /** Automatic resumes after an interrupted transfer (default 3). */
  retries?: number;
  onProgress?: (progress: FetchProgress) => void;
}

export interface FetchResult {
  name: string;
  directory: string;
  files: Array<ExpectedFile & { localPath: string; reused: boolean }>;
}

function authHeaders(): Record<string, string> {
  const token = process.env.HF_TOKEN;
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Reads the Hub's listing of the dataset directory at the pinned revision. */
export async function fetchChecksumManifest(
  spec: DatasetSpec,
  endpoint: string,
): Promise<ExpectedFile[]> {
  const url = `${endpoint}/api/datasets/${spec.repository}/tree/${spec.revision}/${spec.directory}`;
  let response: Response;
  try {
    response = await fetch(url, { headers: authHeaders() });
  } catch (error) {
    throw new DataError(
      `cannot reach ${url}: ${(error as Error).message} (set BAKA_HF_ENDPOINT or --endpoint for a mirror)`,
    );
  }
  if (!response.ok) throw new DataError(`checksum manifest ${url}: HTTP ${response.status}`);
  let listing: unknown;
  try {
    listing = await response.json();
  } catch {
    throw new DataError(`checksum manifest ${url}: not JSON`);
  }
  if (!Array.isArray(listing))
    throw new DataError(`checksum manifest ${url}: expected a JSON array of files`);
  const expected: ExpectedFile[] = [];
  for (const file of spec.files) {
    const entry = listing.find((item) => (item as { path?: string })?.path === file.path) as
      | { size?: number; oid?: string; lfs?: { oid?: string; size?: number } }
      | undefined;
    if (!entry) throw new DataError(`checksum manifest ${url} does not list ${file.path}`);
    if (entry.lfs?.oid && typeof entry.lfs.size === 'number') {
      expected.push({
        path: file.path,
        size: entry.lfs.size,
        algorithm: 'sha256',
        digest: entry.lfs.oid,
      });
    } else if (entry.oid && typeof entry.size === 'number') {
      expected.push({
        path: file.path,
        size: entry.size,
        algorithm: 'git-sha1',
        digest: entry.oid,
      });
    } else {
      throw new DataError(`checksum manifest ${url}: no size/checksum for ${file.path}`);
    }
  }
  return expected;
}

/** Hashes a file on disk the way `expected` says, streaming. */
export async function fileDigest(
  path: string,
  expected: Pick<ExpectedFile, 'algorithm'>,
): Promise<string> {
  const hash = createHash(expected.algorithm === 'sha256' ? 'sha256' : 'sha1');
  if (expected.algorithm === 'git-sha1') hash.update(`blob ${statSync(path).size}\0`);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

class InterruptedDownload extends Error {}

/** Downloads (or continues) `url` into `partial`; resolves when the server sent everything. */
async function downloadInto(
  url: string,
  partial: string,
  size: number,
  report: (bytes: number) => void,
): Promise<void> {
  const have = existsSync(partial) ? statSync(partial).size : 0;
  if (have === size) return;
  if (have > size) rmSync(partial);
  const start = have > size ? 0 : have;
  const headers: Record<string, string> = { ...authHeaders() };
  if (start > 0) headers.range = `bytes=${start}-`;
  let response: Response;
  try {
    response = await fetch(url, { headers });
  } catch (error) {
    throw new InterruptedDownload(`cannot reach ${url}: ${(error as Error).message}`);
  }
  if (response.status === 416 && start > 0) return; // nothing left to send
  if (!(response.status === 200 || response.status === 206)) {
    throw new DataError(`${url}: HTTP ${response.status}`);
  }
  // A server that ignores Range sends the whole file with 200: start over.
  const append = response.status === 206 && start > 0;
  if (append) {
    const range = response.headers.get('content-range') ?? '';
    if (!range.startsWith(`bytes ${start}-`)) {
      throw new DataError(`${url}: asked for bytes from ${start}, server sent '${range}'`);
    }
  }
  const handle = await open(partial, append ? 'a' : 'w');
  let written = append ? start : 0;
  try {
    if (!response.body) throw new InterruptedDownload(`${url}: empty response body`);
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      await handle.write(chunk);
      written += chunk.length;
      report(written);
    }
  } catch (error) {
    if (error instanceof DataError) throw error;
    throw new InterruptedDownload(
      `${url}: transfer interrupted after ${written} bytes (${(error as Error).message})`,
    );
  } finally {
    await handle.close();
  }
  if (written < size)
    throw new InterruptedDownload(`${url}: transfer ended after ${written} of ${size} bytes`);
}

/** Downloads a named dataset into the cache (see the module comment). */
export async function fetchDataset(name: string, options: FetchOptions = {}): Promise<FetchResult> {
  const spec = DATASETS[name];
  if (!spec)
    throw new DataError(`unknown dataset '${name}': expected ${Object.keys(DATASETS).join(', ')}`);
  const endpoint = hubEndpoint(options.endpoint);
  const directory = datasetDirectory(spec, options.cacheDir);
  const expected = await fetchChecksumManifest(spec, endpoint);
  mkdirSync(directory, { recursive: true });
  writeFileSync(
    join(directory, 'checksums.json'),
    `${JSON.stringify({ repository: spec.repository, revision: spec.revision, endpoint, files: expected }, null, 2)}\n`,
  );
  const files: FetchResult['files'] = [];
  for (const [fileIndex, file] of expected.entries()) {
    const localPath = join(directory, file.path);
    const progress = (bytes: number, phase: FetchProgress['phase']) =>
      options.onProgress?.({
        file: file.path,
        fileIndex,
        files: expected.length,
        bytes,
        totalBytes: file.size,
        phase,
      });
    mkdirSync(dirname(localPath), { recursive: true });
    if (existsSync(localPath) && statSync(localPath).size === file.size) {
      progress(file.size, 'verify');
      if ((await fileDigest(localPath, file)) === file.digest) {
        files.push({ ...file, localPath, reused: true });
        continue;
      }
      rmSync(localPath); // corrupted: download again
    }
    const url = `${endpoint}/datasets/${spec.repository}/resolve/${spec.revision}/${file.path}`;
    const partial = `${localPath}.partial`;
    const retries = options.retries ?? 3;
    for (let attempt = 0; ; attempt++) {
      try {
        await downloadInto(url, partial, file.size, (bytes) => progress(bytes, 'download'));
        break;
      } catch (error) {
        if (!(error instanceof InterruptedDownload)) throw error;
        if (attempt >= retries) {
          throw new DataError(
            `${error.message}; the partial file ${partial} is kept, run the fetch again to resume`,
          );
        }
      }
    }
    progress(file.size, 'verify');
    const size = statSync(partial).size;
    const digest = size === file.size ? await fileDigest(partial, file) : '(size mismatch)';
    if (size !== file.size || digest !== file.digest) {
      rmSync(partial);
      throw new DataError(
        `${file.path}: checksum mismatch (expected ${file.size} bytes with ${file.algorithm} ${file.digest}, got ${size} bytes with ${digest}); the download was deleted, run the fetch again`,
      );
    }
    renameSync(partial, localPath);
    files.push({ ...file, localPath, reused: false });
  }
  return { name: spec.name, directory, files };
}
