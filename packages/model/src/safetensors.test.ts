import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  parseSafetensors,
  readSafetensors,
  readSafetensorsLazily,
  readSafetensorsMetadata,
  serializeSafetensors,
  writeSafetensors,
} from './safetensors';
import type { SafetensorsTensor } from './safetensors';
import { FIXTURES } from './test-fixtures';

const dir = mkdtempSync(join(tmpdir(), 'baka-safetensors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Builds a file from a raw header object and data bytes. */
function rawFile(
  header: unknown,
  data: Uint8Array,
  headerText = JSON.stringify(header),
): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

function write(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

describe('reading tensor by tensor', () => {
  const tensors = new Map<string, SafetensorsTensor>([
    ['a', { dtype: 'F32', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }],
    ['b', { dtype: 'BF16', shape: [3], data: Float32Array.from([0.5, -8, 256]) }],
    ['c', { dtype: 'F32', shape: [1], data: Float32Array.from([-1.25]) }],
  ]);

  it('readSafetensors (one read per tensor) equals parsing the whole file', () => {
    const path = join(dir, 'per-tensor.safetensors');
    writeSafetensors(path, tensors, { format: 'pt' });
    const parsed = parseSafetensors(readFileSync(path));
    const read = readSafetensors(path);
    expect([...read.keys()]).toEqual(['a', 'b', 'c']);
    for (const [name, tensor] of parsed.tensors) {
      expect(read.get(name)!.shape).toEqual(tensor.shape);
      expect(Array.from(read.get(name)!.data as Float32Array)).toEqual(
        Array.from(tensor.data as Float32Array),
      );
    }
    expect(readSafetensorsMetadata(path)).toEqual(parsed.metadata);
  });

  it('readSafetensorsLazily validates now and reads the data only when asked', () => {
    const path = join(dir, 'lazy.safetensors');
    writeSafetensors(path, tensors);
    const lazy = readSafetensorsLazily(path);
    const eager = readSafetensors(path);
    expect(lazy.get('b')!.shape).toEqual([3]);
    expect(Array.from(lazy.get('a')!.read() as Float32Array)).toEqual([1, 2, 3, 4]);
    // the same file with other values (same layout): a read after that sees them, while the
    // eager read taken before (the control) keeps the old ones
    writeSafetensors(
      path,
      new Map(
        [...tensors].map(([name, t]) => [
          name,
          { ...t, data: (t.data as Float32Array).map((v) => v * 2) },
        ]),
      ),
    );
    expect(Array.from(lazy.get('c')!.read() as Float32Array)).toEqual([-2.5]);
    expect(Array.from(eager.get('c')!.data as Float32Array)).toEqual([-1.25]);
    // a file cut short after validation: the read fails with the file's name, no short array
    writeFileSync(path, readFileSync(path).subarray(0, readFileSync(path).byteLength - 4));
    expect(() => lazy.get('c')!.read()).toThrow(
      /lazy\.safetensors: not a valid safetensors file: .*truncated/,
    );
  });
});

describe('safetensors round trip', () => {
  it('writes and reads every dtype bit-exactly (F16/BF16 through float32)', () => {
    const tensors = new Map<string, SafetensorsTensor>([
      [
        'f32',
        { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1.5, -2, 3.25, 0, -0, 1e-30]) },
      ],
      ['scalar', { dtype: 'F32', shape: [], data: Float32Array.from([7]) }],
      [
        'f16',
        {
          dtype: 'F16',
          shape: [5],
          data: Float32Array.from([1, -2.5, 65504, 0.000061035156, 0.5]),
        },
      ],
      ['bf16', { dtype: 'BF16', shape: [3], data: Float32Array.from([1, -3.140625, 256]) }],
      ['i64', { dtype: 'I64', shape: [2], data: BigInt64Array.from([-5n, 1n << 40n]) }],
      ['i32', { dtype: 'I32', shape: [2], data: Int32Array.from([-7, 2 ** 30]) }],
      ['u8', { dtype: 'U8', shape: [3], data: Uint8Array.from([0, 128, 255]) }],
      ['f64', { dtype: 'F64', shape: [1], data: Float64Array.from([Math.PI]) }],
    ]);
    const path = join(dir, 'all.safetensors');
    writeSafetensors(path, tensors, { format: 'pt' });
    const read = readSafetensors(path);
    expect([...read.keys()]).toEqual([...tensors.keys()]);
    for (const [name, tensor] of tensors) {
      expect(read.get(name)!.dtype).toBe(tensor.dtype);
      expect(read.get(name)!.shape).toEqual(tensor.shape);
      expect(Array.from(read.get(name)!.data as ArrayLike<number>)).toEqual(
        Array.from(tensor.data as ArrayLike<number>),
      );
    }
    // the header is 8-byte aligned and carries the metadata
    const bytes = readFileSync(path);
    expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0);
    expect(parseSafetensors(bytes).metadata).toEqual({ format: 'pt' });
  });

  it('rounds F16 and BF16 to nearest even when writing', () => {
    const tensors = new Map<string, SafetensorsTensor>([
      [
        'h',
        { dtype: 'F16', shape: [2], data: Float32Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11]) },
      ],
      ['b', { dtype: 'BF16', shape: [1], data: Float32Array.from([1 + 2 ** -8]) }],
    ]);
    const read = parseSafetensors(serializeSafetensors(tensors)).tensors;
    expect(Array.from(read.get('h')!.data as Float32Array)).toEqual([1, 1 + 2 * 2 ** -10]);
    expect(Array.from(read.get('b')!.data as Float32Array)).toEqual([1]);
  });

  it('reads a file written by the Python safetensors library', () => {
    const tensors = readSafetensors(join(FIXTURES, 'tiny-torch', 'model.safetensors'));
    expect(tensors.get('vocab_in.weight')!.shape).toEqual([80, 32]);
    expect(tensors.get('model.layers.0.attn.rot.freqs')!.shape).toEqual([4]);
    expect(tensors.size).toBe(3 * 10 + 4);
  });
});

describe('malformed safetensors are rejected with a message naming the file', () => {
  const good = serializeSafetensors(
    new Map<string, SafetensorsTensor>([
      ['a', { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) }],
      ['b', { dtype: 'F32', shape: [1], data: Float32Array.from([3]) }],
    ]),
  );
  const data12 = new Uint8Array(12);
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(3), /shorter than the 8-byte header length/],
    ['truncated data', good.subarray(0, good.byteLength - 2), /truncated/],
    ['truncated header', good.subarray(0, 20), /header claims \d+ bytes/],
    ['trailing bytes', new Uint8Array([...good, 0, 0, 0, 0]), /cover 12/],
    ['bad json', rawFile(null, data12, '{"a": '), /not valid UTF-8 JSON/],
    ['array header', rawFile([1], data12), /must be a JSON object/],
    [
      'unknown dtype',
      rawFile({ a: { dtype: 'F8', shape: [3], data_offsets: [0, 12] } }, data12),
      /unsupported dtype "F8"/,
    ],
    [
      'negative shape',
      rawFile({ a: { dtype: 'F32', shape: [-3], data_offsets: [0, 12] } }, data12),
      /shape must be an array/,
    ],
    [
      'shape/size mismatch',
      rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 12] } }, data12),
      /needs 8 bytes/,
    ],
    [
      'offsets past the end',
      rawFile({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, data12),
      /reach past/,
    ],
    [
      'overlap',
      rawFile(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        },
        data12,
      ),
      /overlap/,
    ],
    [
      'hole',
      rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data12),
      /belong to no tensor/,
    ],
    [
      'bad metadata',
      rawFile(
        { __metadata__: { n: 1 }, a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } },
        data12,
      ),
      /__metadata__.n must be a string/,
    ],
  ];
  it.each(cases)('%s', (name, bytes, message) => {
    const path = write(`${name.replace(/\W/g, '-')}.safetensors`, bytes);
    expect(() => readSafetensors(path)).toThrow(message);
    expect(() => readSafetensors(path)).toThrow(path);
    try {
      readSafetensors(path);
    } catch (error) {
      expect((error as { isUserError?: boolean }).isUserError).toBe(true);
    }
  });

  it('a missing file', () => {
    expect(() => readSafetensors(join(dir, 'nope.safetensors'))).toThrow(
      /nope\.safetensors: cannot read/,
    );
  });
});
