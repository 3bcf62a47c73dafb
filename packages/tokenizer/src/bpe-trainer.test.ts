import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BpeTrainer, trainBpe } from './bpe-trainer.js';
import { hfEncodeAll, hfFromString } from './test-support/hf-oracle.js';
import { STRESS_SET } from './test-support/stress-set.js';
import { Tokenizer } from './tokenizer.js';

const fixture = (name: string) => new URL(`./__fixtures__/${name}`, import.meta.url);
const corpus = readFileSync(fixture('train-corpus.txt'), 'utf8');

interface RunFixture {
  settings: { vocab_size: number; min_frequency: number; special_tokens: string[] };
  test_text: string;
  test_ids: number[];
}

// Trained by tools/tokenizer/train-bpe-fixture.py with Python tokenizers' BpeTrainer.
describe.each(['hf-trained-bpe', 'hf-trained-bpe-min-frequency'])('BpeTrainer vs HF %s', (run) => {
  const meta = JSON.parse(readFileSync(fixture(`${run}.json`), 'utf8')) as RunFixture;
  const hfJson = JSON.parse(readFileSync(fixture(`${run}.tokenizer.json`), 'utf8'));
  const options = {
    vocabSize: meta.settings.vocab_size,
    minFrequency: meta.settings.min_frequency,
    specialTokens: meta.settings.special_tokens,
  };
  const trained = trainBpe([corpus], options) as { model: { vocab: object; merges: string[][] } };

  it('learns the same vocabulary ids and merges in the same order', () => {
    expect(trained.model.vocab).toEqual(hfJson.model.vocab);
    expect(trained.model.merges).toEqual(hfJson.model.merges);
    expect(trained).toEqual(hfJson);
  });

  it('encodes the test text to the ids HF gave with its own trained tokenizer', () => {
    expect(Array.from(Tokenizer.fromJSON(trained).encode(meta.test_text))).toEqual(meta.test_ids);
  });

  it('round-trips through HF: HF loads our file and encodes identically to us', async () => {
    const text = JSON.stringify(trained);
    const oracle = hfFromString(text);
    const ours = Tokenizer.fromJSON(text);
    const texts = [meta.test_text, corpus.slice(0, 5000), ...STRESS_SET];
    const expected = await hfEncodeAll(oracle, texts);
    texts.forEach((sample, index) => {
      expect(Array.from(ours.encode(sample))).toEqual(expected[index]);
    });
  });
});

describe('BpeTrainer', () => {
  it('reports merge progress up to the vocabulary size', () => {
    const seen: number[] = [];
    trainBpe([corpus], { vocabSize: 300 }, (progress) => seen.push(progress.done));
    expect(seen[0]).toBe(257);
    expect(seen.at(-1)).toBe(300);
  });

  it('splits fed text into lines like HF reads files', () => {
    const whole = new BpeTrainer({ vocabSize: 400 });
    whole.feed('one two\n\nthree\r\nfour');
    const pieces = new BpeTrainer({ vocabSize: 400 });
    for (const line of ['one two\n', '\n', 'three\r\n', 'four']) pieces.feed(line);
    expect(whole.train()).toEqual(pieces.train());
  });

  it('rejects bad options, naming them', () => {
    expect(() => new BpeTrainer({ vocabSize: 0 })).toThrow(/vocabSize/);
    expect(() => new BpeTrainer({ vocabSize: 10, minFrequency: -1 })).toThrow(/minFrequency/);
    expect(() => new BpeTrainer({ vocabSize: 10, specialTokens: [''] })).toThrow(/special tokens/);
  });
});
