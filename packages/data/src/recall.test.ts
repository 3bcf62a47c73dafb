import { readFileSync } from 'node:fs';
import { Tokenizer } from '@baka/tokenizer';
import { describe, expect, it } from 'vitest';
import {
  parseRecallCorpus,
  RECALL_DEFAULTS,
  RECALL_SYMBOLS,
  recallAnswers,
  recallDocument,
  recallDocuments,
  recallTokenizerJson,
  recallTokenizerPath,
} from './recall';

const text = (ids: ArrayLike<number>) => Array.from(ids, (id) => RECALL_SYMBOLS[id]).join('');

/** The pairs a document writes outside queries, in order: key -> [value, position of value]. */
function writtenPairs(ids: Uint32Array): Map<string, { value: string; at: number }> {
  const pairs = new Map<string, { value: string; at: number }>();
  const symbols = text(ids);
  for (let i = 0; i < symbols.length; i++) {
    const symbol = symbols[i]!;
    if (symbol === '?') i += 2;
    else if (symbol !== '.') {
      expect(pairs.has(symbol), `key ${symbol} written twice`).toBe(false);
      pairs.set(symbol, { value: symbols[i + 1]!, at: i + 1 });
      i += 1;
    }
  }
  return pairs;
}

describe('the recall corpus', () => {
  it('is a pure function of the seed and the document index', () => {
    const a = recallDocument(RECALL_DEFAULTS, 5);
    expect(Array.from(recallDocument(RECALL_DEFAULTS, 5))).toEqual(Array.from(a));
    expect(Array.from(recallDocument({ ...RECALL_DEFAULTS, seed: 1 }, 5))).not.toEqual(
      Array.from(a),
    );
    expect(Array.from(recallDocument(RECALL_DEFAULTS, 6))).not.toEqual(Array.from(a));
    const documents = recallDocuments({ ...RECALL_DEFAULTS, train: 3, valid: 2 });
    expect(documents.numDocuments).toBe(5);
    expect(documents.splits).toEqual({ train: { start: 0, end: 3 }, valid: { start: 3, end: 5 } });
    expect(Array.from(documents.document(3))).toEqual(
      Array.from(recallDocument(RECALL_DEFAULTS, 3)),
    );
  });

  it('asks for every pair once, at its distance, and the answer is the pair value', () => {
    const options = { ...RECALL_DEFAULTS, distances: [0, 1, 3], pairs: 3, chunk: 16, chunks: 6 };
    for (let index = 0; index < 20; index++) {
      const ids = recallDocument(options, index);
      expect(ids.length).toBe(16 * 6);
      const symbols = text(ids);
      const pairs = writtenPairs(ids);
      expect(pairs.size).toBe(3 * 6);
      const answers = recallAnswers(ids, 16);
      const perDistance = new Map<number, number>();
      for (const { position, distance } of answers) {
        expect(symbols[position - 2]).toBe('?');
        const pair = pairs.get(symbols[position - 1]!)!;
        expect(symbols[position]).toBe(pair.value);
        expect(distance).toBe(Math.floor(position / 16) - Math.floor(pair.at / 16));
        perDistance.set(distance, (perDistance.get(distance) ?? 0) + 1);
      }
      // a pair of chunk c with distance d is asked in chunk c + d when that exists: 6 - d pairs
      expect(Object.fromEntries(perDistance)).toEqual({ 0: 6, 1: 5, 3: 3 });
      // every query's key is asked once
      expect(new Set(answers.map((a) => symbols[a.position - 1])).size).toBe(answers.length);
    }
  });

  it('measures distance in the model chunks it is given, not the generator', () => {
    const ids = recallDocument(RECALL_DEFAULTS, 0);
    const answers = recallAnswers(ids, 20);
    const wide = recallAnswers(ids, 20 * 8);
    expect(wide.map((a) => a.position)).toEqual(answers.map((a) => a.position));
    expect(new Set(wide.map((a) => a.distance))).toEqual(new Set([0]));
  });

  it('reads its options from the corpus name and refuses ones that do not fit', () => {
    expect(parseRecallCorpus('recall')).toEqual(RECALL_DEFAULTS);
    expect(parseRecallCorpus('recall:seed=3,distances=1-2,pairs=2,chunks=4')).toEqual({
      ...RECALL_DEFAULTS,
      seed: 3,
      distances: [1, 2],
      pairs: 2,
      chunks: 4,
    });
    expect(parseRecallCorpus('recall:distances=0+2+4,pairs=3').distances).toEqual([0, 2, 4]);
    expect(() => parseRecallCorpus('recall:width=3')).toThrow(/key=value with a key of seed/);
    expect(() => parseRecallCorpus('recall:pairs=x')).toThrow(/pairs expects an integer/);
    expect(() => parseRecallCorpus('recall:pairs=6')).toThrow(
      /multiple of the number of distances/,
    );
    expect(() => parseRecallCorpus('recall:chunk=16')).toThrow(/chunk \(16\) must hold/);
    expect(() => parseRecallCorpus('recall:chunks=3')).toThrow(
      /distances up to 3 need more than 3/,
    );
    expect(() => parseRecallCorpus('recall:chunks=16')).toThrow(/distinct keys/);
  });

  it('ships a character-level tokenizer for its vocabulary', () => {
    const path = recallTokenizerPath();
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(recallTokenizerJson());
    const tokenizer = Tokenizer.fromFile(path);
    expect(tokenizer.vocabSize).toBe(RECALL_SYMBOLS.length);
    const ids = recallDocument(RECALL_DEFAULTS, 1);
    expect(Array.from(tokenizer.encode(text(ids)))).toEqual(Array.from(ids));
    expect(tokenizer.decode(ids)).toBe(text(ids));
  });
});
