// Block-Recurrent Transformer layers (Hutchins, Schlag, Wu, Dyer, Neyshabur 2022; official code
// google-research/meliad). A layer named in `recurrent_layers` keeps a state of S =
// n_state_vectors vectors of width D from chunk to chunk (the sequence-state side is
// kinds/recurrent-state.ts). On a chunk x [B, T, D], with the state s written at the previous
// chunk (the learned initial state at the first):
//   h  = norm_in(x),  hs = norm(s) + state_ids,  ks, vs = k(hs), v(hs)
//   vertical (tokens):  y = x + attn.o(self-attention(h)) + cross_o(attend(cross_q(h), ks, vs)) + mlp(h)
//   horizontal (state): u = [attend(q(hs), ks, vs) ; attend(state_cross_q(hs), keys, values)]
//                       z = o(u);  s' = gate(s, z)   (keys/values: the layer's unrotated [memory ; chunk])
//   fixed gate: g = sigmoid(gate_bias), s' = g s + (1 - g) z
//   lstm gate:  f = sigmoid(forget_gate(u) + 1), i = sigmoid(input_gate(u) - 1), s' = f s + i z
// `attend` is softmax(q k^T / sqrt(K)) v without mask or rotary. The layer's own kind (standard,
// attention-only) computes everything but the cross term; this module composes it
// (withRecurrence), so bakaLayer's attention code is reused. docs/architecture.md section 1.9.
//
// Shape legend: B batch, T chunk length (or new tokens), N = B*T, S state vectors, D dim_model,
// A dim_attn, H heads, K dim_head, Kv value head dim, P memory length.
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { fromHeads, toHeads } from '../attention';
import type { BakaConfig } from '../config';
import type { Initialiser } from '../parameters';
import type { LayerKind, LayerShape, LayerTensor } from './layers';
import type { NormKind } from './norms';

/** The config fields of block-recurrent layers (spread into the model config schema). */
export const RECURRENT_CONFIG_SHAPE = {
  recurrent_layers: z
    .preprocess(
      (value) => (typeof value === 'number' ? [value] : value),
      z.array(z.number().int().nonnegative()),
    )
    .default([])
    .describe(
      'Block-Recurrent Transformer: the layers (0-based) that keep a recurrent state across chunks (the paper puts one near the top); [] = none.',
    ),
  n_state_vectors: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe('State vectors S of each recurrent layer (0: n_ctx, as in the paper).'),
  state_gate: z
    .enum(['fixed', 'lstm'])
    .default('fixed')
    .describe(
      "How a recurrent layer's state takes its update: 'fixed' (a learned per-channel bias g: s' = g s + (1 - g) z) or 'lstm' (input and forget gates from the attention output).",
    ),
};

/** meliad's gate weight init: a tenth of the usual variance (the Linear bound x sqrt(0.3)). */
export const GATE_WEIGHT_SCALE = Math.sqrt(0.3);

/** Whether layer `layer` is recurrent. */
export function isRecurrent(config: BakaConfig, layer: number): boolean {
  return config.recurrent_layers.includes(layer);
}

/** The recurrent layers' tensors after the layer's own, in the reference's state_dict order. */
export function recurrentTensors(config: BakaConfig, norm: NormKind): LayerTensor[] {
  const { dim_model: D, dim_attn: A, n_state_vectors: S } = config;
  const tensor = (suffix: string, shape: number[], init: Initialiser): LayerTensor => ({
    suffix: `recurrent.${suffix}`,
    shape,
    init,
    trainable: true,
  });
  const linear = (fanIn: number, scale?: number): Initialiser => ({
    kind: 'linear',
    fanIn,
    ...(scale === undefined ? {} : { scale }),
  });
  const gate = (name: string) => [
    tensor(`${name}.weight`, [D, 2 * D], linear(2 * D, GATE_WEIGHT_SCALE)),
    tensor(`${name}.bias`, [D], { kind: 'normal', std: 0.1 }),
  ];
  return [
    tensor('initial_state', [S, D], { kind: 'normal', std: 0.1 }),
    tensor('state_ids', [S, D], { kind: 'normal' }),
    ...(config.state_gate === 'fixed'
      ? [tensor('gate_bias', [D], { kind: 'normal', std: 0.1 })]
      : []),
    tensor('cross_q.weight', [A, D], linear(D)),
    tensor('cross_o.weight', [D, D], linear(D)),
    ...norm.parameters.map(({ suffix, init }) =>
      tensor(`norm.${suffix}`, [D], { kind: init } as Initialiser),
    ),
    tensor('q.weight', [A, D], linear(D)),
    tensor('k.weight', [A, D], linear(D)),
    tensor('v.weight', [D, D], linear(D)),
    tensor('state_cross_q.weight', [A, D], linear(D)),
    tensor('o.weight', [D, 2 * D], linear(2 * D)),
    ...(config.state_gate === 'lstm' ? [...gate('input_gate'), ...gate('forget_gate')] : []),
  ];
}

/** A recurrent layer's weights (the model's variables, PyTorch layout). */
export interface RecurrentWeights {
  norm: NormKind;
  normParameters: tf.Tensor1D[];
  stateIds: tf.Tensor2D; // [S, D]
  crossQ: tf.Tensor2D; // [A, D]
  crossO: tf.Tensor2D; // [D, D]
  q: tf.Tensor2D; // [A, D]
  k: tf.Tensor2D; // [A, D]
  v: tf.Tensor2D; // [D, D]
  stateCrossQ: tf.Tensor2D; // [A, D]
  o: tf.Tensor2D; // [D, 2D]
  gate:
    | { kind: 'fixed'; bias: tf.Tensor1D } // [D]
    | {
        kind: 'lstm';
        input: { weight: tf.Tensor2D; bias: tf.Tensor1D }; // [D, 2D], [D]
        forget: { weight: tf.Tensor2D; bias: tf.Tensor1D };
      };
}

function prepareRecurrence(
  get: (suffix: string) => tf.Tensor,
  shape: LayerShape,
): RecurrentWeights {
  const r = (suffix: string) => get(`recurrent.${suffix}`) as tf.Tensor2D;
  const fixed = shape.recurrent === 'fixed';
  return {
    norm: shape.norm,
    normParameters: shape.norm.parameters.map(
      ({ suffix }) => get(`recurrent.norm.${suffix}`) as tf.Tensor1D,
    ),
    stateIds: r('state_ids'),
    crossQ: r('cross_q.weight'),
    crossO: r('cross_o.weight'),
    q: r('q.weight'),
    k: r('k.weight'),
    v: r('v.weight'),
    stateCrossQ: r('state_cross_q.weight'),
    o: r('o.weight'),
    gate: fixed
      ? { kind: 'fixed', bias: get('recurrent.gate_bias') as tf.Tensor1D }
      : {
          kind: 'lstm',
          input: {
            weight: r('input_gate.weight'),
            bias: get('recurrent.input_gate.bias') as tf.Tensor1D,
          },
          forget: {
            weight: r('forget_gate.weight'),
            bias: get('recurrent.forget_gate.bias') as tf.Tensor1D,
          },
        },
  };
}

/** softmax(q k^T / sqrt(K)) v, no mask: q [B, H, Q, K], k [B, H, P, K], v [B, H, P, Kv]. */
function attend(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor4D {
  const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(q.shape[3])); // [B, H, Q, P]
  return tf.matMul(tf.softmax(scores), v) as tf.Tensor4D; // [B, H, Q, Kv]
}

/** `kind` with a recurrent state: its forward plus the cross term, and the state's update. */
export function withRecurrence(kind: LayerKind): LayerKind {
  return {
    description: `${kind.description}, with a block-recurrent state (Hutchins et al. 2022)`,
    tensors: (config, shape) => [
      ...kind.tensors(config, shape),
      ...recurrentTensors(config, shape.norm),
    ],
    rotaryScale: kind.rotaryScale,
    prepare: (get, shape, rotary) => ({
      ...kind.prepare(get, shape, rotary),
      blockRecurrent: prepareRecurrence(get, shape),
    }),
    forward: (x, weights, state, batch, length, context) => {
      const inner = kind.forward(x, weights, state, batch, length, context);
      const r = weights.blockRecurrent;
      const carried = state.blockState;
      if (!r)
        throw new Error('withRecurrence: the layer was prepared without its recurrent weights');
      if (!carried) throw new Error('withRecurrence: a recurrent layer got no state in its view');
      const heads = context.nHeads;
      const [y, next] = tf.tidy(() => {
        const [, S, D] = carried.state.shape;
        const h = weights.norm.apply(x, weights.normParameters); // [N, D]
        const normed = r.norm.apply(
          tf.reshape(carried.state, [batch * S, D]) as tf.Tensor2D,
          r.normParameters,
        ); // [B*S, D]
        const hs = tf.reshape(tf.add(tf.reshape(normed, [batch, S, D]), r.stateIds), [
          batch * S,
          D,
        ]) as tf.Tensor2D; // [B*S, D]
        const project = (rows: tf.Tensor2D, weight: tf.Tensor2D, count: number) =>
          toHeads(tf.matMul(rows, weight, false, true), batch, count, heads);
        const ks = project(hs, r.k, S); // [B, H, S, K]
        const vs = project(hs, r.v, S); // [B, H, S, Kv]
        // vertical: the tokens read the state of the previous chunk
        const read = fromHeads(attend(project(h, r.crossQ, length), ks, vs)); // [N, D]
        const y = tf.add(inner.y, tf.matMul(read, r.crossO, false, true)) as tf.Tensor2D; // [N, D]
        if (!carried.update) return [y];
        // horizontal: the state reads itself and the tokens, then takes the gated update
        const past = state.attention.past;
        const { written } = inner.state;
        const keys = past === null ? written.k : tf.concat([past.k, written.k], 2); // [B, H, P+T, K]
        const values = past === null ? written.v : tf.concat([past.v, written.v], 2); // [B, H, P+T, Kv]
        const selfRead = fromHeads(attend(project(hs, r.q, S), ks, vs)); // [B*S, D]
        const tokenRead = fromHeads(
          attend(project(hs, r.stateCrossQ, S), keys as tf.Tensor4D, values as tf.Tensor4D),
        ); // [B*S, D]
        const u = tf.concat([selfRead, tokenRead], 1) as tf.Tensor2D; // [B*S, 2D]
        const candidate = tf.matMul(u, r.o, false, true); // [B*S, D]
        const old = tf.reshape(carried.state, [batch * S, D]);
        let updated: tf.Tensor;
        if (r.gate.kind === 'fixed') {
          const g = tf.sigmoid(r.gate.bias); // [D]
          updated = tf.add(tf.mul(g, old), tf.mul(tf.sub(1, g), candidate));
        } else {
          const { input, forget } = r.gate;
          const gateOf = (weight: tf.Tensor2D, bias: tf.Tensor1D, shift: number) =>
            tf.sigmoid(tf.add(tf.add(tf.matMul(u, weight, false, true), bias), shift)); // [B*S, D]
          const f = gateOf(forget.weight, forget.bias, 1);
          const i = gateOf(input.weight, input.bias, -1);
          updated = tf.add(tf.mul(f, old), tf.mul(i, candidate));
        }
        return [y, tf.reshape(updated, [batch, S, D])];
      }) as [tf.Tensor2D, tf.Tensor3D?];
      inner.y.dispose();
      return {
        y,
        state: next === undefined ? inner.state : { ...inner.state, blockState: next },
      };
    },
  };
}
