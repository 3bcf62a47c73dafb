import { fileURLToPath } from 'node:url';

/** Path of the bundled GPT-NeoX-20B tokenizer.json (the tokenizer of upstream's pythia models). */
export function defaultTokenizerPath(): string {
  return fileURLToPath(new URL('../assets/gpt-neox-20b.tokenizer.json', import.meta.url));
}
