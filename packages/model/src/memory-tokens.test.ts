// Memory Transformer tokens and persistent memory k/v (kinds/memory-tokens.ts): parity with our
// PyTorch reference's fixtures (variants/memory-tokens, memory-tokens-every, mem-kv,
// memory-combined: logits, loss, gradients over three chunks with a padded row, and a second call
// fed the first call's state), causality of the memory tokens, generation, tensor hygiene,
// checkpoints and the config's refusals.
import * as tf from '@tensorflow/tfjs-core';
// gradients of the core ops: tfjs-node registers them, the cpu backend does not
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { loadCheckpoint } from './checkpoint';
import { makeConfig } from './config';
import type { BakaConfig } from './config';
import { IncrementalDecoder } from './generation';
import { slotGroups, slotLayout } from './kinds/memory-tokens';
import { loadSequenceState } from './kinds/sequence-states';
import type { XLState } from './kinds/xl';
import type { SequenceState } from './sequence-state';
import {
  expectGradientParity,
  expectGreedyEqualsRecomputation,
  expectLogitParity,
  FIXTURES,
  fixtureTensors,
  int2d,
  maxAbsDifference,
  parityInputs,
} from './test-fixtures';

const inputs = parityInputs();
const VARIANTS = [
  'memory-tokens',
  'memory-tokens-every',
  'mem-kv',
  'memory-combined',
  'mem-kv-rmt',
];

describe.each(VARIANTS)('variants/%s: parity with the PyTorch reference', (name) => {
  const dir = `${FIXTURES}variants/${name}`;
  const expected = fixtureTensors(`variants/${name}/expected.safetensors`);

  it('logits and loss match to 1e-4', async () => {
    const model = await loadCheckpoint(dir);
    expectLogitParity(model, expected, name);
    model.dispose();
  });

  it('every parameter gradient matches to 1e-4 (relative to the largest entry)', async () => {
    const model = await loadCheckpoint(dir);
    const worst = expectGradientParity(model, expected);
    console.log(`${name}: gradients worst relative error ${worst.toExponential(2)}`);
    model.dispose();
  });

  it('a second call fed the first call’s detached state matches PyTorch, also after save/load', async () => {
    const carried = fixtureTensors(`variants/${name}/carry.safetensors`);
    const model = await loadCheckpoint(dir);
    const split = 11;
    const first = int2d(inputs.inputIds.map((row) => row.slice(0, split)));
    const second = int2d(inputs.inputIds.map((row) => row.slice(split)));
    const secondLabels = int2d(inputs.labels.map((row) => row.slice(split)));
    let state: SequenceState | null = null;
    tf.tidy(() => {
      state = (model.forward(first).memory as SequenceState).detach();
    });
    const kept = state as unknown as SequenceState;
    const restored = loadSequenceState(kept.save(), 'saved');
    for (const memory of [kept, restored]) {
      const { loss } = model.loss(second, secondLabels, { memory });
      const { logits } = model.forward(second, { memory });
      expect(maxAbsDifference(logits.dataSync(), carried.get('logits')!.data)).toBeLessThan(1e-4);
      expect(Math.abs(loss.dataSync()[0]! - carried.get('loss')!.data[0]!)).toBeLessThan(1e-4);
      tf.dispose([loss, logits]);
    }
    // negative control: a fresh second call differs
    const fresh = model.forward(second).logits;
    expect(maxAbsDifference(fresh.dataSync(), carried.get('logits')!.data)).toBeGreaterThan(1e-3);
    tf.dispose([first, second, secondLabels, fresh]);
    kept.dispose();
    restored.dispose();
    model.dispose();
  });
});

describe('memory tokens: what the fixtures hold', () => {
  it('negative control: dropping the memory tokens or the persistent k/v changes the logits', async () => {
    const ids = int2d(inputs.inputIds);
    for (const [name, field] of [
      ['memory-tokens', 'n_memory_tokens'],
      ['mem-kv', 'n_mem_kv'],
    ] as const) {
      const model = await loadCheckpoint(`${FIXTURES}variants/${name}`);
      const config = makeConfig({ ...model.config, [field]: 0, memory_tokens_every: 0 });
      const tensors = new Map(
        [...model.parameters]
          .filter(([key]) => !key.includes('memtok') && !key.includes('mem_'))
          .map(([key, value]) => [
            key,
            {
              shape: [...value.shape],
              data: value.dataSync() as Float32Array,
              dtype: 'F32' as const,
            },
          ]),
      );
      const without = BakaCausalLM.fromTensors(config, tensors, 'test');
      const a = model.forward(ids).logits;
      const b = without.forward(ids).logits;
      expect(maxAbsDifference(a.dataSync(), b.dataSync())).toBeGreaterThan(1e-3);
      tf.dispose([a, b]);
      model.dispose();
      without.dispose();
    }
    ids.dispose();
  });

  it('layouts: one group in front of the chunk, or in front of every N tokens', () => {
    const base = makeConfig({ dim_model: 8, n_layers: 1, n_heads: 2, n_vocab: 8, n_ctx: 8 });
    const prefix = makeConfig({ ...base, n_memory_tokens: 2 });
    expect(slotLayout(prefix, 3)).toEqual([-2, -3, 0, 1, 2]);
    const every = makeConfig({ ...base, n_memory_tokens: 2, memory_tokens_every: 3 });
    expect(slotLayout(every, 7)).toEqual([-2, -3, 0, 1, 2, -2, -3, 3, 4, 5, -2, -3, 6]);
    expect(slotGroups(slotLayout(every, 7))).toEqual([
      { start: 0, size: 2 },
      { start: 5, size: 2 },
      { start: 10, size: 2 },
    ]);
  });
});

/**
 * A model with memory tokens every 3 tokens whose k/v enter the XL memory, so the returned state
 * holds every layer's k/v at the memory slots of the last chunk.
 */
function causalModel(overrides: Partial<BakaConfig> = {}): BakaCausalLM {
  return BakaCausalLM.create(
    makeConfig({
      dim_model: 16,
      n_layers: 3,
      n_heads: 2,
      n_vocab: 32,
      n_ctx: 8,
      n_memory_tokens: 2,
      memory_tokens_every: 3,
      memory_tokens_in_xl: true,
      n_mem_kv: 2,
      memory_source: 'same-layer',
      ...overrides,
    }),
    { seed: 11 },
  );
}

/** Every layer's k and v of the state's last chunk at `slots`, and the logits. */
function probe(model: BakaCausalLM, ids: number[], slots: number[]) {
  return tf.tidy(() => {
    const { logits, memory } = model.forward(int2d([ids]));
    const xl = (memory as XLState).memory;
    const index = tf.tensor1d(slots, 'int32');
    const parts = xl
      .layers()
      .flatMap((entry) => [entry.k!, entry.v!])
      .map((tensor) => Array.from(tf.gather(tensor, index, 2).dataSync()));
    return { kv: parts.flat(), logits: Array.from(logits.dataSync()) };
  });
}

describe('memory tokens never see a later token', () => {
  // one chunk of 8 tokens with a group of 2 in front of every 3 tokens:
  // slots [m m t0 t1 t2 m m t3 t4 t5 m m t6 t7]
  const ids = [3, 14, 15, 9, 2, 6, 5, 30];
  const vocab = 32;

  it('perturbing token 4 changes neither the memory groups in front of it nor earlier logits', () => {
    const model = causalModel();
    // groups at slots 0-1 (before t0), 5-6 (before t3), 10-11 (before t6)
    const before = [0, 1, 5, 6];
    const after = [10, 11];
    const perturbed = [...ids];
    perturbed[4] = (perturbed[4]! + 7) % vocab;
    const a = probe(model, ids, before);
    const b = probe(model, perturbed, before);
    expect(maxAbsDifference(a.kv, b.kv)).toBe(0);
    // logits of tokens 0..3 (each predicts the next) do not change; token 4's does
    expect(maxAbsDifference(a.logits.slice(0, 4 * vocab), b.logits.slice(0, 4 * vocab))).toBe(0);
    expect(
      maxAbsDifference(a.logits.slice(4 * vocab, 5 * vocab), b.logits.slice(4 * vocab, 5 * vocab)),
    ).toBeGreaterThan(1e-4);
    // negative control: the group after token 4 does see it (layers above the first)
    const c = probe(model, ids, after);
    const d = probe(model, perturbed, after);
    expect(maxAbsDifference(c.kv, d.kv)).toBeGreaterThan(1e-4);
    model.dispose();
  });

  it('a group sees itself whole: its first token reads the second one', () => {
    const model = causalModel();
    const a = probe(model, ids, [0]);
    const tokens = model.parameters.get('model.memtok.tokens')!;
    tokens.assign(
      tf.tidy(() =>
        tf.concat([
          tf.slice(tokens, [0, 0], [1, -1]),
          tf.mul(tf.slice(tokens, [1, 0], [1, -1]), 2),
        ]),
      ),
    );
    const b = probe(model, ids, [0]);
    // layer 0's k/v at slot 0 come from its own input row; the layers above read slot 1 too
    const perLayer = a.kv.length / 6;
    expect(maxAbsDifference(a.kv.slice(0, 2 * perLayer), b.kv.slice(0, 2 * perLayer))).toBe(0);
    expect(maxAbsDifference(a.kv, b.kv)).toBeGreaterThan(1e-4);
    model.dispose();
  });

  it('generation sees the same: a memory group fed before later tokens equals the full pass', () => {
    const model = causalModel();
    const decoder = new IncrementalDecoder(model);
    const sequence = [...ids, 7, 21, 4, 9, 11, 2, 17, 8, 19];
    const full = tf.tidy(() => model.forward(int2d([sequence])).logits).dataSync();
    let worst = maxAbsDifference(
      decoder.append(sequence.slice(0, 2)),
      full.slice(vocab, 2 * vocab),
    );
    for (let t = 2; t < sequence.length; t++) {
      const step = decoder.append([sequence[t]!]);
      worst = Math.max(worst, maxAbsDifference(step, full.slice(t * vocab, (t + 1) * vocab)));
    }
    console.log(
      `memory tokens: incremental vs full logits max-abs difference ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-5);
    decoder.dispose();
    model.dispose();
  });
});

describe.each([
  ['every option on, memory tokens in the XL memory', {}],
  [
    'memory tokens kept out of the XL memory, absolute positions',
    {
      memory_tokens_in_xl: false,
      position_policy: 'absolute',
      memory_source: 'previous-layer',
    },
  ],
  ['one group per chunk, no persistent k/v', { memory_tokens_every: 0, n_mem_kv: 0 }],
  [
    'persistent k/v on pauses and RMT (upstream mask)',
    {
      n_memory_tokens: 0,
      memory_tokens_every: 0,
      memory_tokens_in_xl: false,
      n_pauses: 2,
      n_rmt_tokens: 2,
      rmt_mask: 'upstream',
    },
  ],
] as [string, Partial<BakaConfig>][])('generation with %s', (_, overrides) => {
  it('greedy generation equals full recomputation and leaks no tensors', () => {
    const model = causalModel(overrides);
    const vocab = model.config.n_vocab;
    const { generated, sequence } = expectGreedyEqualsRecomputation(model, undefined, 14);
    expect(generated.length).toBe(14);
    // incremental logits equal the full pass over three chunks, and a decoder frees what it made
    const full = tf.tidy(() => model.forward(int2d([sequence])).logits).dataSync();
    const run = (decoder: IncrementalDecoder) => {
      let worst = maxAbsDifference(
        decoder.append(sequence.slice(0, 5)),
        full.slice(4 * vocab, 5 * vocab),
      );
      for (let t = 5; t < sequence.length; t++) {
        const step = decoder.append([sequence[t]!]);
        worst = Math.max(worst, maxAbsDifference(step, full.slice(t * vocab, (t + 1) * vocab)));
      }
      decoder.dispose();
      return worst;
    };
    run(new IncrementalDecoder(model)); // warm: the attention masks of every step shape are cached
    const before = tf.memory().numTensors;
    expect(run(new IncrementalDecoder(model))).toBeLessThan(1e-5);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('memory tokens: rows decoded side by side', () => {
  it('each row of an expanded decoder equals its own full pass, across chunk boundaries', () => {
    const model = causalModel({ memory_tokens_in_xl: false });
    const vocab = model.config.n_vocab;
    const prompt = [3, 14, 15, 9, 2, 6];
    const continuations = [
      [7, 21, 4, 9, 11, 2, 17, 8, 19, 1],
      [30, 1, 12, 5, 25, 3, 6, 28, 0, 13],
    ];
    const decoder = new IncrementalDecoder(model);
    decoder.append(prompt);
    decoder.selectRows([0, 0]);
    const fulls = continuations.map((tail) =>
      tf.tidy(() => model.forward(int2d([[...prompt, ...tail]])).logits).dataSync(),
    );
    let worst = 0;
    for (let t = 0; t < continuations[0]!.length; t++) {
      const logits = decoder.appendRows(continuations.map((tail) => tail[t]!));
      const at = prompt.length + t;
      continuations.forEach((_, row) => {
        const got = logits.slice(row * vocab, (row + 1) * vocab);
        const want = fulls[row]!.slice(at * vocab, (at + 1) * vocab);
        worst = Math.max(worst, maxAbsDifference(got, want));
      });
    }
    expect(worst).toBeLessThan(1e-5);
    decoder.dispose();
    model.dispose();
  });
});

describe('memory tokens: tensor hygiene, checkpoints, config', () => {
  it('training-style steps with carried state do not grow tf.memory().numTensors', () => {
    const model = causalModel({ memory_tokens_in_xl: false });
    const ids = int2d([
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
      [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
    ]);
    const step = (memory: SequenceState | null): SequenceState => {
      const { value, grads } = tf.variableGrads(() => {
        const { loss } = model.loss(ids, ids, { memory });
        return loss as tf.Scalar;
      });
      let next: SequenceState | null = null;
      tf.tidy(() => {
        next = (model.forward(ids, { memory }).memory as SequenceState).detach();
      });
      tf.dispose([value, ...Object.values(grads)]);
      memory?.dispose();
      return next as unknown as SequenceState;
    };
    let memory = step(step(null));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) memory = step(memory);
    expect(tf.memory().numTensors).toBe(before);
    memory.dispose();
    ids.dispose();
    model.dispose();
  });

  it('refuses combinations and orphan options with one line naming the field', () => {
    const base = { dim_model: 8, n_layers: 2, n_heads: 2, n_vocab: 8, n_ctx: 8 };
    expect(() => makeConfig({ ...base, memory_tokens_every: 2 })).toThrow(
      /^config: memory_tokens_every needs n_memory_tokens >= 1$/,
    );
    expect(() => makeConfig({ ...base, memory_tokens_in_xl: true })).toThrow(
      /memory_tokens_in_xl needs n_memory_tokens/,
    );
    for (const field of ['n_pauses', 'n_rmt_tokens', 'mamba_each_nth_layer']) {
      expect(() => makeConfig({ ...base, n_memory_tokens: 2, [field]: 1 })).toThrow(
        new RegExp(`n_memory_tokens cannot be combined with ${field}`),
      );
    }
    expect(() => makeConfig({ ...base, n_mem_kv: -1 })).toThrow(/n_mem_kv/);
    expect(() => makeConfig({ ...base, n_mem_kv: 2, qk_norm: 'l2' })).toThrow(
      /n_mem_kv cannot be combined with qk_norm/,
    );
    const mega = { ...base, layer_kinds: ['mega', 'standard'], memory_source: 'same-layer' };
    expect(() => makeConfig({ ...mega, n_memory_tokens: 2 })).toThrow(
      /n_memory_tokens: not supported together with layer_kinds 'mega'/,
    );
    expect(() => makeConfig({ ...base, n_mem_kv: 2, recurrent_layers: [1] })).toThrow(
      /n_mem_kv cannot be combined with recurrent_layers/,
    );
    expect(() => makeConfig({ ...base, n_memory_tokens: 2, recurrent_layers: [1] })).toThrow(
      /n_memory_tokens cannot be combined with recurrent_layers/,
    );
    expect(() => makeConfig({ ...mega, n_mem_kv: 2 })).toThrow(
      /n_mem_kv: not supported together with layer_kinds 'mega'/,
    );
    // persistent k/v combine with everything
    expect(makeConfig({ ...base, n_mem_kv: 2, n_pauses: 2, n_rmt_tokens: 2 }).n_mem_kv).toBe(2);
  });

  it('parameters: names, shapes and upstream-style state_dict order', () => {
    const model = causalModel();
    const names = [...model.parameters.keys()];
    expect(names.slice(0, 5)).toEqual([
      'model.layers.0.norm_in.weight',
      'model.layers.0.norm_in.bias',
      'model.layers.0.attn.mem_k',
      'model.layers.0.attn.mem_v',
      'model.layers.0.attn.q.weight',
    ]);
    expect(model.parameters.get('model.layers.2.attn.mem_k')!.shape).toEqual([2, 2, 8]);
    expect(model.parameters.get('model.memtok.tokens')!.shape).toEqual([2, 16]);
    model.dispose();
  });
});

function _argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
