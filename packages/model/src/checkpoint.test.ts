import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  cpSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { OURS_FIXTURES } from '../scripts/write-ours-checkpoint';
import { BakaCausalLM } from './causal-lm';
import {
  checkCheckpointTarget,
  loadCheckpoint,
  readCheckpointConfig,
  saveCheckpoint,
} from './checkpoint';
import { makeConfig } from './config';
import { readSafetensors, roundToDtype, writeSafetensors } from './safetensors';
import { FIXTURES, fixtureTensors, int2d, maxAbsDifference, parityInputs } from './test-fixtures';

const dir = mkdtempSync(join(tmpdir(), 'baka-checkpoint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a checkpoint written by PyTorch', () => {
  it('loads (upstream-style config without our fields) and gives the PyTorch loss', async () => {
    const source = join(FIXTURES, 'tiny-torch');
    const raw = JSON.parse(readFileSync(join(source, 'config.json'), 'utf8'));
    expect(raw.memory).toBeUndefined();
    const model = await loadCheckpoint(source);
    expect(model.config.memory).toBe('xl');
    expect(model.config.memory_source).toBe('previous-layer');
    expect(model.config.position_policy).toBe('reset');
    const ids = JSON.parse(readFileSync(join(source, 'input-ids.json'), 'utf8')) as number[][];
    const expected = JSON.parse(readFileSync(join(source, 'expected.json'), 'utf8'));
    const input = int2d(ids);
    const { loss } = model.loss(input, input);
    expect(Math.abs(loss.dataSync()[0]! - expected.loss)).toBeLessThan(1e-4);
    tf.dispose([input, loss]);
    model.dispose();
  });

  it("the training fixture's init checkpoint gives the first window's loss", async () => {
    const base = join(FIXTURES, 'train-4-steps');
    const batch = JSON.parse(readFileSync(join(base, 'batch.json'), 'utf8'));
    const expected = JSON.parse(readFileSync(join(base, 'expected.json'), 'utf8'));
    const model = await loadCheckpoint(join(base, 'init'));
    const first = expected.steps[0];
    const ids = int2d(
      batch.input_ids.map((row: number[]) => row.slice(first.start, first.start + first.length)),
    );
    const labels = int2d(
      batch.labels.map((row: number[]) => row.slice(first.start, first.start + first.length)),
    );
    const { loss } = model.loss(ids, labels);
    expect(Math.abs(loss.dataSync()[0]! - first.loss)).toBeLessThan(1e-4);
    tf.dispose([ids, labels, loss]);
    model.dispose();
  });
});

describe('a checkpoint written by us', () => {
  it.each(Object.keys(OURS_FIXTURES) as (keyof typeof OURS_FIXTURES)[])(
    '%s is byte-identical to the committed fixture that PyTorch loaded, and matches PyTorch’s logits',
    async (name) => {
      const model = OURS_FIXTURES[name]();
      const out = join(dir, name);
      await saveCheckpoint(out, model);
      const fixture = join(FIXTURES, name);
      expect(
        Buffer.compare(
          readFileSync(join(out, 'model.safetensors')),
          readFileSync(join(fixture, 'model.safetensors')),
        ),
      ).toBe(0);
      expect(readFileSync(join(out, 'config.json'), 'utf8')).toBe(
        readFileSync(join(fixture, 'config.json'), 'utf8'),
      );
      model.dispose();

      // PyTorch's strict load_state_dict of the fixture gave these logits (tools/reference/load_ours.py)
      const torch = fixtureTensors(`${name}/torch-result.safetensors`);
      const loaded = await loadCheckpoint(fixture);
      const inputs = parityInputs();
      const ids = int2d(inputs.inputIds);
      const labels = int2d(inputs.labels);
      const { logits } = loaded.forward(ids);
      const { loss } = loaded.loss(ids, labels);
      expect(maxAbsDifference(logits.dataSync(), torch.get('logits')!.data)).toBeLessThan(1e-4);
      expect(Math.abs(loss.dataSync()[0]! - torch.get('loss')!.data[0]!)).toBeLessThan(1e-4);
      tf.dispose([ids, labels, logits, loss]);
      loaded.dispose();
    },
  );

  it('save -> load round-trips bit-exactly, options and tokenizer included', async () => {
    const config = makeConfig({
      dim_model: 16,
      n_layers: 2,
      n_heads: 2,
      n_vocab: 30,
      n_ctx: 4,
      memory_source: 'same-layer',
      position_policy: 'absolute',
      carry_memory: true,
    });
    const model = BakaCausalLM.create(config, { seed: 17 });
    const out = join(dir, 'round-trip');
    await saveCheckpoint(out, model, {
      tokenizerJson: '{"model":{}}',
      files: { 'trainer_state.json': '{"step":3}' },
    });
    const loaded = await loadCheckpoint(out);
    expect(loaded.config).toEqual(model.config);
    expect([...loaded.parameters.keys()]).toEqual([...model.parameters.keys()]);
    for (const [name, variable] of model.parameters) {
      const a = new Uint32Array((variable.dataSync() as Float32Array).slice().buffer);
      const b = new Uint32Array(
        (loaded.parameters.get(name)!.dataSync() as Float32Array).slice().buffer,
      );
      expect(Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer)), name).toBe(0);
      expect(loaded.parameters.get(name)!.trainable).toBe(variable.trainable);
    }
    expect(readFileSync(join(out, 'tokenizer.json'), 'utf8')).toBe('{"model":{}}');
    expect(readFileSync(join(out, 'trainer_state.json'), 'utf8')).toBe('{"step":3}');
    const again = join(dir, 'round-trip-again');
    await saveCheckpoint(again, loaded);
    expect(
      Buffer.compare(
        readFileSync(join(out, 'model.safetensors')),
        readFileSync(join(again, 'model.safetensors')),
      ),
    ).toBe(0);
    model.dispose();
    loaded.dispose();
  });

  it('replaces an existing checkpoint atomically and leaves no temporary directories', async () => {
    const out = join(dir, 'replace');
    const first = BakaCausalLM.create(
      makeConfig({ dim_model: 8, n_layers: 1, n_heads: 2, n_vocab: 10, n_ctx: 4 }),
      { seed: 1 },
    );
    const second = BakaCausalLM.create(
      makeConfig({ dim_model: 8, n_layers: 1, n_heads: 2, n_vocab: 10, n_ctx: 4 }),
      { seed: 2 },
    );
    await saveCheckpoint(out, first, { tokenizerJson: '{}' });
    await saveCheckpoint(out, second);
    // The old checkpoint's tokenizer.json (a file of ours this save does not write) is gone.
    expect(existsSync(join(out, 'tokenizer.json'))).toBe(false);
    const loaded = await loadCheckpoint(out);
    expect(Array.from(loaded.parameters.get('vocab_out.weight')!.dataSync())).toEqual(
      Array.from(second.parameters.get('vocab_out.weight')!.dataSync()),
    );
    expect(readdirSync(dir).filter((name) => name.startsWith('.'))).toEqual([]);
    for (const model of [first, second, loaded]) model.dispose();
  });
});

describe('loading copies the weights into the backend', () => {
  // tfjs-node keeps a new tensor's values in JavaScript until an op first reads it; loading reads
  // every weight once, so a prompt's first token does not pay for copying the model.
  const pending = (tensor: tf.Tensor): boolean | undefined => {
    const backend = tf.backend() as unknown as {
      tensorMap?: { get(dataId: object): { values?: unknown } | undefined };
    };
    const entry = backend.tensorMap?.get(tensor.dataId);
    return entry === undefined ? undefined : entry.values != null;
  };

  it.runIf(tf.getBackend() === 'tensorflow')(
    'holds no weight in JavaScript after loading (native backend)',
    async () => {
      const control = tf.tensor1d([1, 2, 3]); // a fresh tensor: values still pending
      expect(pending(control)).toBe(true);
      control.dispose();
      const model = await loadCheckpoint(join(FIXTURES, 'tiny-torch'));
      const waiting = [...model.parameters].filter(([, variable]) => pending(variable) !== false);
      expect(waiting.map(([name]) => name)).toEqual([]);
      model.dispose();
    },
  );
});

describe('saving never deletes what it did not write', () => {
  const config = makeConfig({ dim_model: 8, n_layers: 1, n_heads: 2, n_vocab: 10, n_ctx: 4 });

  it('refuses a directory holding other files, a checkpoint with a foreign file, and a file', async () => {
    const model = BakaCausalLM.create(config, { seed: 1 });
    const user = join(dir, 'user-files');
    mkdirSync(join(user, 'notes'), { recursive: true });
    writeFileSync(join(user, 'thesis.tex'), 'years of work');
    await expect(saveCheckpoint(user, model)).rejects.toThrow(
      new RegExp(
        `^${user} is not empty and is not a checkpoint \\(it holds '(thesis\\.tex|notes)'\\)`,
      ),
    );
    expect(readFileSync(join(user, 'thesis.tex'), 'utf8')).toBe('years of work');
    expect(readdirSync(user).sort()).toEqual(['notes', 'thesis.tex']);

    const mixed = join(dir, 'checkpoint-plus-notes');
    await saveCheckpoint(mixed, model);
    writeFileSync(join(mixed, 'notes.md'), 'mine');
    await expect(saveCheckpoint(mixed, model)).rejects.toThrow(/holds 'notes\.md'/);
    expect(readFileSync(join(mixed, 'notes.md'), 'utf8')).toBe('mine');

    const file = join(dir, 'a-file');
    writeFileSync(file, 'data');
    await expect(saveCheckpoint(file, model)).rejects.toThrow(/is a file, not a directory/);
    expect(readFileSync(file, 'utf8')).toBe('data');
    // No temporary directory was left next to any of them.
    expect(readdirSync(dir).filter((name) => name.startsWith('.'))).toEqual([]);
    model.dispose();
  });

  it('accepts a new or empty directory and files the caller names as its own', async () => {
    const model = BakaCausalLM.create(config, { seed: 1 });
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    await saveCheckpoint(empty, model);
    expect(existsSync(join(empty, 'model.safetensors'))).toBe(true);
    writeFileSync(join(empty, 'state.json'), '{}');
    expect(() => checkCheckpointTarget(empty)).toThrow(/holds 'state\.json'/);
    expect(() => checkCheckpointTarget(empty, ['state.json'])).not.toThrow();
    await saveCheckpoint(empty, model, { knownFiles: ['state.json'] });
    expect(existsSync(join(empty, 'state.json'))).toBe(false);
    model.dispose();
  });
});

describe('bad checkpoints are rejected with clear messages', () => {
  const source = join(FIXTURES, 'tiny-torch');
  const copy = (name: string) => {
    const target = join(dir, name);
    cpSync(source, target, { recursive: true });
    return target;
  };

  it('no config.json', async () => {
    await expect(loadCheckpoint(join(dir, 'missing'))).rejects.toThrow(
      /not a checkpoint directory \(no config\.json\)/,
    );
  });

  it('a config field with a bad value names the field', () => {
    const target = copy('bad-config');
    writeFileSync(
      join(target, 'config.json'),
      JSON.stringify({ dim_model: 32, n_layers: 3, n_heads: '4' }),
    );
    expect(() => readCheckpointConfig(target)).toThrow(/config\.json: n_heads: /);
    writeFileSync(
      join(target, 'config.json'),
      JSON.stringify({ dim_model: 32, n_layers: 3, n_heads: 3 }),
    );
    expect(() => readCheckpointConfig(target)).toThrow(
      /dim_attn \(32\) must be divisible by n_heads \(3\)/,
    );
    writeFileSync(join(target, 'config.json'), '{ nope');
    expect(() => readCheckpointConfig(target)).toThrow(/config\.json: invalid JSON/);
  });

  it('a missing tensor, a wrong shape, a truncated file, foreign rotary frequencies', async () => {
    const target = copy('bad-tensors');
    const weights = join(target, 'model.safetensors');
    const original = readSafetensors(weights);

    const missing = new Map(original);
    missing.delete('model.layers.1.attn.k.weight');
    writeSafetensors(weights, missing);
    await expect(loadCheckpoint(target)).rejects.toThrow(
      /missing tensor 'model\.layers\.1\.attn\.k\.weight'/,
    );

    const reshaped = new Map(original);
    const embedding = original.get('vocab_in.weight')!;
    reshaped.set('vocab_in.weight', { ...embedding, shape: [32, 80] });
    writeSafetensors(weights, reshaped);
    await expect(loadCheckpoint(target)).rejects.toThrow(
      /'vocab_in\.weight' has shape \[32, 80\], the config needs \[80, 32\]/,
    );

    const frequencies = new Map(original);
    frequencies.set('model.layers.0.attn.rot.freqs', {
      dtype: 'F32',
      shape: [4],
      data: Float32Array.from([1, 0.5, 0.25, 0.125]),
    });
    writeSafetensors(weights, frequencies);
    await expect(loadCheckpoint(target)).rejects.toThrow(/does not match the inverse frequencies/);

    writeFileSync(weights, readFileSync(join(source, 'model.safetensors')).subarray(0, 5000));
    await expect(loadCheckpoint(target)).rejects.toThrow(
      /model\.safetensors: not a valid safetensors file: .*truncated/,
    );
  });
});

describe('F16 and BF16 checkpoints', () => {
  /** The PyTorch fixture saved at `dtype` (as `model.half()` / `model.bfloat16()` would). */
  function halfCheckpoint(dtype: 'F16' | 'BF16'): string {
    const source = join(FIXTURES, 'tiny-torch');
    const target = join(dir, `tiny-${dtype}`);
    cpSync(source, target, { recursive: true });
    const tensors = readSafetensors(join(source, 'model.safetensors'));
    const half = new Map(
      [...tensors].map(([name, tensor]) => [name, { ...tensor, dtype }] as const),
    );
    writeSafetensors(join(target, 'model.safetensors'), half, { format: 'pt' });
    return target;
  }

  for (const dtype of ['F16', 'BF16'] as const) {
    it(`${dtype}: loads as the float32 of the stored values and gives about the PyTorch loss`, async () => {
      const target = halfCheckpoint(dtype);
      // Real 16-bit bytes: 2 per value, and inv_freq[0] = 1 is 0x3c00 (F16) / 0x3f80 (BF16).
      const bytes = readFileSync(join(target, 'model.safetensors'));
      const headerLength = Number(bytes.readBigUInt64LE(0));
      const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
      const freqs = header['model.layers.0.attn.rot.freqs'];
      expect(freqs.dtype).toBe(dtype);
      const [begin, end] = freqs.data_offsets as [number, number];
      expect(end - begin).toBe(2 * freqs.shape[0]);
      expect(bytes.readUInt16LE(8 + headerLength + begin)).toBe(dtype === 'F16' ? 0x3c00 : 0x3f80);

      const model = await loadCheckpoint(target);
      const original = readSafetensors(join(FIXTURES, 'tiny-torch', 'model.safetensors'));
      for (const [name, variable] of model.parameters) {
        const stored = Array.from(original.get(name)!.data as Float32Array, (value) =>
          roundToDtype(value, dtype),
        );
        expect(Array.from(variable.dataSync()), name).toEqual(stored);
      }
      const source = join(FIXTURES, 'tiny-torch');
      const ids = JSON.parse(readFileSync(join(source, 'input-ids.json'), 'utf8')) as number[][];
      const expected = JSON.parse(readFileSync(join(source, 'expected.json'), 'utf8'));
      const input = int2d(ids);
      const { loss } = model.loss(input, input);
      // Rounding every weight to 16 bits moves the loss a little (BF16 keeps 8 bits of mantissa).
      expect(Math.abs(loss.dataSync()[0]! - expected.loss)).toBeLessThan(
        dtype === 'F16' ? 1e-2 : 5e-2,
      );
      tf.dispose([input, loss]);
      model.dispose();
    });

    it(`${dtype}: rotary frequencies are still checked, at ${dtype} precision`, async () => {
      const target = halfCheckpoint(dtype);
      const weights = join(target, 'model.safetensors');
      const tensors = readSafetensors(weights);
      const freqs = tensors.get('model.layers.1.attn.rot.freqs')!;
      const wrong = Float32Array.from(freqs.data as Float32Array);
      wrong[2] = wrong[2]! * 1.05; // 5%: several 16-bit steps away
      tensors.set('model.layers.1.attn.rot.freqs', { ...freqs, data: wrong });
      writeSafetensors(weights, tensors);
      await expect(loadCheckpoint(target)).rejects.toThrow(
        new RegExp(
          `'model\\.layers\\.1\\.attn\\.rot\\.freqs' does not match the inverse frequencies of rope_theta \\d+ and dim_head 8 at ${dtype} precision \\(index 2: `,
        ),
      );
    });
  }
});
