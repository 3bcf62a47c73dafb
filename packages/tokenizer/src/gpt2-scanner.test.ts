import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gpt2TokenEnd } from './gpt2-scanner.js';
import { GPT2_PATTERN } from './pre-tokenizers.js';
import { STRESS_SET } from './test-support/stress-set.js';

function scan(text: string): string[] {
  const words: string[] = [];
  for (let start = 0; start < text.length; ) {
    const end = gpt2TokenEnd(text, start);
    words.push(text.slice(start, end));
    start = end;
  }
  return words;
}

function regexWords(text: string): string[] {
  return text.match(GPT2_PATTERN) ?? [];
}

const pieces = [
  ' ',
  '  ',
  '\t',
  '\n',
  '\r\n',
  '\u0085',
  '\u00a0',
  '\u3000',
  '\ufeff',
  "'",
  "'s",
  "'t",
  "'re",
  "'ve",
  "'m",
  "'ll",
  "'d",
  "'S",
  "'x",
  'a',
  'Z',
  'é',
  '中',
  '𝔘',
  '\u{10940}',
  '1',
  '٣',
  'Ⅻ',
  '²',
  '.',
  '!',
  '-',
  '😀',
  '\u0301',
  '\u200d',
];

describe('gpt2TokenEnd', () => {
  it('splits exactly like the GPT-2 RegExp (with HF classes) on the stress set', () => {
    const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
    const wellFormed = STRESS_SET.filter((text) => !loneSurrogate.test(text));
    expect(wellFormed.length).toBeGreaterThan(20);
    for (const text of wellFormed) expect(scan(text)).toEqual(regexWords(text));
  });

  it('splits exactly like the RegExp on random strings', () => {
    const text = fc.oneof(
      fc.array(fc.constantFrom(...pieces), { maxLength: 30 }).map((parts) => parts.join('')),
      fc.string({ unit: 'binary', maxLength: 30 }),
      fc
        .array(fc.integer({ min: 0, max: 0x10ffff - 0x800 }), { maxLength: 20 })
        .map((points) =>
          String.fromCodePoint(...points.map((point) => (point < 0xd800 ? point : point + 0x800))),
        ),
    );
    fc.assert(
      fc.property(text, (sample) => {
        expect(scan(sample)).toEqual(regexWords(sample));
      }),
      { seed: 7, numRuns: 3000 },
    );
  });
});
