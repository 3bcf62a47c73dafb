// Differential and property tests on random Unicode strings (fixed seed, reproducible in CI).
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultTokenizerPath } from './default-path.js';
import { normalizeLikeHf } from './normalizers.js';
import { hfEncodeAll, hfFromFile, type HfTokenizer } from './test-support/hf-oracle.js';
import { Tokenizer } from './tokenizer.js';

const SEED = 20_240_521;

/** Characters that stress whitespace classes, contractions, added tokens and normalization. */
const TRICKY = [
  ' ',
  '  ',
  '   ',
  '\t',
  '\n',
  '\r\n',
  '\r',
  '\u0085',
  '\u00a0',
  '\u2028',
  '\u3000',
  '\ufeff',
  '\u200b',
  '\u180e',
  "'",
  "'s",
  "'ll",
  "'RE",
  'a',
  'Z',
  'é',
  'e\u0301',
  '\u0301',
  '\u0308',
  '0',
  '7',
  '٣',
  '²',
  'Ⅻ',
  '中',
  '語',
  '한',
  'ㄱ',
  '😀',
  '👍🏽',
  '\u200d',
  '🇯🇵',
  'ש',
  'م',
  '.',
  ',',
  '!',
  '?',
  '-',
  '_',
  '<|endoftext|>',
  '<|padding|>',
  '\u0000',
  '\u007f',
  'ﬁ',
  'Å',
  'Ω',
  '𝔘',
];

const trickyString = fc
  .array(fc.constantFrom(...TRICKY), { maxLength: 30 })
  .map((parts) => parts.join(''));
const anyCodePoints = fc.string({ unit: 'binary', maxLength: 40 });
const graphemes = fc.string({ unit: 'grapheme', maxLength: 20 });
const withLoneSurrogates = fc
  .array(
    fc.oneof(
      fc.constantFrom(...TRICKY),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)),
    ),
    { maxLength: 20 },
  )
  .map((parts) => parts.join(''));
// Uniform over all code points: reaches characters newer than HF's Unicode tables.
const uniformCodePoint = fc
  .integer({ min: 0, max: 0x10ffff - 0x800 })
  .map((n) => String.fromCodePoint(n < 0xd800 ? n : n + 0x800));
const uniformString = fc
  .array(fc.oneof(uniformCodePoint, fc.constantFrom(...TRICKY)), { maxLength: 24 })
  .map((parts) => parts.join(''));
const mixed = fc.oneof(trickyString, anyCodePoints, graphemes, withLoneSurrogates, uniformString);
const wellFormed = fc.oneof(trickyString, anyCodePoints, graphemes, uniformString);

describe('random strings, GPT-NeoX-20B tokenizer', () => {
  let ours: Tokenizer;
  let oracle: HfTokenizer;
  beforeAll(() => {
    ours = Tokenizer.fromFile(defaultTokenizerPath());
    oracle = hfFromFile(defaultTokenizerPath());
  });

  it('encodes 4000 random strings to exactly the HF ids, and decodes like HF', async () => {
    const texts = fc.sample(mixed, { seed: SEED, numRuns: 4000 });
    const expected = await hfEncodeAll(oracle, texts);
    const decoded = await oracle.decodeBatch(expected, false);
    const decodedByDefault = await oracle.decodeBatch(expected, true); // HF's default
    const mismatches: string[] = [];
    texts.forEach((text, index) => {
      const ids = Array.from(ours.encode(text));
      if (JSON.stringify(ids) !== JSON.stringify(expected[index]))
        mismatches.push(JSON.stringify(text));
      if (ours.decode(expected[index]!, { skipSpecialTokens: false }) !== decoded[index])
        mismatches.push(`decode ${JSON.stringify(text)}`);
      if (ours.decode(expected[index]!) !== decodedByDefault[index])
        mismatches.push(`decode by default ${JSON.stringify(text)}`);
    });
    expect(mismatches).toEqual([]);
  });

  it('decode(encode(s)) is NFC(s) for well-formed strings', () => {
    // NFC as HF computes it: equal to s.normalize('NFC') except for characters newer than HF's
    // Unicode tables (see normalizers.ts), which HF leaves alone.
    fc.assert(
      fc.property(wellFormed, (text) => {
        expect(ours.decode(ours.encode(text), { skipSpecialTokens: false })).toBe(
          normalizeLikeHf(text, 'NFC'),
        );
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
});

describe('long words (heap merge path) against HF', () => {
  it('encodes long single words exactly like HF', async () => {
    const oracle = hfFromFile(defaultTokenizerPath());
    const ours = Tokenizer.fromFile(defaultTokenizerPath());
    const letters = fc.constantFrom(
      ...'abcdefghijklmnopqrstuvwxyzetaoinshrdlu'.split(''),
      'é',
      '中',
      'ß',
    );
    const words = fc.sample(
      fc.array(letters, { minLength: 97, maxLength: 2000 }).map((parts) => parts.join('')),
      { seed: SEED, numRuns: 60 },
    );
    words.push('ab'.repeat(3000), 'the'.repeat(700), ` ${'x'.repeat(4000)}`, '1'.repeat(500));
    const expected = await hfEncodeAll(oracle, words);
    words.forEach((word, index) => {
      expect(Array.from(ours.encode(word)), word.slice(0, 40)).toEqual(expected[index]);
    });
  });
});
