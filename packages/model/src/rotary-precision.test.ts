// rotary_precision: float32 rotary tables make the 'reset' and 'absolute' position policies
// compute the same thing (scores depend only on distances); bfloat16 tables (as upstream's
// `.bfloat16()` runs with rotary-embedding-torch 0.3.x computed them) round absolute positions in
// the thousands to multiples of 16 or 32, so the policies differ. Losses are checked against our
// PyTorch reference (tools/reference/make_rotary_precision_fixture.py): one row of 4160 tokens,
// n_ctx 64 (65 chunks, XL memory), and a second call over tokens 4096.. fed the first call's memory.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BakaCausalLM } from './causal-lm';
import { configJson, readCheckpointConfig, readCheckpointTensors } from './checkpoint';
import {
  type PositionPolicy,
  type RotaryPrecision,
  makeConfig,
  parseConfigSettings,
} from './config';
import type { SequenceState } from './sequence-state';
import { FIXTURES, int2d } from './test-fixtures';

const dir = join(FIXTURES, 'variants', 'rotary-bf16');
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as {
  input_ids: number[][];
  split: number;
  losses: Record<string, { full: number; carried: number }>;
};
// TypeScript against PyTorch (fp32 everywhere except the bf16 tables, which are bit-exact);
// measured at most 9.5e-7, far below the 2e-4 the bf16 policies differ by.
const REFERENCE_TOLERANCE = 5e-6;

const precisions: RotaryPrecision[] = ['float32', 'bfloat16'];
const policies: PositionPolicy[] = ['reset', 'absolute'];

function losses(
  precision: RotaryPrecision,
  policy: PositionPolicy,
): { full: number; carried: number } {
  const config = makeConfig({
    ...readCheckpointConfig(dir),
    rotary_precision: precision,
    position_policy: policy,
  });
  const model = BakaCausalLM.fromTensors(config, readCheckpointTensors(dir), dir);
  expect(model.rotary.precision).toBe(precision);
  const { split } = expected;
  const row = expected.input_ids[0] as number[];
  const result = tf.tidy(() => {
    const ids = int2d([row]);
    const full = model.loss(ids, ids).loss.dataSync()[0] as number;
    const first = int2d([row.slice(0, split)]);
    const second = int2d([row.slice(split)]);
    const memory = (model.forward(first).memory as SequenceState).detach();
    const carried = model.loss(second, second, { memory }).loss.dataSync()[0] as number;
    memory.dispose();
    return { full, carried };
  });
  model.dispose();
  return result;
}

describe('rotary_precision', () => {
  it('is a config field, float32 by default, settable with --set, left out of a float32 config.json', () => {
    const config = makeConfig({ dim_model: 32, n_layers: 1, n_heads: 2 });
    expect(config.rotary_precision).toBe('float32');
    expect(parseConfigSettings(['rotary_precision=bfloat16'])).toEqual({
      rotary_precision: 'bfloat16',
    });
    expect(() => parseConfigSettings(['rotary_precision=float16'])).toThrow(
      /rotary_precision=float16: expected one of float32, bfloat16/,
    );
    expect(configJson(config)).not.toContain('rotary_precision');
    const bf16 = makeConfig({ ...config, rotary_precision: 'bfloat16' });
    expect(JSON.parse(configJson(bf16)).rotary_precision).toBe('bfloat16');
    expect(readCheckpointConfig(dir).rotary_precision).toBe('bfloat16');
  });

  const measured = new Map<string, { full: number; carried: number }>();
  for (const precision of precisions) {
    for (const policy of policies) {
      it(`${precision} tables, ${policy} positions: losses match PyTorch`, () => {
        const ours = losses(precision, policy);
        const theirs = expected.losses[`${precision}/${policy}`] as {
          full: number;
          carried: number;
        };
        measured.set(`${precision}/${policy}`, ours);
        console.log(
          `${precision}/${policy}: full ${ours.full.toFixed(9)} (torch ${theirs.full.toFixed(9)}), carried ${ours.carried.toFixed(9)} (torch ${theirs.carried.toFixed(9)})`,
        );
        expect(Math.abs(ours.full - theirs.full)).toBeLessThan(REFERENCE_TOLERANCE);
        expect(Math.abs(ours.carried - theirs.carried)).toBeLessThan(REFERENCE_TOLERANCE);
      });
    }
  }

  it('float32: reset and absolute give the same losses; bfloat16: they differ', () => {
    const get = (key: string) =>
      measured.get(key) ?? losses(...(key.split('/') as [RotaryPrecision, PositionPolicy]));
    const float32Reset = get('float32/reset');
    const float32Absolute = get('float32/absolute');
    const bf16Reset = get('bfloat16/reset');
    const bf16Absolute = get('bfloat16/absolute');
    expect(Math.abs(float32Reset.full - float32Absolute.full)).toBeLessThan(1e-6);
    expect(Math.abs(float32Reset.carried - float32Absolute.carried)).toBeLessThan(1e-6);
    expect(Math.abs(bf16Reset.full - bf16Absolute.full)).toBeGreaterThan(1e-4);
    expect(Math.abs(bf16Reset.carried - bf16Absolute.carried)).toBeGreaterThan(3e-4);
    // negative control: the bf16 absolute loss is not the float32 one
    expect(Math.abs(bf16Absolute.carried - float32Absolute.carried)).toBeGreaterThan(3e-4);
  });
});
