// Per-code-point classes of HF's GPT-2 split pattern (`\p{L}`, `\p{N}`, `\s` as Oniguruma in
// HF `tokenizers` defines them), as one byte per code point for the scanner's hot loop.
import { HF_LETTER, HF_NUMBER, HF_WHITESPACE } from './unicode-tables.js';

export const OTHER = 0;
export const LETTER = 1;
export const NUMBER = 2;
export const WHITESPACE = 3;

/** Marks the code points of a RegExp class body made of single characters and `a-b` ranges. */
function fillClass(table: Uint8Array, body: string, value: number): void {
  const points = Array.from(body, (char) => char.codePointAt(0)!);
  for (let i = 0; i < points.length; i++) {
    const first = points[i]!;
    if (points[i + 1] === 0x2d && i + 2 < points.length) {
      table.fill(value, first, points[i + 2]! + 1);
      i += 2;
    } else {
      table[first] = value;
    }
  }
}

/** code point -> OTHER | LETTER | NUMBER | WHITESPACE. */
export const CHAR_CLASS: Uint8Array = (() => {
  const table = new Uint8Array(0x110000);
  fillClass(table, HF_LETTER, LETTER);
  fillClass(table, HF_NUMBER, NUMBER);
  fillClass(table, HF_WHITESPACE, WHITESPACE);
  return table;
})();
