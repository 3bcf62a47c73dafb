// A pool of worker threads that tokenize batches of texts in parallel. Running from TypeScript
// source (tsx, `--conditions=@baka/source`), each worker first registers tsx's loader, since
// Node does not pass the parent's module hooks on to worker threads.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Tokenizer } from '@baka/tokenizer';

/** Tokenizes a batch of texts (no special tokens added). */
export type Encoder = (texts: string[]) => Promise<Uint32Array[]>;

export interface EncoderPool {
  encode: Encoder;
  readonly threads: number;
  close(): Promise<void>;
}

/** The worker entry: the built .js next to this file, or a tsx bootstrap for the .ts source. */
function workerEntry(): { url: URL; execArgv?: string[] } {
  const self = import.meta.url;
  if (!/\.ts$/.test(new URL(self).pathname)) return { url: new URL('./encode-worker.js', self) };
  const require = createRequire(self);
  const tsxPackage = require.resolve('tsx/package.json');
  const exports = JSON.parse(readFileSync(tsxPackage, 'utf8')).exports['./esm/api'].import.default;
  const api = pathToFileURL(join(dirname(tsxPackage), exports)).href;
  const entry = new URL('./encode-worker.ts', self).href;
  const code = `import { register } from ${JSON.stringify(api)};\nregister();\nawait import(${JSON.stringify(entry)});\n`;
  return {
    url: new URL(`data:text/javascript,${encodeURIComponent(code)}`),
    execArgv: ['--conditions=@baka/source'],
  };
}

/** Encodes on the calling thread (threads = 1). */
function inThreadPool(tokenizer: Tokenizer): EncoderPool {
  return {
    threads: 1,
    encode: async (texts) =>
      texts.map((text) => tokenizer.encode(text, { addSpecialTokens: false })),
    close: async () => {},
  };
}

interface WorkerMessage {
  ready?: boolean;
  id?: number;
  ids?: Uint32Array[];
  error?: string;
}

interface Pending {
  resolve: (ids: Uint32Array[]) => void;
  reject: (error: Error) => void;
}

/**
 * A pool of `threads` workers (default, and at most: the cores; more would only cost memory,
 * each worker holds its own tokenizer); 1 thread encodes in-process.
 */
export async function createEncoderPool(
  tokenizerPath: string,
  options: {
    threads?: number;
    /** The same tokenizer already loaded, used when encoding on this thread. */
    tokenizer?: Tokenizer;
  } = {},
): Promise<EncoderPool> {
  const threads = Math.max(1, Math.min(options.threads ?? Infinity, availableParallelism()));
  if (threads === 1) return inThreadPool(options.tokenizer ?? Tokenizer.fromFile(tokenizerPath));
  const entry = workerEntry();
  const idle: Worker[] = [];
  const queue: Array<{ id: number; texts: string[] }> = [];
  const pending = new Map<number, Pending>();
  let nextId = 0;
  let failure: Error | null = null;

  const dispatch = () => {
    while (idle.length > 0 && queue.length > 0) {
      const worker = idle.pop() as Worker;
      const task = queue.shift() as { id: number; texts: string[] };
      worker.postMessage(task);
    }
  };
  const fail = (error: Error) => {
    failure ??= error;
    for (const entry of pending.values()) entry.reject(error);
    pending.clear();
  };

  const workers = Array.from(
    { length: threads },
    () =>
      new Worker(entry.url, {
        workerData: { tokenizerPath },
        ...(entry.execArgv ? { execArgv: entry.execArgv } : {}),
      }),
  );
  const started = workers.map(
    (worker) =>
      new Promise<void>((resolve, reject) => {
        worker.once('error', reject);
        worker.on('message', (message: WorkerMessage) => {
          if (message.ready) {
            worker.off('error', reject);
            worker.on('error', (error) => fail(error));
            idle.push(worker);
            resolve();
            dispatch();
            return;
          }
          const id = message.id as number;
          const task = pending.get(id);
          pending.delete(id);
          idle.push(worker);
          if (message.error !== undefined) task?.reject(new Error(message.error));
          else task?.resolve(message.ids as Uint32Array[]);
          dispatch();
        });
      }),
  );
  try {
    await Promise.all(started);
  } catch (error) {
    await Promise.all(workers.map((worker) => worker.terminate()));
    throw new Error(`tokenizer worker failed to start: ${(error as Error).message}`);
  }

  return {
    threads,
    encode(texts) {
      if (failure) return Promise.reject(failure);
      const id = nextId++;
      return new Promise<Uint32Array[]>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        queue.push({ id, texts });
        dispatch();
      });
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}
