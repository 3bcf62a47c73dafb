// safetensors (https://github.com/huggingface/safetensors) reader and writer.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON
// { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { string: string } },
// then the data buffer; offsets are relative to the buffer's start. Every byte of the buffer must
// belong to exactly one tensor (no holes, no overlap), as the reference implementation requires.
// The reader validates all of this and names the file in every error.
import {
  closeSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { ModelError } from './errors';

export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U8'
  | 'BOOL';

/** The float dtypes a checkpoint's weights may be stored in (all read as float32). */
export type FloatDtype = 'F16' | 'BF16' | 'F32' | 'F64';

export type TensorData =
  | Float32Array
  | Float64Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/**
 * One tensor. `dtype` is the file's dtype; F16/BF16 are widened to a Float32Array when read
 * (JavaScript has no 16-bit float array) and must be given as Float32Array when written
 * (they are rounded to nearest-even).
 */
export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

const BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Largest header the reference implementation accepts (100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends ModelError {
  constructor(path: string, message: string) {
    super(`${path}: not a valid safetensors file: ${message}`);
    this.name = 'SafetensorsError';
  }
}

function elementCount(shape: number[]): number {
  return shape.reduce((product, size) => product * size, 1);
}

/**
 * Reads and validates a safetensors file. The header is read first and validated against the
 * file's size; then each tensor is read from the file into its own buffer, so the whole file is
 * never held in memory besides the tensors (a 760 MB checkpoint used to peak at twice that).
 */
export function readSafetensors(path: string): Map<string, SafetensorsTensor> {
  return withLayout(path, (layout, readAt) =>
    decodeEntries(layout.entries, (entry) =>
      readAt(layout.headerEnd + entry.begin, entry.end - entry.begin),
    ),
  );
}

/**
 * Validates a safetensors file's header now and reads each tensor's data only when `read()` is
 * called (opening the file again), so a caller that turns tensors into something else one by one
 * holds one tensor's bytes at a time. The file must not change in between.
 */
export function readSafetensorsLazily(
  path: string,
): Map<string, { dtype: SafetensorsDtype; shape: number[]; read: () => TensorData }> {
  const layout = withLayout(path, (found) => found);
  const out = new Map<
    string,
    { dtype: SafetensorsDtype; shape: number[]; read: () => TensorData }
  >();
  for (const entry of layout.entries) {
    const read = () =>
      withLayout(path, (again, readAt) => {
        if (again.headerEnd !== layout.headerEnd) {
          throw new SafetensorsError(path, 'the file changed while it was being read');
        }
        const bytes = readAt(layout.headerEnd + entry.begin, entry.end - entry.begin);
        return decode(entry.dtype, bytes.buffer, elementCount(entry.shape));
      });
    out.set(entry.name, { dtype: entry.dtype, shape: entry.shape, read });
  }
  return out;
}

/** Reads only the `__metadata__` map of a safetensors file (and validates its header). */
export function readSafetensorsMetadata(path: string): Record<string, string> {
  return withLayout(path, (layout) => layout.metadata);
}

/** Opens a safetensors file, validates its header and hands the layout and a reader to `use`. */
function withLayout<T>(
  path: string,
  use: (
    layout: ReturnType<typeof parseLayout>,
    readAt: (position: number, length: number) => Uint8Array,
  ) => T,
): T {
  let descriptor: number;
  try {
    descriptor = openSync(path, 'r');
  } catch (error) {
    throw new ModelError(`${path}: cannot read safetensors file (${(error as Error).message})`);
  }
  try {
    const readAt = (position: number, length: number): Uint8Array => {
      const bytes = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const read = readSync(descriptor, bytes, done, length - done, position + done);
        if (read === 0) break;
        done += read;
      }
      return done === length ? bytes : bytes.subarray(0, done);
    };
    const layout = parseLayout(fstatSync(descriptor).size, (length) => readAt(0, length), path);
    return use(layout, readAt);
  } catch (error) {
    if (error instanceof ModelError) throw error;
    throw new ModelError(`${path}: cannot read safetensors file (${(error as Error).message})`);
  } finally {
    closeSync(descriptor);
  }
}

/** A tensor's place in the data buffer, as the header gives it (validated). */
interface LayoutEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Validates a safetensors header and its data offsets against a file of `byteLength` bytes;
 * `read(n)` gives the file's first n bytes (the length field, then the header).
 */
function parseLayout(
  byteLength: number,
  read: (length: number) => Uint8Array,
  name: string,
): { entries: LayoutEntry[]; metadata: Record<string, string>; headerEnd: number } {
  const fail = (message: string): never => {
    throw new SafetensorsError(name, message);
  };
  if (byteLength < 8) {
    fail(`file is ${byteLength} bytes, shorter than the 8-byte header length (truncated?)`);
  }
  const lengthBytes = read(8);
  const headerLength = new DataView(
    lengthBytes.buffer,
    lengthBytes.byteOffset,
    lengthBytes.byteLength,
  ).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const headerEnd = 8 + Number(headerLength);
  if (headerEnd > byteLength) {
    fail(
      `header claims ${headerLength} bytes but the file has only ${byteLength - 8} after the length field (truncated?)`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(read(headerEnd).subarray(8, headerEnd)),
    );
  } catch (error) {
    fail(`header is not valid UTF-8 JSON (${(error as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    fail('header must be a JSON object');
  }
  const dataLength = byteLength - headerEnd;
  const metadata: Record<string, string> = {};
  const entries: LayoutEntry[] = [];
  for (const [tensorName, value] of Object.entries(header as Record<string, unknown>)) {
    if (tensorName === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        fail('__metadata__ must be an object of strings');
      }
      for (const [key, text] of Object.entries(value as Record<string, unknown>)) {
        if (typeof text !== 'string') fail(`__metadata__.${key} must be a string`);
        metadata[key] = text as string;
      }
      continue;
    }
    if (value === null || typeof value !== 'object')
      fail(`tensor '${tensorName}': entry must be an object`);
    const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof entry.dtype !== 'string' || !(entry.dtype in BYTES)) {
      fail(
        `tensor '${tensorName}': unsupported dtype ${JSON.stringify(entry.dtype)} (expected one of ${Object.keys(BYTES).join(', ')})`,
      );
    }
    const dtype = entry.dtype as SafetensorsDtype;
    if (
      !Array.isArray(entry.shape) ||
      !entry.shape.every((size) => Number.isSafeInteger(size) && (size as number) >= 0)
    ) {
      fail(
        `tensor '${tensorName}': shape must be an array of non-negative integers, got ${JSON.stringify(entry.shape)}`,
      );
    }
    const shape = entry.shape as number[];
    const offsets = entry.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((offset) => Number.isSafeInteger(offset) && (offset as number) >= 0)
    ) {
      fail(
        `tensor '${tensorName}': data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin)
      fail(`tensor '${tensorName}': data_offsets [${begin}, ${end}] end before begin`);
    if (end > dataLength) {
      fail(
        `tensor '${tensorName}': data_offsets [${begin}, ${end}] reach past the ${dataLength}-byte data buffer (truncated?)`,
      );
    }
    const expected = elementCount(shape) * BYTES[dtype];
    if (end - begin !== expected) {
      fail(
        `tensor '${tensorName}': ${dtype} shape [${shape.join(', ')}] needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    entries.push({ name: tensorName, dtype, shape, begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const entry of sorted) {
    if (entry.begin < covered) {
      fail(
        `tensor '${entry.name}': data_offsets [${entry.begin}, ${entry.end}] overlap another tensor`,
      );
    }
    if (entry.begin > covered) {
      fail(`bytes ${covered}..${entry.begin} of the data buffer belong to no tensor`);
    }
    covered = entry.end;
  }
  if (covered !== dataLength) {
    fail(
      `the data buffer has ${dataLength} bytes but the tensors cover ${covered} (truncated or trailing bytes)`,
    );
  }
  return { entries, metadata, headerEnd };
}

/** Each entry's bytes (`bytesOf`, a fresh buffer per tensor) decoded into its typed array. */
function decodeEntries(
  entries: LayoutEntry[],
  bytesOf: (entry: LayoutEntry) => Uint8Array,
): Map<string, SafetensorsTensor> {
  const tensors = new Map<string, SafetensorsTensor>();
  for (const entry of entries) {
    const bytes = bytesOf(entry); // owned and aligned: offset 0 of its own buffer
    tensors.set(entry.name, {
      dtype: entry.dtype,
      shape: entry.shape,
      data: decode(entry.dtype, bytes.buffer, elementCount(entry.shape)),
    });
  }
  return tensors;
}

/** Parses safetensors bytes; `name` is used in error messages. */
export function parseSafetensors(
  bytes: Uint8Array,
  name = 'safetensors',
): { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> } {
  const { entries, metadata, headerEnd } = parseLayout(
    bytes.byteLength,
    (length) => bytes.subarray(0, length),
    name,
  );
  const tensors = decodeEntries(entries, (entry) => {
    const slice = new Uint8Array(entry.end - entry.begin); // a copy: aligned and owned
    slice.set(bytes.subarray(headerEnd + entry.begin, headerEnd + entry.end));
    return slice;
  });
  return { tensors, metadata };
}

function decode(dtype: SafetensorsDtype, buffer: ArrayBufferLike, count: number): TensorData {
  switch (dtype) {
    case 'F64':
      return new Float64Array(buffer, 0, count);
    case 'F32':
      return new Float32Array(buffer, 0, count);
    case 'F16': {
      const halves = new Uint16Array(buffer, 0, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(halves[i] as number);
      return out;
    }
    case 'BF16': {
      const halves = new Uint16Array(buffer, 0, count);
      const words = new Uint32Array(count);
      for (let i = 0; i < count; i++) words[i] = (halves[i] as number) << 16;
      return new Float32Array(words.buffer);
    }
    case 'I64':
      return new BigInt64Array(buffer, 0, count);
    case 'I32':
      return new Int32Array(buffer, 0, count);
    case 'I16':
      return new Int16Array(buffer, 0, count);
    case 'I8':
      return new Int8Array(buffer, 0, count);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buffer, 0, count);
  }
}

function halfToFloat(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >> 10) & 0x1f;
  const fraction = half & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/**
 * `value` rounded to the precision of a float dtype as the writer stores it (F16/BF16 round to
 * nearest even, F32 to float32; F64 unchanged), read back as a number.
 */
export function roundToDtype(value: number, dtype: FloatDtype): number {
  switch (dtype) {
    case 'F16':
      return halfToFloat(floatToHalf(value));
    case 'BF16':
      floatScratch[0] = 0;
      wordScratch[0] = floatToBfloat16(value) << 16;
      return floatScratch[0] as number;
    case 'F32':
      return Math.fround(value);
    case 'F64':
      return value;
  }
}

/** The spacing of `dtype` values at `value` (one unit in the last place; subnormals included). */
export function unitInLastPlace(value: number, dtype: FloatDtype): number {
  const { mantissaBits, minExponent } = {
    F16: { mantissaBits: 10, minExponent: -14 },
    BF16: { mantissaBits: 7, minExponent: -126 },
    F32: { mantissaBits: 23, minExponent: -126 },
    F64: { mantissaBits: 52, minExponent: -1022 },
  }[dtype];
  const exponent =
    value === 0 ? minExponent : Math.max(minExponent, Math.floor(Math.log2(Math.abs(value))));
  return 2 ** (exponent - mantissaBits);
}

const floatScratch = new Float32Array(1);
const wordScratch = new Uint32Array(floatScratch.buffer);

function floatToBfloat16(value: number): number {
  floatScratch[0] = value;
  const word = wordScratch[0] as number;
  if ((word & 0x7f800000) === 0x7f800000 && word & 0x7fffff) return (word >>> 16) | 0x40; // NaN
  return ((word + 0x7fff + ((word >>> 16) & 1)) >>> 16) & 0xffff; // round to nearest even
}

function floatToHalf(value: number): number {
  floatScratch[0] = value;
  const word = wordScratch[0] as number;
  const sign = (word >>> 16) & 0x8000;
  const exponent = (word >>> 23) & 0xff;
  let mantissa = word & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  let halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let halfMantissa = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && halfMantissa & 1)) halfMantissa++;
    return sign | halfMantissa;
  }
  let halfMantissa = mantissa >>> 13;
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && halfMantissa & 1)) {
    halfMantissa++;
    if (halfMantissa === 0x400) {
      halfMantissa = 0;
      halfExponent++;
      if (halfExponent >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (halfExponent << 10) | halfMantissa;
}

function encode(name: string, tensor: SafetensorsTensor): Uint8Array {
  const count = elementCount(tensor.shape);
  if (tensor.data.length !== count) {
    throw new ModelError(
      `writeSafetensors: tensor '${name}' has ${tensor.data.length} values but shape [${tensor.shape.join(', ')}] needs ${count}`,
    );
  }
  const { data } = tensor;
  if (tensor.dtype === 'F16' || tensor.dtype === 'BF16') {
    if (!(data instanceof Float32Array)) {
      throw new ModelError(
        `writeSafetensors: tensor '${name}': ${tensor.dtype} data must be a Float32Array`,
      );
    }
    const out = new Uint16Array(count);
    const convert = tensor.dtype === 'F16' ? floatToHalf : floatToBfloat16;
    for (let i = 0; i < count; i++) out[i] = convert(data[i] as number);
    return new Uint8Array(out.buffer);
  }
  const expected: Record<string, new (length: number) => TensorData> = {
    F64: Float64Array,
    F32: Float32Array,
    I64: BigInt64Array,
    I32: Int32Array,
    I16: Int16Array,
    I8: Int8Array,
    U8: Uint8Array,
    BOOL: Uint8Array,
  };
  const arrayType = expected[tensor.dtype];
  if (arrayType === undefined || !(data instanceof arrayType)) {
    throw new ModelError(
      `writeSafetensors: tensor '${name}': ${tensor.dtype} data must be a ${arrayType?.name ?? 'typed array'}`,
    );
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Serialises tensors (in the map's order) to safetensors bytes. */
export function serializeSafetensors(
  tensors: ReadonlyMap<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, tensor] of tensors) {
    if (name === '__metadata__')
      throw new ModelError("writeSafetensors: '__metadata__' is not a tensor name");
    if (!(tensor.dtype in BYTES))
      throw new ModelError(`writeSafetensors: tensor '${name}': unknown dtype ${tensor.dtype}`);
    const bytes = encode(name, tensor);
    header[name] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [offset, offset + bytes.byteLength],
    };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  // pad with spaces so the data buffer starts 8-byte aligned, as the reference writer does
  const headerBytes = new TextEncoder().encode(json);
  const padding = (8 - (headerBytes.byteLength % 8)) % 8;
  json += ' '.repeat(padding);
  const paddedHeader = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + paddedHeader.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(paddedHeader.byteLength), true);
  out.set(paddedHeader, 8);
  let position = 8 + paddedHeader.byteLength;
  for (const chunk of chunks) {
    out.set(chunk, position);
    position += chunk.byteLength;
  }
  return out;
}

/** Writes a safetensors file atomically (temporary file + fsync + rename). */
export function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): void {
  const bytes = serializeSafetensors(tensors, metadata);
  const temporary = `${path}.tmp-${process.pid}-${Date.now()}`;
  const descriptor = openSync(temporary, 'w');
  try {
    let written = 0;
    while (written < bytes.byteLength) {
      written += writeSync(descriptor, bytes, written, bytes.byteLength - written);
    }
    fsyncSync(descriptor);
  } finally {
    closeSync(descriptor);
  }
  renameSync(temporary, path);
}
