// Mamba layers (upstream 007_mamba): in every layer i with i % mamba_each_nth_layer == 0, the
// layer's own output y (its kind's forward) gets a selective state-space block added,
//   y + Mamba(LayerNorm(y)),
// over the whole chunk. By default nothing of it crosses a chunk boundary (the block starts from a
// zero state in every chunk, as upstream calls Mamba afresh per chunk); with mamba_carry_state the
// conv window and scan state the chunk ended with start the next chunk (kinds/layer-states.ts).
// The block (Gu & Dao 2023, mamba_ssm's `Mamba(d_model)` defaults: d_state 16, d_conv 4,
// expand 2, dt_rank ceil(D / 16)):
//   x, z = in_proj(h)                        [N, Di] each (no bias)
//   x = silu(depthwise causal conv of x)    kernel d_conv, with bias, per row of the batch
//   dt, b, c = x_proj(x) split [R, S, S];    dt = softplus(dt_proj(dt))   [N, Di]
//   s_t = exp(dt_t A) s_{t-1} + dt_t x_t b_t, A = -exp(A_log) [Di, S], s_0 = 0 (state [Di, S])
//   y_t = <s_t, c_t> + D x_t;  out = out_proj(y * silu(z))
// The recurrence runs as a chunked scan over time (scanDecays): a loop over the positions of a
// block of 32 for all blocks at once, then a short loop over the blocks; gradients by tfjs
// autodiff. Generation carries the conv window and the scan state per layer from step to step
// (MambaState), so a step equals the full pass.
//
// Shape legend: B batch, T chunk length (or new tokens), N = B*T, D dim_model, Di = 2D inner
// channels, S d_state, R dt_rank, W d_conv.
import * as tf from '@tensorflow/tfjs-core';
import type { LayerStateIn } from '../baka-net';
import type { BakaConfig } from '../config';
import { layerNorm } from '../layer-norm';
import type { LayerKind, LayerTensor } from './layers';

/** mamba_ssm's defaults, which upstream 007 used (`Mamba(config.dim_model)`). */
export const MAMBA_D_STATE = 16;
export const MAMBA_D_CONV = 4;
export const MAMBA_EXPAND = 2;
/** softplus(dt_proj.bias) starts log-uniform in [DT_MIN, DT_MAX], floored at DT_FLOOR. */
export const MAMBA_DT_MIN = 1e-3;
export const MAMBA_DT_MAX = 1e-1;
export const MAMBA_DT_FLOOR = 1e-4;

export interface MambaDims {
  inner: number; // Di
  dState: number; // S
  dConv: number; // W
  dtRank: number; // R
}

export function mambaDims(config: BakaConfig): MambaDims {
  return {
    inner: MAMBA_EXPAND * config.dim_model,
    dState: MAMBA_D_STATE,
    dConv: MAMBA_D_CONV,
    dtRank: Math.ceil(config.dim_model / 16),
  };
}

/** Whether layer `layer` has a Mamba block (upstream: layer_idx % mamba_each_nth_layer == 0). */
export function hasMamba(config: BakaConfig, layer: number): boolean {
  const n = config.mamba_each_nth_layer;
  return n > 0 && layer % n === 0;
}

/** The block's tensors after the layer's own, in upstream's state_dict order. */
export function mambaTensors(config: BakaConfig): LayerTensor[] {
  const { dim_model: D } = config;
  const { inner, dState, dConv, dtRank } = mambaDims(config);
  const tensor = (suffix: string, shape: number[], init: LayerTensor['init']): LayerTensor => ({
    suffix,
    shape,
    init,
    trainable: true,
  });
  return [
    // the module's own parameters come first in its state_dict, then its submodules'
    tensor('mamba.A_log', [inner, dState], { kind: 'mamba-a-log' }),
    tensor('mamba.D', [inner], { kind: 'ones' }),
    tensor('mamba.in_proj.weight', [2 * inner, D], { kind: 'linear', fanIn: D }),
    // nn.Conv1d's default init: fan_in = in_channels / groups x kernel = W
    tensor('mamba.conv1d.weight', [inner, 1, dConv], { kind: 'linear', fanIn: dConv }),
    tensor('mamba.conv1d.bias', [inner], { kind: 'linear', fanIn: dConv }),
    tensor('mamba.x_proj.weight', [dtRank + 2 * dState, inner], { kind: 'linear', fanIn: inner }),
    // U(-R^-1/2, R^-1/2): the Linear bound with fan_in R
    tensor('mamba.dt_proj.weight', [inner, dtRank], { kind: 'linear', fanIn: dtRank }),
    tensor('mamba.dt_proj.bias', [inner], {
      kind: 'mamba-dt-bias',
      min: MAMBA_DT_MIN,
      max: MAMBA_DT_MAX,
      floor: MAMBA_DT_FLOOR,
    }),
    tensor('mamba.out_proj.weight', [D, inner], { kind: 'linear', fanIn: inner }),
    // a LayerNorm whatever `norm` is (upstream's nn.LayerNorm)
    tensor('norm_mamba.weight', [D], { kind: 'ones' }),
    tensor('norm_mamba.bias', [D], { kind: 'zeros' }),
  ];
}

/** A layer's Mamba weights (the model's variables, PyTorch layout). */
export interface MambaWeights {
  dims: MambaDims;
  normWeight: tf.Tensor1D; // [D]
  normBias: tf.Tensor1D; // [D]
  aLog: tf.Tensor2D; // [Di, S]
  d: tf.Tensor1D; // [Di]
  inProj: tf.Tensor2D; // [2Di, D]
  convWeight: tf.Tensor3D; // [Di, 1, W]
  convBias: tf.Tensor1D; // [Di]
  xProj: tf.Tensor2D; // [R + 2S, Di]
  dtProj: tf.Tensor2D; // [Di, R]
  dtBias: tf.Tensor1D; // [Di]
  outProj: tf.Tensor2D; // [D, Di]
}

function prepareMamba(get: (suffix: string) => tf.Tensor, dims: MambaDims): MambaWeights {
  return {
    dims,
    normWeight: get('norm_mamba.weight') as tf.Tensor1D,
    normBias: get('norm_mamba.bias') as tf.Tensor1D,
    aLog: get('mamba.A_log') as tf.Tensor2D,
    d: get('mamba.D') as tf.Tensor1D,
    inProj: get('mamba.in_proj.weight') as tf.Tensor2D,
    convWeight: get('mamba.conv1d.weight') as tf.Tensor3D,
    convBias: get('mamba.conv1d.bias') as tf.Tensor1D,
    xProj: get('mamba.x_proj.weight') as tf.Tensor2D,
    dtProj: get('mamba.dt_proj.weight') as tf.Tensor2D,
    dtBias: get('mamba.dt_proj.bias') as tf.Tensor1D,
    outProj: get('mamba.out_proj.weight') as tf.Tensor2D,
  };
}

/**
 * What a Mamba block continues from: the previous generation step's state, or with
 * mamba_carry_state the previous chunk's (a RecurrentState of the layer).
 */
export type MambaState = {
  /** The last W - 1 conv inputs (zeros before the first token the block starts from zero at). */
  conv: tf.Tensor3D; // [B, W-1, Di]
  /** The scan state s after the last token. */
  ssm: tf.Tensor3D; // [B, Di, S]
};

/** Positions per block of the chunked scan (scanDecays). */
export const SCAN_BLOCK = 32;

/**
 * The inclusive prefix scan of s_t = decay_t * s_{t-1} + input_t along axis 1 (time), s_0 = 0:
 * returns s [B, T, ...] and the cumulative decays prod_{u<=t} decay_u (which carry an initial
 * state in: s_t + cumulative_t * s_0). Chunked: time is cut into blocks of `block` positions; one
 * loop over the position within a block runs every block at once (from a zero state), a second,
 * short loop over the blocks carries each block's end state into the next, and one broadcast
 * adds that carried state, decayed, to every position. So about block + T / block small ops
 * instead of one per token, and only products of decays (each in (0, 1]) are formed, which
 * neither overflow nor lose the small ones (as sums of log-decays and their exp would).
 */
export function scanDecays(
  decay: tf.Tensor4D,
  input: tf.Tensor4D,
  block = SCAN_BLOCK,
): [tf.Tensor4D, tf.Tensor4D] {
  return tf.tidy(() => {
    const [batch, time, a, b] = decay.shape;
    const length = Math.min(block, time);
    const blocks = Math.ceil(time / length);
    const padded = blocks * length;
    // the identity step (decay 1, input 0) fills the last block
    const fill = (t: tf.Tensor4D, value: number) =>
      padded === time
        ? t
        : tf.pad(
            t,
            [
              [0, 0],
              [0, padded - time],
              [0, 0],
              [0, 0],
            ],
            value,
          );
    // [B, T, a, b] -> per position within a block: [B, blocks, a, b]
    // (split, not unstack, whose gradient fails when some pieces go unused; nor one slice per
    // piece, whose gradients would each be padded to the whole tensor)
    const pieces = (t: tf.Tensor, axis: number) =>
      tf.split(t, t.shape[axis] as number, axis).map((piece) => tf.squeeze(piece, [axis]));
    const byPosition = (t: tf.Tensor) =>
      pieces(tf.transpose(tf.reshape(t, [batch, blocks, length, a, b]), [2, 0, 1, 3, 4]), 0);
    const decays = byPosition(fill(decay, 1));
    const inputs = byPosition(fill(input, 0));
    const local: tf.Tensor[] = [inputs[0] as tf.Tensor];
    const products: tf.Tensor[] = [decays[0] as tf.Tensor];
    for (let j = 1; j < length; j++) {
      const d = decays[j] as tf.Tensor;
      local.push(tf.add(tf.mul(d, local[j - 1] as tf.Tensor), inputs[j] as tf.Tensor));
      products.push(tf.mul(d, products[j - 1] as tf.Tensor));
    }
    // across blocks: the state entering block k and the decay product of the blocks before it
    // (every block's but the last, as slices: their gradients are only [B, blocks, a, b] each)
    const allButLast = (t: tf.Tensor) =>
      Array.from({ length: blocks - 1 }, (_, k) =>
        tf.reshape(tf.slice(t, [0, k, 0, 0], [batch, 1, a, b]), [batch, a, b]),
      );
    const ends = allButLast(local[length - 1] as tf.Tensor); // (blocks - 1) x [B, a, b]
    const endDecays = allButLast(products[length - 1] as tf.Tensor);
    const carried: tf.Tensor[] = [tf.zeros([batch, a, b])];
    const before: tf.Tensor[] = [tf.ones([batch, a, b])];
    for (let k = 1; k < blocks; k++) {
      const d = endDecays[k - 1] as tf.Tensor;
      carried.push(tf.add(tf.mul(d, carried[k - 1] as tf.Tensor), ends[k - 1] as tf.Tensor));
      before.push(tf.mul(d, before[k - 1] as tf.Tensor));
    }
    const within = tf.stack(products); // [L, B, blocks, a, b]
    const states = tf.add(tf.stack(local), tf.mul(within, tf.stack(carried, 1))); // carried: [B, blocks, a, b]
    const cumulative = tf.mul(within, tf.stack(before, 1));
    const back = (t: tf.Tensor) => {
      const joined = tf.reshape(tf.transpose(t, [1, 2, 0, 3, 4]), [batch, padded, a, b]);
      return (
        padded === time ? joined : tf.slice(joined, [0, 0, 0, 0], [batch, time, a, b])
      ) as tf.Tensor4D;
    };
    return [back(states), back(cumulative)];
  });
}

/**
 * The Mamba block on h = the normalised layer output [N, D] (rows in (batch, time) order).
 * `state`: undefined in the full pass (zero start, nothing returned); null or the previous step's
 * state in generation (the new state is returned, in the caller's scope).
 */
export function mambaBlock(
  h: tf.Tensor2D,
  weights: MambaWeights,
  batch: number,
  length: number,
  state: MambaState | null | undefined,
): { out: tf.Tensor2D; state: MambaState | null } {
  const { inner, dState, dConv, dtRank } = weights.dims;
  const result = tf.tidy(() => {
    const xz = tf.matMul(h, weights.inProj, false, true); // [N, 2Di]
    const [x, z] = tf.split(xz, 2, 1) as [tf.Tensor2D, tf.Tensor2D]; // [N, Di] each
    // causal depthwise conv: output t = bias + sum_w kernel[w] * input[t + w - (W-1)]
    const before = state ? state.conv : tf.zeros([batch, dConv - 1, inner]);
    const padded = tf.concat([before, tf.reshape(x, [batch, length, inner])], 1); // [B, T+W-1, Di]
    const kernel = tf.transpose(tf.reshape(weights.convWeight, [inner, dConv])); // [W, Di]
    let conv: tf.Tensor = weights.convBias;
    for (let w = 0; w < dConv; w++) {
      const window = tf.slice(padded, [0, w, 0], [batch, length, inner]); // [B, T, Di]
      conv = tf.add(conv, tf.mul(window, tf.slice(kernel, [w, 0], [1, inner])));
    }
    const xc = tf.reshape(tf.mul(conv, tf.sigmoid(conv)), [batch * length, inner]) as tf.Tensor2D; // silu
    const projected = tf.matMul(xc, weights.xProj, false, true); // [N, R + 2S]
    const [dtLow, bIn, cOut] = tf.split(projected, [dtRank, dState, dState], 1) as tf.Tensor2D[];
    const dt = tf.softplus(
      tf.add(tf.matMul(dtLow as tf.Tensor2D, weights.dtProj, false, true), weights.dtBias),
    ); // [N, Di]
    const a = tf.neg(tf.exp(weights.aLog)); // [Di, S]
    const dt4 = tf.reshape(dt, [batch, length, inner, 1]);
    const decay = tf.exp(tf.mul(dt4, a)) as tf.Tensor4D; // [B, T, Di, S]
    const drive = tf.mul(
      tf.reshape(tf.mul(dt, xc), [batch, length, inner, 1]),
      tf.reshape(bIn as tf.Tensor2D, [batch, length, 1, dState]),
    ) as tf.Tensor4D; // [B, T, Di, S]
    let [states, decays] = scanDecays(decay, drive);
    if (state) {
      states = tf.add(states, tf.mul(decays, tf.expandDims(state.ssm, 1))) as tf.Tensor4D;
    }
    const read = tf.sum(
      tf.mul(states, tf.reshape(cOut as tf.Tensor2D, [batch, length, 1, dState])),
      -1,
    ); // [B, T, Di]
    const y = tf.add(tf.reshape(read, [batch * length, inner]), tf.mul(xc, weights.d)); // [N, Di]
    const gated = tf.mul(y, tf.mul(z, tf.sigmoid(z))); // y * silu(z)
    const out = tf.matMul(gated, weights.outProj, false, true) as tf.Tensor2D; // [N, D]
    if (state === undefined) return [out];
    const nextConv = tf.slice(padded, [0, length, 0], [batch, dConv - 1, inner]); // [B, W-1, Di]
    const nextSsm = tf.reshape(tf.slice(states, [0, length - 1, 0, 0], [batch, 1, inner, dState]), [
      batch,
      inner,
      dState,
    ]);
    return [out, nextConv, nextSsm];
  }) as [tf.Tensor2D, tf.Tensor3D?, tf.Tensor3D?];
  const [out, conv, ssm] = result;
  return { out, state: conv && ssm ? { conv, ssm } : null };
}

/** `kind` followed by y + Mamba(LayerNorm(y)): the layer's forward is the kind's, composed. */
export function withMamba(kind: LayerKind): LayerKind {
  return {
    description: `${kind.description}, then y + Mamba(LayerNorm(y)) (upstream 007)`,
    tensors: (config, shape) => [...kind.tensors(config, shape), ...mambaTensors(config)],
    rotaryScale: kind.rotaryScale,
    prepare: (get, shape, rotary) => ({
      ...kind.prepare(get, shape, rotary),
      mamba: prepareMamba(get, shape.mamba as MambaDims),
    }),
    forward: (x, weights, state: LayerStateIn, batch, length, context) => {
      const inner = kind.forward(x, weights, state, batch, length, context);
      const mamba = weights.mamba;
      if (!mamba) throw new Error('withMamba: the layer was prepared without its Mamba weights');
      const h = layerNorm(inner.y, mamba.normWeight, mamba.normBias);
      const block = mambaBlock(
        h,
        mamba,
        batch,
        length,
        state.recurrent as MambaState | null | undefined,
      );
      const y = tf.add(inner.y, block.out) as tf.Tensor2D;
      tf.dispose([inner.y, h, block.out]);
      return {
        y,
        state: block.state === null ? inner.state : { ...inner.state, recurrent: block.state },
      };
    },
  };
}
