// The GPT-2 byte <-> printable-character table: every byte maps to one visible Unicode character
// so that byte strings can be stored as ordinary vocabulary strings.

function buildByteToChar(): string[] {
  const table: string[] = new Array(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 0x21 && byte <= 0x7e) ||
      (byte >= 0xa1 && byte <= 0xac) ||
      (byte >= 0xae && byte <= 0xff);
    table[byte] = String.fromCharCode(printable ? byte : next++);
  }
  return table;
}

/** byte (0..255) -> its byte-level character. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** char code of a byte-level character -> byte, or -1 when the character is not byte-level. */
export const CHAR_CODE_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(0x144).fill(-1);
  BYTE_TO_CHAR.forEach((char, byte) => {
    table[char.charCodeAt(0)] = byte;
  });
  return table;
})();

/** The 256 byte-level characters in byte order (HF's `ByteLevel.alphabet()` as a set). */
export function byteLevelAlphabet(): string[] {
  return [...BYTE_TO_CHAR];
}

/** Maps a string's UTF-8 bytes to byte-level characters. */
export function toByteLevel(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let out = '';
  for (const byte of bytes) out += BYTE_TO_CHAR[byte];
  return out;
}

/**
 * Maps a token made of byte-level characters back to its bytes; `undefined` when some character
 * is not byte-level (HF then keeps the token's own UTF-8 bytes).
 */
export function byteLevelToBytes(token: string): number[] | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const code = token.charCodeAt(i);
    const byte = code < CHAR_CODE_TO_BYTE.length ? CHAR_CODE_TO_BYTE[code]! : -1;
    if (byte < 0) return undefined;
    bytes.push(byte);
  }
  return bytes;
}
