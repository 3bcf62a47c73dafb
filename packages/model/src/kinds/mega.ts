// Mega layers (Ma et al. 2022, "Mega: Moving Average Equipped Gated Attention"; reference code
// facebookresearch/mega): layer kind `mega`. The layer keeps the parallel block's one norm and its
// elephant MLP; Mega's gated attention sub-layer, its damped EMA included, takes the attention
// branch's place (docs/architecture.md section 1.8):
//
//   h = norm_in(x);   y = x + u * (o - x) + mlp(h)
//   EMA     s_t = q * s_{t-1} + p * beta * h_t,  q = 1 - p * sigmoid(alpha),  p = sigmoid(delta)
//           e_t = sum_n (gamma / sqrt(N)) s_t;   m = silu(e + omega * h)       state s: [B, D, N]
//   gates   v = silu(v_proj(h));  u, zr, hx = mx_proj(m) split [D, Z + E, D];  u = sigmoid(u)
//           z, r = silu(zr) split [Z, E];  q = z * qk_gamma[0] + qk_beta[0],  k = z * qk_gamma[1] + qk_beta[1]
//   one head over [past ; now] (rotary on the first dim_head features), scale 1 / sqrt(Z), causal
//   o = silu(hx + h_proj(attention * r))
//
// The EMA runs as scanDecays (kinds/mamba.ts), the chunked scan Mamba uses: its decay is constant
// over time, broadcast along it. The state after the chunk goes out as the layer's recurrent state
// `{ ema }` (LayerStateOut.recurrent), which the carried layer states (layer-states.ts) hand to the
// next chunk, call and window, and generation to the next step.
//
// Shape legend: B batch, T chunk length (or new tokens), N rows B*T, D dim_model, M ema_dim,
// Z mega_z_dim, E mega_h_dim, P past length, W padded key width.
import * as tf from '@tensorflow/tfjs-core';
import { fromHeads, padKeys, toHeads } from '../attention';
import type { AttentionContext } from '../attention';
import { attentionCore } from '../attention-core';
import type { FusedLayerWeights, LayerOutput, LayerStateIn } from '../baka-net';
import type { BakaConfig } from '../config';
import { gatedMlp } from '../mlp';
import type { LayerTensor } from './layers';
import { scanDecays } from './mamba';

export interface MegaDims {
  emaDim: number; // M
  zDim: number; // Z
  hDim: number; // E
}

/** Whether layer `layer` is a Mega layer. */
export function hasMega(config: BakaConfig, layer: number): boolean {
  return config.layer_kinds[layer] === 'mega';
}

export function megaDims(config: BakaConfig): MegaDims {
  return { emaDim: config.ema_dim, zDim: config.mega_z_dim, hDim: config.mega_h_dim };
}

/** The sub-layer's tensors (`mega.*`, between norm_in and the MLP), in the reference's order. */
export function megaTensors(config: BakaConfig): LayerTensor[] {
  const { dim_model: D } = config;
  const { emaDim: M, zDim: Z, hDim: E } = megaDims(config);
  const tensor = (suffix: string, shape: number[], init: LayerTensor['init']): LayerTensor => ({
    suffix: `mega.${suffix}`,
    shape,
    init,
    trainable: true,
  });
  const linear = (name: string, out: number, fanIn: number) => [
    tensor(`${name}.weight`, [out, fanIn], { kind: 'linear', fanIn }),
    tensor(`${name}.bias`, [out], { kind: 'linear', fanIn }),
  ];
  return [
    tensor('ema.delta', [D, M], { kind: 'normal', std: 0.2 }),
    tensor('ema.alpha', [D, M], { kind: 'normal', std: 0.2 }),
    tensor('ema.beta', [D, M], { kind: 'mega-ema-beta' }),
    tensor('ema.gamma', [D, M], { kind: 'normal' }),
    tensor('ema.omega', [D], { kind: 'normal' }),
    ...linear('v_proj', E, D),
    ...linear('mx_proj', 2 * D + Z + E, D),
    ...linear('h_proj', D, E),
    tensor('qk_gamma', [2, Z], { kind: 'normal', std: 0.02, mean: 1 }),
    tensor('qk_beta', [2, Z], { kind: 'zeros' }),
  ];
}

/** A layer's Mega weights (the model's variables, PyTorch layout). */
export interface MegaWeights {
  dims: MegaDims;
  delta: tf.Tensor2D; // [D, M]
  alpha: tf.Tensor2D; // [D, M]
  beta: tf.Tensor2D; // [D, M]
  gamma: tf.Tensor2D; // [D, M]
  omega: tf.Tensor1D; // [D]
  vProj: tf.Tensor2D; // [E, D]
  vBias: tf.Tensor1D; // [E]
  mxProj: tf.Tensor2D; // [2D + Z + E, D]
  mxBias: tf.Tensor1D; // [2D + Z + E]
  hProj: tf.Tensor2D; // [D, E]
  hBias: tf.Tensor1D; // [D]
  qkGamma: tf.Tensor2D; // [2, Z]
  qkBeta: tf.Tensor2D; // [2, Z]
}

export function prepareMega(get: (suffix: string) => tf.Tensor, dims: MegaDims): MegaWeights {
  const at = <T extends tf.Tensor>(suffix: string) => get(`mega.${suffix}`) as T;
  return {
    dims,
    delta: at('ema.delta'),
    alpha: at('ema.alpha'),
    beta: at('ema.beta'),
    gamma: at('ema.gamma'),
    omega: at('ema.omega'),
    vProj: at('v_proj.weight'),
    vBias: at('v_proj.bias'),
    mxProj: at('mx_proj.weight'),
    mxBias: at('mx_proj.bias'),
    hProj: at('h_proj.weight'),
    hBias: at('h_proj.bias'),
    qkGamma: at('qk_gamma'),
    qkBeta: at('qk_beta'),
  };
}

/**
 * The damped EMA over h [B, T, D] from `state` [B, D, M] (null: zeros): the projected outputs
 * e [B, T, D] and the state after the last position [B, D, M].
 */
export function dampedEma(
  h: tf.Tensor3D,
  weights: Pick<MegaWeights, 'delta' | 'alpha' | 'beta' | 'gamma'>,
  state: tf.Tensor3D | null,
): [tf.Tensor3D, tf.Tensor3D] {
  return tf.tidy(() => {
    const [batch, length, dim] = h.shape;
    const emaDim = weights.delta.shape[1];
    const p = tf.sigmoid(weights.delta); // [D, M]
    const decay = tf.sub(1, tf.mul(p, tf.sigmoid(weights.alpha))); // [D, M]
    const drive = tf.mul(p, weights.beta); // [D, M]
    const eta = tf.mul(weights.gamma, 1 / Math.sqrt(emaDim)); // [D, M]
    const input = tf.mul(tf.reshape(h, [batch, length, dim, 1]), drive) as tf.Tensor4D; // [B, T, D, M]
    const decays = tf.broadcastTo(decay, [batch, length, dim, emaDim]) as tf.Tensor4D;
    let [states, cumulative] = scanDecays(decays, input); // [B, T, D, M] each
    if (state !== null) {
      states = tf.add(states, tf.mul(cumulative, tf.expandDims(state, 1))) as tf.Tensor4D;
    }
    const e = tf.sum(tf.mul(states, eta), -1) as tf.Tensor3D; // [B, T, D]
    const last = tf.reshape(tf.slice(states, [0, length - 1, 0, 0], [batch, 1, dim, emaDim]), [
      batch,
      dim,
      emaDim,
    ]) as tf.Tensor3D; // [B, D, M]
    return [e, last];
  });
}

/** A Mega layer on one chunk (or generation step): x [N, D] and its state view -> y and its state out. */
export function megaLayer(
  x: tf.Tensor2D,
  weights: FusedLayerWeights,
  state: LayerStateIn,
  batch: number,
  length: number,
  context: AttentionContext,
): LayerOutput {
  const mega = weights.mega;
  if (mega === undefined) throw new Error('megaLayer: the layer was prepared without Mega weights');
  const { zDim, hDim } = mega.dims;
  const dimModel = x.shape[1];
  const [y, k, v, ema, keys, values] = tf.tidy((): tf.Tensor[] => {
    const h = weights.norm.apply(x, weights.normParameters); // [N, D]
    const carried = (state.recurrent?.ema as tf.Tensor3D | undefined) ?? null; // [B, D, M]
    const [e, ema] = dampedEma(tf.reshape(h, [batch, length, dimModel]), mega, carried);
    const eh = tf.add(tf.reshape(e, [batch * length, dimModel]), tf.mul(h, mega.omega));
    const m = tf.mul(eh, tf.sigmoid(eh)); // silu, [N, D]
    const vRaw = tf.add(tf.matMul(h, mega.vProj, false, true), mega.vBias);
    const value = tf.mul(vRaw, tf.sigmoid(vRaw)); // [N, E]
    const base = tf.add(tf.matMul(m, mega.mxProj, false, true), mega.mxBias); // [N, 2D + Z + E]
    const [uRaw, zr, hx] = tf.split(base, [dimModel, zDim + hDim, dimModel], 1) as tf.Tensor2D[];
    const u = tf.sigmoid(uRaw as tf.Tensor2D); // [N, D]
    const zrSilu = tf.mul(zr as tf.Tensor2D, tf.sigmoid(zr as tf.Tensor2D));
    const [shared, r] = tf.split(zrSilu, [zDim, hDim], 1) as tf.Tensor2D[]; // [N, Z], [N, E]
    const [gammaQ, gammaK] = tf.split(mega.qkGamma, 2, 0); // [1, Z] each
    const [betaQ, betaK] = tf.split(mega.qkBeta, 2, 0);
    const affine = (scale: tf.Tensor, shift: tf.Tensor) =>
      toHeads(tf.add(tf.mul(shared as tf.Tensor2D, scale), shift) as tf.Tensor2D, batch, length, 1);
    const q = affine(gammaQ as tf.Tensor, betaQ as tf.Tensor); // [B, 1, T, Z]
    const kNew = affine(gammaK as tf.Tensor, betaK as tf.Tensor); // [B, 1, T, Z]
    const vNew = toHeads(value as tf.Tensor2D, batch, length, 1); // [B, 1, T, E]
    const { past, keyOffset } = state.attention;
    const pastLength = past === null ? 0 : past.k.shape[2];
    const allKeys = past === null ? kNew : (tf.concat([past.k, kNew], 2) as tf.Tensor4D); // [B, 1, P+T, Z]
    const allValues = past === null ? vNew : (tf.concat([past.v, vNew], 2) as tf.Tensor4D); // [B, 1, P+T, E]
    const queries = weights.rotary.rotate(q, { offset: keyOffset + pastLength }); // [B, 1, T, Z]
    const rotatedKeys = weights.rotary.rotate(allKeys, { offset: keyOffset }); // [B, 1, P+T, Z]
    const width = Math.ceil((pastLength + length) / context.keyBucket) * context.keyBucket; // W
    const mixed = attentionCore(
      tf.mul(queries, 1 / Math.sqrt(zDim)) as tf.Tensor4D,
      padKeys(rotatedKeys, width), // [B, 1, W, Z]
      padKeys(allValues, width), // [B, 1, W, E]
      context.masks.get(length, pastLength, width), // [T, W]
    ); // [B, 1, T, E]
    const attended = tf.mul(fromHeads(mixed), r as tf.Tensor2D) as tf.Tensor2D; // [N, E]
    const oRaw = tf.add(
      tf.add(hx as tf.Tensor2D, tf.matMul(attended, mega.hProj, false, true)),
      mega.hBias,
    );
    const o = tf.mul(oRaw, tf.sigmoid(oRaw)) as tf.Tensor2D; // [N, D]
    const withMega = tf.add(x, tf.mul(u, tf.sub(o, x))); // [N, D]
    const { mlp } = weights;
    const sum = mlp ? tf.add(withMega, gatedMlp(h, mlp.gateUp, mlp.down)) : withMega;
    const joined = state.attention.returnJoined ? [allKeys, allValues] : [];
    return [sum, kNew, vNew, ema, ...joined];
  }) as [tf.Tensor2D, tf.Tensor4D, tf.Tensor4D, tf.Tensor3D, tf.Tensor4D?, tf.Tensor4D?];
  const attended = keys === undefined || values === undefined ? null : { k: keys, v: values };
  return { y, state: { written: { k, v }, attended, recurrent: { ema } } };
}
