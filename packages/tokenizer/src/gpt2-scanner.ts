// A hand-written matcher for the GPT-2 / GPT-NeoX split pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// that returns token boundaries without allocating (the RegExp in pre-tokenizers.ts is the
// reference it is tested against). Input must be well-formed UTF-16.
import { CHAR_CLASS, WHITESPACE } from './char-classes.js';

function codePointAt(text: string, index: number): number {
  const code = text.charCodeAt(index);
  if (code >= 0xd800 && code <= 0xdbff && index + 1 < text.length) {
    const low = text.charCodeAt(index + 1);
    if (low >= 0xdc00 && low <= 0xdfff) return ((code - 0xd800) << 10) + (low - 0xdc00) + 0x10000;
  }
  return code;
}

/** End (exclusive) of the pattern's match starting at `start` (< text.length). */
export function gpt2TokenEnd(text: string, start: number): number {
  const length = text.length;
  const first = text.charCodeAt(start);
  if (first === 0x27 && start + 1 < length) {
    // 's 't 'm 'd, then 're 've 'll
    const second = text.charCodeAt(start + 1);
    if (second === 0x73 || second === 0x74 || second === 0x6d || second === 0x64) return start + 2;
    if (start + 2 < length) {
      const third = text.charCodeAt(start + 2);
      if (
        (third === 0x65 && (second === 0x72 || second === 0x76)) ||
        (second === 0x6c && third === 0x6c)
      ) {
        return start + 3;
      }
    }
  }
  let position = start;
  let point = codePointAt(text, start);
  let kind = CHAR_CLASS[point]!;
  if (first === 0x20 && start + 1 < length) {
    // ' ?' before a letter, number or other run.
    const next = codePointAt(text, start + 1);
    const nextKind = CHAR_CLASS[next]!;
    if (nextKind !== WHITESPACE) {
      position = start + 1;
      point = next;
      kind = nextKind;
    }
  }
  if (kind !== WHITESPACE) {
    let end = position + (point > 0xffff ? 2 : 1);
    while (end < length) {
      const code = codePointAt(text, end);
      if (CHAR_CLASS[code] !== kind) break;
      end += code > 0xffff ? 2 : 1;
    }
    return end;
  }
  // Whitespace (all in the BMP): \s+(?!\S) leaves the last one of a run followed by non-space.
  let end = start + 1;
  while (end < length && CHAR_CLASS[text.charCodeAt(end)] === WHITESPACE) end++;
  if (end === length || end - start === 1) return end;
  return end - 1;
}
