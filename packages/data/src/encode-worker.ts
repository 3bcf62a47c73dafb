// Worker thread of the encoder pool: loads the tokenizer once, then encodes batches of texts.
import { parentPort, workerData } from 'node:worker_threads';
import { Tokenizer } from '@baka/tokenizer';

interface Request {
  id: number;
  texts: string[];
}

const tokenizer = Tokenizer.fromFile((workerData as { tokenizerPath: string }).tokenizerPath);
const port = parentPort;
if (!port) throw new Error('encode-worker must run in a worker thread');
port.on('message', ({ id, texts }: Request) => {
  try {
    const ids = texts.map((text) => tokenizer.encode(text, { addSpecialTokens: false }));
    port.postMessage(
      { id, ids },
      ids.map((array) => array.buffer as ArrayBuffer),
    );
  } catch (error) {
    port.postMessage({ id, error: (error as Error).message });
  }
});
port.postMessage({ ready: true });
