// The tokenizer a command uses when it is given none: the recall corpus's own for `--corpus
// recall[:...]` (its ids are a vocabulary of their own), else the bundled GPT-NeoX-20B one.
import { isRecallCorpus, recallTokenizerPath } from '@baka/data';
import { defaultTokenizerPath } from '@baka/tokenizer';

export function defaultTokenizerFor(corpus: string | null | undefined): string {
  return corpus && isRecallCorpus(corpus) ? recallTokenizerPath() : defaultTokenizerPath();
}
