import { nodeBuiltin } from './node-builtins.js';

/** Path of the bundled GPT-NeoX-20B tokenizer.json (the tokenizer of upstream's pythia models). */
export function defaultTokenizerPath(): string {
  const url = nodeBuiltin<typeof import('node:url')>('node:url', 'defaultTokenizerPath');
  return url.fileURLToPath(new URL('../assets/gpt-neox-20b.tokenizer.json', import.meta.url));
}
