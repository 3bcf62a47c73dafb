// Pause tokens (upstream 004) and RMT memory tokens (upstream 005): parity with our PyTorch
// reference's fixtures variants/pause and variants/rmt (logits, loss, gradients, a second call
// fed the first call's state), and checkpoints written by upstream's own 004/005 code
// (variants/upstream-004, upstream-005) evaluating to upstream's loss.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
// gradients of the core ops: tfjs-node registers them, the cpu backend does not
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { loadCheckpoint, readCheckpointConfig, readCheckpointTensors } from './checkpoint';
import { makeConfig } from './config';
import { evaluateLoss } from './evaluate-loss';
import { IncrementalDecoder } from './generation';
import { pauseLayout, pauseRandom } from './kinds/pauses';
import { loadSequenceState } from './kinds/sequence-states';
import {
  CARRY_SPLIT,
  expectCarryParity,
  expectGradientParity,
  expectLogitParity,
  FIXTURES,
  fixtureTensors,
  int2d,
  maxAbsDifference,
  parityInputs,
  stateAfterFirstCall,
} from './test-fixtures';

const inputs = parityInputs();

describe.each(['pause', 'rmt'])('variants/%s: parity with the PyTorch reference', (name) => {
  const dir = `${FIXTURES}variants/${name}`;
  const expected = fixtureTensors(`variants/${name}/expected.safetensors`);

  it('logits and loss match to 1e-4', async () => {
    const model = await loadCheckpoint(dir);
    expect(model.config.model_type).toBe(name === 'pause' ? 'baka_pause' : 'baka_rmt');
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
    const second = int2d(inputs.inputIds.map((row) => row.slice(CARRY_SPLIT)));
    const kept = stateAfterFirstCall(model);
    const restored = loadSequenceState(kept.save(), 'saved');
    for (const memory of [kept, restored]) expectCarryParity(model, memory, carried);
    // negative control: a fresh second call differs
    const fresh = model.forward(second).logits;
    expect(maxAbsDifference(fresh.dataSync(), carried.get('logits')!.data)).toBeGreaterThan(1e-3);
    tf.dispose([second, fresh]);
    kept.dispose();
    restored.dispose();
    model.dispose();
  });
});

describe.each(['004', '005'])('upstream %s checkpoint (written by upstream code)', (branch) => {
  const dir = `${FIXTURES}variants/upstream-${branch}`;
  const expected = JSON.parse(readFileSync(`${dir}/expected.json`, 'utf8'));
  const ids: number[][] = JSON.parse(readFileSync(`${dir}/input-ids.json`, 'utf8'));

  it("loads its config.json and evaluates to upstream's loss within 1e-4", async () => {
    const model = await loadCheckpoint(dir);
    expect(model.config.model_type).toBe(branch === '004' ? 'baka_pause' : 'baka_rmt');
    expect(model.config.norm).toBe(branch === '004' ? 'rmsnorm' : 'layernorm');
    expect(model.config.memory_source).toBe(branch === '004' ? 'previous-layer' : 'same-layer');
    const flat = ids.flat();
    const { loss, tokens } = evaluateLoss(model, {
      ids: flat,
      rows: ids.length,
      length: ids[0]!.length,
    });
    console.log(`upstream-${branch}: loss ${loss} vs upstream ${expected.loss}`);
    expect(tokens).toBe(expected.tokens);
    expect(Math.abs(loss - expected.loss)).toBeLessThan(1e-4);
    // and in short segments (state handed from segment to segment) too
    const segmented = evaluateLoss(
      model,
      { ids: flat, rows: ids.length, length: ids[0]!.length },
      { segmentLength: model.config.n_ctx },
    );
    expect(Math.abs(segmented.loss - expected.loss)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('negative control: without its pauses (or memory tokens) the loss differs', () => {
    const config = readCheckpointConfig(dir) as Record<string, unknown>;
    const tensors = new Map(readCheckpointTensors(dir));
    tensors.delete('model.pause.pause_emb');
    tensors.delete('model.rmt.rmt_tokens');
    const model = BakaCausalLM.fromTensors(
      makeConfig({
        ...config,
        n_pauses: 0,
        n_rmt_tokens: 0,
        model_type: 'baka_xl',
        norm: branch === '004' ? 'rmsnorm' : 'layernorm',
        memory_source: branch === '004' ? 'previous-layer' : 'same-layer',
      }),
      tensors,
    );
    const { loss } = evaluateLoss(model, {
      ids: ids.flat(),
      rows: ids.length,
      length: ids[0]!.length,
    });
    expect(Math.abs(loss - expected.loss)).toBeGreaterThan(1e-3);
    model.dispose();
  });
});

describe('pause layout', () => {
  const config = makeConfig({
    dim_model: 8,
    n_layers: 1,
    n_heads: 2,
    n_vocab: 10,
    n_ctx: 8,
    n_pauses: 3,
  });

  it("upstream's insertion points: step*i in the growing sequence while step*i <= the chunk's tokens", () => {
    expect(pauseLayout(config, 8)).toEqual([-1, 0, -1, 1, -1, 2, 3, 4, 5, 6, 7]);
    expect(pauseLayout(config, 1)).toEqual([-1, 0]);
    expect(pauseLayout(config, 2)).toEqual([-1, 0, -1, 1]);
    // the third pause exists only once the chunk has 4 tokens: a chunk's layout depends on its
    // length, so a growing chunk (generation) gains pauses in front of tokens it already has
    expect(pauseLayout(config, 3)).toEqual([-1, 0, -1, 1, 2]);
    expect(pauseLayout(config, 4)).toEqual([-1, 0, -1, 1, -1, 2, 3]);
    for (let tokens = 1; tokens <= 8; tokens++) {
      const layout = pauseLayout(config, tokens);
      expect(layout.filter((slot) => slot >= 0)).toEqual([...Array(tokens).keys()]);
      expect(layout.at(-1)).toBe(tokens - 1); // never a pause at the end
    }
  });

  it('n_pauses above n_ctx is one line naming the field', () => {
    expect(() => makeConfig({ ...config, n_pauses: 9 })).toThrow(
      /^config: n_pauses \(9\) must be at most n_ctx \(8\)/,
    );
    expect(() => makeConfig({ ...config, n_rmt_margins: 2 })).toThrow(/n_rmt_margins/);
    expect(() => makeConfig({ ...config, rmt_solidifier: 'gru' })).toThrow(/rmt_solidifier/);
  });
});

describe.each([
  ['pause', {}],
  ['rmt', {}],
  ['rmt', { rmt_mask: 'upstream' }],
  ['rmt', { memory_source: 'previous-layer', n_pauses: 3 }],
] as const)('generation: variants/%s %j', (name, overrides) => {
  it('the decoder’s logits after every token equal a full recomputation, over 3+ chunks', async () => {
    const dir = `${FIXTURES}variants/${name}`;
    const base = await loadCheckpoint(dir);
    const model = BakaCausalLM.fromTensors(
      { ...base.config, ...overrides },
      readCheckpointTensors(dir),
    );
    base.dispose();
    const ids = inputs.inputIds[0]!.slice(0, 20); // chunks of 8: 8, 8, 4
    const vocab = model.config.n_vocab;
    // a full recomputation of every prefix: with pauses a chunk's layout depends on its length,
    // so the logits after token t are those of a forward pass over tokens 0..t
    const recomputed = (t: number) =>
      tf.tidy(() => {
        const { logits } = model.forward(int2d([ids.slice(0, t + 1)]));
        return tf.slice(logits, [0, t, 0], [1, 1, vocab]).dataSync() as Float32Array;
      });
    const decoder = new IncrementalDecoder(model);
    let worst = 0;
    // a 3-token prompt, then one token at a time (pauses appear in front of fed tokens)
    worst = Math.max(worst, maxAbsDifference(decoder.append(ids.slice(0, 3)), recomputed(2)));
    for (let t = 3; t < ids.length; t++) {
      worst = Math.max(worst, maxAbsDifference(decoder.append([ids[t]!]), recomputed(t)));
    }
    // negative control: one forward over all 20 tokens differs where a later token added a pause
    const once = tf.tidy(() => model.forward(int2d([ids])).logits.dataSync() as Float32Array);
    const differs = ids.some(
      (_, t) => maxAbsDifference(once.slice(t * vocab, (t + 1) * vocab), recomputed(t)) > 1e-3,
    );
    // (pause i lands in front of the chunk's last i tokens once it has step*i tokens: i >= 2 moves
    // tokens already fed; the 4-token last chunk sees pause 2 when step*2 <= 4)
    const step = Math.floor(model.config.n_ctx / model.config.n_pauses);
    expect(differs).toBe(model.config.n_pauses >= 3 && 2 * step <= 4);
    console.log(`generation ${name} ${JSON.stringify(overrides)}: worst ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
    expect(decoder.position).toBe(ids.length);
    decoder.dispose();
    model.dispose();
  });
});

describe('random pause layout (is_pause_pos_random)', () => {
  const config = makeConfig({
    dim_model: 16,
    n_layers: 2,
    n_heads: 2,
    n_vocab: 40,
    n_ctx: 8,
    n_pauses: 3,
    is_pause_pos_random: true,
    pause_seed: 5,
  });

  it("upstream's draws: the first pause at 0, pause i at 1..tokens+i of the growing chunk", () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 200; seed++) {
      const random = pauseRandom(config, seed)!;
      const draws: number[] = [];
      const recorded = () => {
        const value = random();
        draws.push(value);
        return value;
      };
      const layout = pauseLayout(config, 8, recorded);
      expect(layout[0]).toBe(-1);
      expect(layout.filter((slot) => slot < 0)).toHaveLength(3); // every pause, whatever the length
      expect(layout.filter((slot) => slot >= 0)).toEqual([...Array(8).keys()]);
      expect(draws).toHaveLength(2);
      seen.add(JSON.stringify(layout));
      // the same seed gives the same layout
      expect(pauseLayout(config, 8, pauseRandom(config, seed)!)).toEqual(layout);
    }
    // a pause may land at the very end (point = the growing chunk's length), and layouts vary
    expect([...seen].some((text) => JSON.parse(text).at(-1) === -1)).toBe(true);
    expect(seen.size).toBeGreaterThan(20);
  });

  it('a forward call is deterministic for its layout seed and differs across seeds', () => {
    const model = BakaCausalLM.create(config, { seed: 9 });
    const ids = int2d([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]);
    const logits = (layoutSeed?: number) =>
      tf.tidy(
        () =>
          model
            .forward(ids, layoutSeed === undefined ? {} : { layoutSeed })
            .logits.dataSync() as Float32Array,
      );
    expect(maxAbsDifference(logits(3), logits(3))).toBe(0);
    expect(maxAbsDifference(logits(), logits(0))).toBe(0); // no seed = seed 0
    expect(maxAbsDifference(logits(3), logits(4))).toBeGreaterThan(1e-4);
    // negative control: the fixed layout is another computation
    const fixed = BakaCausalLM.fromTensors(
      { ...config, is_pause_pos_random: false },
      new Map(
        [...model.parameters].map(([name, v]) => [
          name,
          { shape: [...v.shape], data: v.dataSync() as Float32Array },
        ]),
      ),
    );
    const fixedLogits = tf.tidy(() => fixed.forward(ids).logits.dataSync() as Float32Array);
    expect(maxAbsDifference(logits(3), fixedLogits)).toBeGreaterThan(1e-4);
    expect(() => new IncrementalDecoder(model)).toThrow(
      /^is_pause_pos_random: generation needs the fixed pause layout/,
    );
    ids.dispose();
    fixed.dispose();
    model.dispose();
  });
});

describe('generation: pauses, RMT and Mamba together (upstream 007)', () => {
  it('logits after every token equal a full recomputation, also when a pause lands in front of fed tokens', () => {
    const config = makeConfig({
      dim_model: 16,
      n_layers: 2,
      n_heads: 2,
      n_vocab: 40,
      n_ctx: 8,
      n_pauses: 3, // step 2: the third pause moves fed tokens once a chunk has 4
      n_rmt_tokens: 2,
      memory_source: 'same-layer',
      mamba_each_nth_layer: 1,
    });
    const model = BakaCausalLM.create(config, { seed: 21 });
    const ids = Array.from({ length: 19 }, (_, i) => (i * 7 + 3) % 40);
    const recomputed = (t: number) =>
      tf.tidy(() => {
        const { logits } = model.forward(int2d([ids.slice(0, t + 1)]));
        return tf.slice(logits, [0, t, 0], [1, 1, 40]).dataSync() as Float32Array;
      });
    const run = () => {
      const decoder = new IncrementalDecoder(model);
      let worst = maxAbsDifference(decoder.append(ids.slice(0, 2)), recomputed(1));
      for (let t = 2; t < ids.length; t++) {
        worst = Math.max(worst, maxAbsDifference(decoder.append([ids[t]!]), recomputed(t)));
      }
      decoder.dispose();
      return worst;
    };
    const worst = run(); // also fills the model's mask cache
    console.log(`generation pause+rmt+mamba: worst ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
    // a second decoder leaves no tensor behind (rewinds, Mamba states and RMT blocks included)
    const before = tf.memory().numTensors;
    expect(run()).toBe(worst);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
