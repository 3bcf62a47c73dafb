import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultTokenizerPath } from './default-path.js';
import { STRESS_SET } from './test-support/stress-set.js';
import { hfEncodeAll, hfFromFile, type HfTokenizer } from './test-support/hf-oracle.js';
import { Tokenizer } from './tokenizer.js';

const corpusPath = fileURLToPath(
  new URL('../../data/corpora/tinyshakespeare.txt', import.meta.url),
);

describe('Tokenizer with the GPT-NeoX-20B tokenizer.json', () => {
  let ours: Tokenizer;
  let oracle: HfTokenizer;
  beforeAll(() => {
    ours = Tokenizer.fromFile(defaultTokenizerPath());
    oracle = hfFromFile(defaultTokenizerPath());
  });

  it('encodes the whole of Tiny Shakespeare to HF ids and decodes it back exactly', async () => {
    const text = readFileSync(corpusPath, 'utf8');
    const ids = ours.encode(text);
    expect(ids.length).toBe(340_240);
    const [expected] = await hfEncodeAll(oracle, [text]);
    expect(Array.from(ids)).toEqual(expected);
    expect(ours.decode(ids)).toBe(text);
  });

  it('matches HF ids and decoded text on the stress set', async () => {
    const expected = await hfEncodeAll(oracle, STRESS_SET);
    STRESS_SET.forEach((text, index) => {
      expect(Array.from(ours.encode(text)), JSON.stringify(text)).toEqual(expected[index]);
    });
    const decoded = await oracle.decodeBatch(expected, false);
    const skipped = await oracle.decodeBatch(expected, true);
    expected.forEach((ids, index) => {
      expect(ours.decode(ids, { skipSpecialTokens: false })).toBe(decoded[index]);
      expect(ours.decode(ids, { skipSpecialTokens: true })).toBe(skipped[index]);
      expect(ours.decode(ids)).toBe(skipped[index]); // HF's default skips them
    });
  });

  it('keeps a leading BOM and does not clean up spaces when decoding', () => {
    for (const text of ['\ufeffhello', "a , b . c 's", 'x \u0085 y']) {
      expect(ours.decode(ours.encode(text), { skipSpecialTokens: false })).toBe(text);
    }
  });

  it('splits added space-run tokens before byte-level pre-tokenization', () => {
    const ids = Array.from(ours.encode('a  b'));
    expect(ids).toContain(ours.tokenToId('  '));
  });

  it('reports vocabulary size, special tokens and token lookups like HF', () => {
    expect(ours.vocabSize).toBe(oracle.getVocabSize(true));
    expect(ours.vocabSize).toBe(50_277);
    expect(ours.specialTokens).toEqual({ bos: 0, eos: 0, pad: 1 });
    expect(ours.tokenToId('<|endoftext|>')).toBe(0);
    expect(ours.tokenToId('Ġthe')).toBe(253);
    expect(ours.idToToken(253)).toBe('Ġthe');
    expect(ours.idToToken(1_000_000)).toBeUndefined();
    expect(ours.tokenToId('not a token at all')).toBeUndefined();
    expect(ours.isSpecialToken(0)).toBe(true);
    expect(ours.isSpecialToken(253)).toBe(false);
  });

  it('skips special tokens on request and ignores unknown ids', () => {
    const ids = [0, ...ours.encode('Hi'), 1, 999_999];
    expect(ours.decode(ids, { skipSpecialTokens: false })).toBe('<|endoftext|>Hi<|padding|>');
    expect(ours.decode(ids, { skipSpecialTokens: true })).toBe('Hi');
    expect(ours.decode(ids)).toBe('Hi');
  });

  it('round-trips toJSON and has a stable hash of the canonical JSON', () => {
    const again = Tokenizer.fromJSON(ours.toJSON());
    expect(again.hash).toBe(ours.hash);
    expect(ours.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(Array.from(again.encode('Round trip, round trip.'))).toEqual(
      Array.from(ours.encode('Round trip, round trip.')),
    );
    const changed = JSON.parse(ours.toJSON());
    changed.added_tokens[0].content = '<|eot|>';
    expect(Tokenizer.fromJSON(changed).hash).not.toBe(ours.hash);
  });

  it('encodeBatch equals encode per text', () => {
    const texts = ['one', 'two words', '', 'three  spaced  words'];
    expect(ours.encodeBatch(texts).map((ids) => Array.from(ids))).toEqual(
      texts.map((text) => Array.from(ours.encode(text))),
    );
  });
});

describe('loading errors', () => {
  const base = () => JSON.parse(readFileSync(defaultTokenizerPath(), 'utf8'));

  it('names an unsupported normalizer, pre-tokenizer, decoder, post-processor and model', () => {
    const cases: [string, unknown, RegExp][] = [
      ['normalizer', { type: 'Precompiled' }, /normalizer "Precompiled"/],
      ['pre_tokenizer', { type: 'UnicodeScripts' }, /pre_tokenizer "UnicodeScripts"/],
      ['decoder', { type: 'WordPiece' }, /decoder "WordPiece"/],
      ['post_processor', { type: 'Mystery' }, /post_processor "Mystery"/],
      ['model', { ...base().model, type: 'Unigram' }, /model "Unigram"/],
      ['model', { ...base().model, dropout: 0.1 }, /dropout/],
    ];
    for (const [field, value, message] of cases) {
      const json = { ...base(), [field]: value };
      expect(() => Tokenizer.fromJSON(json)).toThrow(message);
    }
  });

  it('names the file and the field for broken input', () => {
    expect(() => Tokenizer.fromFile('/nonexistent/tokenizer.json')).toThrow(
      /\/nonexistent\/tokenizer\.json/,
    );
    expect(() => Tokenizer.fromJSON('{not json')).toThrow(/not valid JSON/);
    const json = base();
    json.model.merges[5] = 'Ġ zzzz-not-there';
    expect(() => Tokenizer.fromJSON(json)).toThrow(/model\.merges\[5\]/);
  });
});
