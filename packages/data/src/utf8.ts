// Streaming, strict UTF-8 reading of text files: decoded chunks and lines, with the byte offset of
// the first invalid sequence in the error (TextDecoder's own error does not say where).
import { open } from 'node:fs/promises';
import { DataError } from './errors';

const CHUNK_BYTES = 1 << 20;

/**
 * Offset of the first invalid UTF-8 sequence in bytes[from..], or -1 when all complete sequences
 * are valid (a truncated sequence at the very end counts as valid when `final` is false).
 */
export function findInvalidUtf8(bytes: Uint8Array, from = 0, final = true): number {
  let i = from;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return i;
    }
    if (i + need >= bytes.length) {
      // The sequence runs past the end of the buffer: fine mid-stream if what is there fits.
      for (let k = i + 1; k < bytes.length; k++) {
        if (((bytes[k] as number) & 0xc0) !== 0x80) return i;
      }
      return final ? i : -1;
    }
    let code = b & (0x7f >> (need + 1));
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k] as number;
      if ((c & 0xc0) !== 0x80) return i;
      code = (code << 6) | (c & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

/** Yields the file's text in decoded chunks; invalid UTF-8 -> error with file and byte offset. */
export async function* readTextChunks(
  path: string,
  chunkBytes = CHUNK_BYTES,
): AsyncGenerator<string> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw fileError(path, error);
  }
  try {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const buffer = new Uint8Array(chunkBytes);
    let offset = 0;
    // The last few bytes of the previous chunk, to locate errors that straddle a boundary.
    let tail = new Uint8Array(0);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, chunkBytes, offset);
      const bytes = buffer.subarray(0, bytesRead);
      const final = bytesRead === 0;
      let text: string;
      try {
        text = decoder.decode(bytes, { stream: !final });
      } catch {
        throw invalidUtf8(path, offset, tail, bytes);
      }
      if (text) yield text;
      if (final) return;
      offset += bytesRead;
      const kept = new Uint8Array(Math.min(4, tail.length + bytesRead));
      const fromTail = kept.length - Math.min(kept.length, bytesRead);
      kept.set(tail.subarray(tail.length - fromTail));
      kept.set(bytes.subarray(bytesRead - (kept.length - fromTail)), fromTail);
      tail = kept;
    }
  } finally {
    await handle.close();
  }
}

function invalidUtf8(
  path: string,
  chunkStart: number,
  tail: Uint8Array,
  bytes: Uint8Array,
): DataError {
  const joined = new Uint8Array(tail.length + bytes.length);
  joined.set(tail);
  joined.set(bytes, tail.length);
  // Start validation at a character boundary inside the tail.
  let from = 0;
  for (let i = 0; i < tail.length; i++) {
    const b = joined[i] as number;
    if ((b & 0xc0) !== 0x80) {
      from = i;
      break;
    }
    from = i + 1;
  }
  const at = findInvalidUtf8(joined, from, bytes.length === 0);
  const offset = at < 0 ? chunkStart + bytes.length : chunkStart - tail.length + at;
  return new DataError(`${path}: invalid UTF-8 at byte offset ${offset}`);
}

/** Turns fs errors into messages naming the file. */
export function fileError(path: string, error: unknown): DataError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new DataError(`file not found: ${path}`);
  if (code === 'EISDIR') return new DataError(`${path} is a directory, expected a file`);
  return new DataError(`cannot read ${path}: ${(error as Error).message}`);
}

/** Yields lines with their '\n' terminator (the last line may lack one), strictly decoded. */
export async function* readLines(path: string, chunkBytes = CHUNK_BYTES): AsyncGenerator<string> {
  let carry = '';
  for await (const chunk of readTextChunks(path, chunkBytes)) {
    let text = carry + chunk;
    let start = 0;
    for (;;) {
      const newline = text.indexOf('\n', start);
      if (newline < 0) break;
      yield text.slice(start, newline + 1);
      start = newline + 1;
    }
    text = text.slice(start);
    carry = text;
  }
  if (carry) yield carry;
}
