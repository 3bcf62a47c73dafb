// Checks bench/model-flops.ts against the matmuls the model really runs: one forward pass per
// variant under tf.profile, summing 2 * M * N * K over every MatMul / BatchMatMul kernel (from its
// input and output shapes), against forwardFlops(config, length). Small models (the count does
// not depend on speed), the same variant fields as the model bench's `variants` section.
//
//   node --conditions=@baka/source --import tsx bench/model-flops-check.ts
//
// Prints one line per variant and exits 1 when the formula and the kernels disagree by more than
// 1% (what the formula leaves out on purpose: see model-flops.ts).
import '@tensorflow/tfjs-node';
import * as tf from '@tensorflow/tfjs-core';
import { BakaCausalLM, type BakaConfig, makeConfig } from '@baka/model';
import { forwardFlops } from './model-flops';

const MATMULS = new Set(['MatMul', 'BatchMatMul', '_FusedMatMul', 'BatchMatMulV2']);

/** 2 * M * N * K of a (batched) matmul from its operands' and output's shapes. */
function matmulFlops(inputs: number[][], output: number[]): number {
  const [a, b] = inputs as [number[], number[]];
  const m = output[output.length - 2]!;
  const n = output[output.length - 1]!;
  // the operands' last two dims hold M*K and K*N whichever way they are transposed
  const k = Math.sqrt((a.at(-2)! * a.at(-1)! * b.at(-2)! * b.at(-1)!) / (m * n));
  const batch = output.slice(0, -2).reduce((x, y) => x * y, 1);
  return 2 * batch * m * n * k;
}

const BASE: Partial<BakaConfig> = {
  dim_model: 32,
  dim_ff: 64,
  n_layers: 4,
  n_heads: 4,
  n_vocab: 97,
  n_ctx: 32,
};

const VARIANTS: Record<string, Partial<BakaConfig>> = {
  base: {},
  'per-layer dim_ff': { layer_dim_ff: [64, 96, 128, 32] },
  thin: { layer_kinds: ['standard', 'attention-only', 'standard', 'attention-only'] },
  pause: { n_pauses: 8, norm: 'rmsnorm' },
  rmt: { n_pauses: 8, n_rmt_tokens: 4, memory_source: 'same-layer' },
  mamba: { mamba_each_nth_layer: 2 },
  'qk-norm': { qk_norm: 'negator', split_norm: true },
  recurrent: { recurrent_layers: [2], n_state_vectors: 8 },
  'recurrent lstm': { recurrent_layers: [1], n_state_vectors: 8, state_gate: 'lstm' },
  mega: { layer_kinds: ['standard', 'mega', 'standard', 'mega'], memory_source: 'same-layer' },
  memtok: { n_memory_tokens: 4, memory_tokens_every: 8, n_mem_kv: 4 },
  'memtok in xl': { n_memory_tokens: 2, memory_tokens_in_xl: true },
};

async function main(): Promise<void> {
  const length = 3 * (BASE.n_ctx as number) - 5; // three chunks, the last one short
  let failed = 0;
  for (const [name, fields] of Object.entries(VARIANTS)) {
    const config = makeConfig({ ...BASE, ...fields }, `variant ${name}`);
    const model = BakaCausalLM.create(config, { seed: 1 });
    const ids = tf.tensor2d(
      Int32Array.from({ length }, (_, index) => (index * 7) % config.n_vocab),
      [1, length],
      'int32',
    );
    const profile = await tf.profile(() => {
      const out = model.forward(ids);
      return out.logits;
    });
    let counted = 0;
    for (const kernel of profile.kernels) {
      if (!MATMULS.has(kernel.name)) continue;
      counted += matmulFlops(kernel.inputShapes as number[][], kernel.outputShapes[0] as number[]);
    }
    const formula = forwardFlops(config, length);
    const off = formula / counted - 1;
    const ok = Math.abs(off) <= 0.01;
    if (!ok) failed += 1;
    process.stdout.write(
      `${name.padEnd(18)} kernels ${(counted / 1e6).toFixed(3).padStart(9)} MFLOP   model-flops.ts ${(formula / 1e6).toFixed(3).padStart(9)} MFLOP   ${(off * 100).toFixed(2).padStart(7)}%  ${ok ? 'ok' : 'DIFFERENT'}\n`,
    );
    ids.dispose();
    model.dispose();
  }
  if (failed > 0) {
    process.stdout.write(`${failed} variant(s) differ by more than 1%\n`);
    process.exitCode = 1;
  }
}

await main();
