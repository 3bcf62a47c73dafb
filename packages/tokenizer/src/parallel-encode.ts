// Batch encoding on worker threads. Each worker builds its own Tokenizer from the JSON once (the
// pool is kept for the next call with the same JSON) and encodes a contiguous slice of the texts;
// ids come back as transferred Uint32Arrays.
//
// The worker is an `eval` worker whose small script imports this package's tokenizer module by
// URL: the built `dist/index.js`, or `src/tokenizer.ts` when running from source — then, unless
// the worker thread already has a TypeScript loader, it compiles the source with tsx's require
// hook (tsx is a development dependency of the repository).
import type { Worker } from 'node:worker_threads';
import { TokenizerError } from './errors.js';
import { nodeBuiltin } from './node-builtins.js';

const FEATURE = 'encodeBatchParallel';

export interface ParallelEncodeOptions {
  /** Worker threads to use (default: all cores, at most one per text). */
  threads?: number;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ready = (async () => {
  let module;
  try {
    module = await import(workerData.moduleUrl);
  } catch (error) {
    if (!workerData.tsxCjsApi) throw error;
    // TypeScript source without a loader in this thread: compile it through tsx's require hook.
    const { require: tsxRequire } = require(workerData.tsxCjsApi);
    module = tsxRequire(workerData.moduleUrl, workerData.tsxCjsApi);
  }
  return module.Tokenizer.fromJSON(workerData.json);
})();
parentPort.on('message', async ({ job, joined, ends }) => {
  try {
    const tokenizer = await ready;
    // The texts arrive as one string and their end offsets; the ids go back as one buffer.
    const results = [];
    let total = 0;
    for (let i = 0, start = 0; i < ends.length; start = ends[i++]) {
      const ids = tokenizer.encode(joined.slice(start, ends[i]));
      results.push(ids);
      total += ids.length;
    }
    const ids = new Uint32Array(total);
    const counts = new Uint32Array(results.length);
    let offset = 0;
    results.forEach((part, index) => {
      ids.set(part, offset);
      offset += part.length;
      counts[index] = part.length;
    });
    parentPort.postMessage({ job, ids, counts }, [ids.buffer, counts.buffer]);
  } catch (error) {
    parentPort.postMessage({ job, error: String((error && error.stack) || error) });
  }
});
`;

function tokenizerModuleUrl(): string {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('./tokenizer.ts', here).href : here;
}

/** tsx's CommonJS API, needed by workers only when this module runs from TypeScript source. */
function tsxCjsApiPath(): string | undefined {
  if (!import.meta.url.endsWith('.ts')) return undefined;
  try {
    const module = nodeBuiltin<typeof import('node:module')>('node:module', FEATURE);
    return module.createRequire(import.meta.url).resolve('tsx/cjs/api');
  } catch {
    return undefined;
  }
}

type Reply = { job: number; ids?: Uint32Array; counts?: Uint32Array; error?: string };

/**
 * One worker that keeps its tokenizer between calls. Idle workers are unref'd so they never keep
 * the process alive; a worker with a job in flight is ref'd so the process waits for it.
 */
class TokenizerWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<
    number,
    { resolve: (ids: Uint32Array[]) => void; reject: (error: Error) => void }
  >();
  private nextJob = 0;
  private failure: Error | undefined;

  constructor(json: string) {
    const { Worker } = nodeBuiltin<typeof import('node:worker_threads')>(
      'node:worker_threads',
      FEATURE,
    );
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { json, moduleUrl: tokenizerModuleUrl(), tsxCjsApi: tsxCjsApiPath() },
    });
    this.worker.unref();
    this.worker.on('message', (reply: Reply) => {
      const entry = this.pending.get(reply.job);
      if (!entry) return;
      this.pending.delete(reply.job);
      if (this.pending.size === 0) this.worker.unref();
      if (reply.ids && reply.counts) {
        // One transferred buffer per slice; each text's ids are a view into it.
        const results: Uint32Array[] = [];
        let offset = 0;
        for (const count of reply.counts) {
          results.push(reply.ids.subarray(offset, offset + count));
          offset += count;
        }
        entry.resolve(results);
      } else {
        entry.reject(new Error(`tokenizer worker failed: ${reply.error}`));
      }
    });
    const failAll = (error: Error) => {
      this.failure = error;
      for (const entry of this.pending.values()) entry.reject(error);
      this.pending.clear();
    };
    this.worker.on('error', failAll);
    this.worker.on('exit', (code) =>
      failAll(new Error(`tokenizer worker exited with code ${code}`)),
    );
  }

  encode(texts: string[]): Promise<Uint32Array[]> {
    if (this.failure) return Promise.reject(this.failure);
    const job = this.nextJob++;
    return new Promise((resolve, reject) => {
      this.pending.set(job, { resolve, reject });
      this.worker.ref();
      const ends = new Uint32Array(texts.length);
      let end = 0;
      texts.forEach((text, index) => {
        end += text.length;
        ends[index] = end;
      });
      this.worker.postMessage({ job, joined: texts.join(''), ends }, [ends.buffer]);
    });
  }

  get broken(): boolean {
    return this.failure !== undefined;
  }

  terminate(): void {
    this.failure ??= new Error('tokenizer worker terminated');
    void this.worker.terminate();
  }
}

/** The pool for the most recently used tokenizer JSON. */
let pool: { json: string; workers: TokenizerWorker[] } | undefined;

function workersFor(json: string, count: number): TokenizerWorker[] {
  if (pool && (pool.json !== json || pool.workers.some((worker) => worker.broken))) {
    for (const worker of pool.workers) worker.terminate();
    pool = undefined;
  }
  pool ??= { json, workers: [] };
  while (pool.workers.length < count) pool.workers.push(new TokenizerWorker(json));
  return pool.workers.slice(0, count);
}

/** Stops the worker threads kept by `encodeBatchParallel` (they never block process exit). */
export function closeParallelEncoders(): void {
  if (pool) for (const worker of pool.workers) worker.terminate();
  pool = undefined;
}

/**
 * Encodes `texts` with the tokenizer described by `tokenizerJson` (tokenizer.json text) on worker
 * threads, all cores by default. The result is in input order and equals `encodeBatch`; the
 * arrays of one worker's slice are views into one buffer.
 */
export async function encodeBatchParallel(
  tokenizerJson: string,
  texts: string[],
  options: ParallelEncodeOptions = {},
): Promise<Uint32Array[]> {
  const os = nodeBuiltin<typeof import('node:os')>('node:os', FEATURE);
  const requested = options.threads ?? os.availableParallelism();
  if (!Number.isInteger(requested) || requested < 1) {
    throw new TokenizerError(
      `encodeBatchParallel: threads must be a positive integer, got ${requested}`,
    );
  }
  if (texts.length === 0) return [];
  const threads = Math.min(requested, texts.length);
  // Contiguous slices of roughly equal character counts.
  const total = texts.reduce((sum, text) => sum + text.length, 0);
  const slices: string[][] = [];
  let current: string[] = [];
  let done = 0;
  for (const text of texts) {
    current.push(text);
    done += text.length;
    if (done >= ((slices.length + 1) * total) / threads && slices.length < threads - 1) {
      slices.push(current);
      current = [];
    }
  }
  if (current.length > 0) slices.push(current);
  const workers = workersFor(tokenizerJson, slices.length);
  const results = await Promise.all(slices.map((slice, index) => workers[index]!.encode(slice)));
  return results.flat();
}
