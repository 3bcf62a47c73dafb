// Differential tests of the tokenizer.json components beyond the GPT-NeoX file: each variant is
// loaded by us and by HF `tokenizers` (npm binding), and must give the same ids and decoded text.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hfEncodeAll, hfFromString } from './test-support/hf-oracle.js';
import { STRESS_SET } from './test-support/stress-set.js';
import { Tokenizer } from './tokenizer.js';

interface Json {
  [key: string]: unknown;
  model: Record<string, unknown>;
  added_tokens: unknown[];
}

const trained = JSON.parse(
  readFileSync(new URL('./__fixtures__/hf-trained-bpe.tokenizer.json', import.meta.url), 'utf8'),
) as Json;

const byteLevel = (addPrefixSpace: boolean, useRegex = true) => ({
  type: 'ByteLevel',
  add_prefix_space: addPrefixSpace,
  trim_offsets: true,
  use_regex: useRegex,
});
const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const addedToken = (content: string, flags: Partial<Record<string, boolean>>) => ({
  id: 0,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: true,
  special: false,
  ...flags,
});

/** Variants of the byte-level tokenizer trained by tools/tokenizer/train-bpe-fixture.py. */
const BYTE_LEVEL_VARIANTS: Record<string, (json: Json) => void> = {
  'Llama-3 Split regex + ByteLevel without regex + ignore_merges': (json) => {
    json.pre_tokenizer = {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_PATTERN }, behavior: 'Isolated', invert: false },
        byteLevel(false, false),
      ],
    };
    json.model.ignore_merges = true;
  },
  'NFKC + Lowercase, ByteLevel add_prefix_space': (json) => {
    json.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Lowercase' }] };
    json.pre_tokenizer = byteLevel(true);
  },
  NFD: (json) => {
    json.normalizer = { type: 'NFD' };
  },
  NFKD: (json) => {
    json.normalizer = { type: 'NFKD' };
  },
  'NFD + StripAccents + Strip': (json) => {
    json.normalizer = {
      type: 'Sequence',
      normalizers: [
        { type: 'NFD' },
        { type: 'StripAccents' },
        { type: 'Strip', strip_left: true, strip_right: true },
      ],
    };
  },
  'Replace (string and regex) + Prepend': (json) => {
    json.normalizer = {
      type: 'Sequence',
      normalizers: [
        { type: 'Replace', pattern: { String: '  ' }, content: ' ' },
        { type: 'Replace', pattern: { Regex: '\\d+' }, content: '#' },
        { type: 'Prepend', prepend: '>' },
      ],
    };
  },
  'Split behaviors (MergedWithNext, MergedWithPrevious, Contiguous, Removed)': (json) => {
    json.pre_tokenizer = {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithNext', invert: false },
        {
          type: 'Split',
          pattern: { Regex: '[,.!?]' },
          behavior: 'MergedWithPrevious',
          invert: false,
        },
        { type: 'Split', pattern: { Regex: '\\p{N}' }, behavior: 'Contiguous', invert: false },
        { type: 'Split', pattern: { String: 'e' }, behavior: 'Removed', invert: false },
        byteLevel(false, false),
      ],
    };
  },
  'Split inverted \\w+': (json) => {
    json.pre_tokenizer = {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: '\\w+' }, behavior: 'Removed', invert: true },
        byteLevel(false, false),
      ],
    };
  },
  Whitespace: (json) => {
    json.pre_tokenizer = {
      type: 'Sequence',
      pretokenizers: [{ type: 'Whitespace' }, byteLevel(false, false)],
    };
  },
  'WhitespaceSplit + Digits + Punctuation': (json) => {
    json.pre_tokenizer = {
      type: 'Sequence',
      pretokenizers: [
        { type: 'WhitespaceSplit' },
        { type: 'Digits', individual_digits: true },
        { type: 'Punctuation', behavior: 'Isolated' },
        byteLevel(true, false),
      ],
    };
  },
  'BertPreTokenizer, CharDelimiterSplit': (json) => {
    json.pre_tokenizer = {
      type: 'Sequence',
      pretokenizers: [
        { type: 'CharDelimiterSplit', delimiter: 'e' },
        { type: 'BertPreTokenizer' },
        byteLevel(false, false),
      ],
    };
  },
  'Digits (contiguous) + ByteLevel': (json) => {
    json.pre_tokenizer = {
      type: 'Sequence',
      pretokenizers: [{ type: 'Digits', individual_digits: false }, byteLevel(false)],
    };
  },
  'added tokens: single_word, lstrip, rstrip, normalized, already in the vocabulary': (json) => {
    json.added_tokens.push(
      addedToken('ROMEO', { single_word: true }),
      addedToken('<mask>', { lstrip: true, rstrip: true, normalized: false, special: true }),
      addedToken('the', { lstrip: true }),
      addedToken('[X]', { rstrip: true, normalized: false }),
      addedToken('ÉCOLE', {}),
    );
    json.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Lowercase' }] };
  },
  TemplateProcessing: (json) => {
    const special = (id: string, ids: number[]) => ({ id, ids, tokens: [id] });
    json.post_processor = {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '<|endoftext|>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<|padding|>', type_id: 0 } },
      ],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: {
        '<|endoftext|>': special('<|endoftext|>', [0]),
        '<|padding|>': special('<|padding|>', [1]),
      },
    };
  },
};

/** A small SentencePiece-style BPE (▁ words, <0xXX> byte fallback, <unk>) built by hand. */
function metaspaceModel(): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let byte = 0; byte < 256; byte++) {
    vocab[`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + byte;
  }
  const add = (token: string) => {
    if (!(token in vocab)) vocab[token] = Object.keys(vocab).length;
  };
  for (const char of "▁abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,!?'0123456789é中")
    add(char);
  const merges = [
    ['▁', 't'],
    ['h', 'e'],
    ['▁t', 'he'],
    ['▁', 'a'],
    ['i', 'n'],
    ['▁a', 'n'],
    ['▁an', 'd'],
    ['o', 'u'],
    ['▁', 'w'],
    ['e', 'r'],
    ['▁', 's'],
    ['i', 's'],
    ['▁', 'R'],
    ['▁R', 'O'],
  ];
  for (const [left, right] of merges) add(left! + right!);
  return {
    type: 'BPE',
    dropout: null,
    unk_token: '<unk>',
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: true,
    byte_fallback: true,
    ignore_merges: false,
    vocab,
    merges,
  };
}

function metaspaceTokenizer(): Json {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { ...addedToken('<unk>', { normalized: false, special: true }), id: 0 },
      { ...addedToken('<s>', { normalized: false, special: true }), id: 1 },
      { ...addedToken('</s>', { normalized: false, special: true }), id: 2 },
    ],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: metaspaceModel(),
  };
}

const SENTENCEPIECE_VARIANTS: Record<string, (json: Json) => void> = {
  'Llama-2 style: Prepend/Replace normalizer, byte_fallback, fused unk, ByteFallback decoders':
    () => {},
  'Metaspace pre-tokenizer (prepend first) and Metaspace decoder, no byte fallback': (json) => {
    json.normalizer = null;
    json.pre_tokenizer = {
      type: 'Metaspace',
      replacement: '▁',
      prepend_scheme: 'first',
      split: true,
    };
    json.decoder = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: true };
    json.model.byte_fallback = false;
    json.model.fuse_unk = false;
  },
  'Metaspace always, unsplit': (json) => {
    json.normalizer = null;
    json.pre_tokenizer = {
      type: 'Metaspace',
      replacement: '▁',
      prepend_scheme: 'always',
      split: false,
    };
    json.decoder = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: false };
  },
};

const EXTRA_TEXTS = [
  'ROMEO and ROMEOS xROMEO ROMEO!',
  'a <mask> b  <mask>  c<mask>',
  'the other theatre  the',
  '[X]   y [X]',
  'école ÉCOLE Ecole',
  'Hello, World! 123 4567 ¹²³ ½',
  'the and an is we ou',
];
const randomTexts = fc.sample(
  fc.oneof(
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.string({ unit: 'grapheme', maxLength: 15 }),
    fc
      .array(
        fc.constantFrom(
          ' ',
          '  ',
          'the',
          'an',
          '\n',
          '1',
          '23',
          'É',
          'é',
          '中',
          '😀',
          "'s",
          ',',
          'ROMEO',
        ),
        { maxLength: 20 },
      )
      .map((parts) => parts.join('')),
  ),
  { seed: 99, numRuns: 300 },
);
const TEXTS = [...STRESS_SET, ...EXTRA_TEXTS, ...randomTexts];

async function expectParity(json: Json): Promise<void> {
  const text = JSON.stringify(json);
  const ours = Tokenizer.fromJSON(text);
  const oracle = hfFromString(text);
  const expected = await hfEncodeAll(oracle, TEXTS);
  const decoded = await oracle.decodeBatch(expected, false);
  const decodedSkipping = await oracle.decodeBatch(expected, true);
  const mismatches: string[] = [];
  TEXTS.forEach((sample, index) => {
    if (Array.from(ours.encode(sample)).join() !== expected[index]!.join()) {
      mismatches.push(`encode ${JSON.stringify(sample)}`);
    }
    if (ours.decode(expected[index]!, { skipSpecialTokens: false }) !== decoded[index])
      mismatches.push(`decode ${JSON.stringify(sample)}`);
    if (ours.decode(expected[index]!) !== decodedSkipping[index]) {
      mismatches.push(`decode by default ${JSON.stringify(sample)}`);
    }
    if (ours.decode(expected[index]!, { skipSpecialTokens: true }) !== decodedSkipping[index]) {
      mismatches.push(`decode skipping ${JSON.stringify(sample)}`);
    }
  });
  expect(mismatches).toEqual([]);
  expect(ours.vocabSize).toBe(oracle.getVocabSize(true));
}

describe('component parity with HF tokenizers', () => {
  it.each(Object.entries(BYTE_LEVEL_VARIANTS))('byte-level BPE: %s', async (_name, mutate) => {
    const json = structuredClone(trained);
    mutate(json);
    await expectParity(json);
  });

  it.each(Object.entries(SENTENCEPIECE_VARIANTS))(
    'SentencePiece-style BPE: %s',
    async (_name, mutate) => {
      const json = metaspaceTokenizer();
      mutate(json);
      await expectParity(json);
    },
  );
});
