import { describe, expect, it } from 'vitest';
import { translateRegex } from './regex-translate.js';

describe('translateRegex refuses patterns that backtrack catastrophically', () => {
  it('refuses a repeated group that contains a quantifier, naming the component', () => {
    for (const pattern of [
      '(a+)+',
      '(?:\\s*\\w+)*$',
      '(x?y)+',
      '(?:\\d{1,3})+',
      '(a+){2,}',
      '(a*){1,9}',
    ]) {
      expect(() => translateRegex(pattern, 'pre_tokenizer Split')).toThrow(
        /^pre_tokenizer Split: the regex \/.*\/ repeats a group that itself contains a quantifier \(a nested quantifier, '\).*' at offset \d+\), which can backtrack catastrophically and hang/,
      );
    }
  });

  it('keeps the patterns real tokenizers use (GPT-2, cl100k, Llama 3) and harmless groups', () => {
    const patterns = [
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      '(ab)+',
      '(a+)?',
      '(a+){2}',
      '(?:x|y)*z+',
    ];
    for (const pattern of patterns) expect(() => translateRegex(pattern, 'c')).not.toThrow();
  });
});
