// The Hugging Face `tokenizers` npm binding (Rust), used by the differential tests as the oracle.
import { createRequire } from 'node:module';

interface HfEncoding {
  getIds(): number[];
}
export interface HfTokenizer {
  encode(text: string): Promise<HfEncoding>;
  encodeBatch(texts: string[]): Promise<HfEncoding[]>;
  decode(ids: number[], skipSpecialTokens: boolean): Promise<string>;
  decodeBatch(ids: number[][], skipSpecialTokens: boolean): Promise<string[]>;
  getVocabSize(withAddedTokens?: boolean): number;
}

const require = createRequire(import.meta.url);
const binding = require('tokenizers') as {
  Tokenizer: { fromFile(path: string): HfTokenizer; fromString(json: string): HfTokenizer };
};

export function hfFromFile(path: string): HfTokenizer {
  return binding.Tokenizer.fromFile(path);
}

export function hfFromString(json: string): HfTokenizer {
  return binding.Tokenizer.fromString(json);
}

/** HF ids of each text, encoded in one batch call. */
export async function hfEncodeAll(tokenizer: HfTokenizer, texts: string[]): Promise<number[][]> {
  const encodings = await tokenizer.encodeBatch(texts);
  return encodings.map((encoding) => encoding.getIds());
}
