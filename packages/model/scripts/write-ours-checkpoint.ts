// Writes __fixtures__/ours-checkpoint/, ours-thin-checkpoint/, ours-rmt-checkpoint/, ours-qknorm-checkpoint/,
// ours-qk-l2-checkpoint/ and ours-memtok-checkpoint/ with our TypeScript checkpoint writer, for
// tools/reference/load_ours.py to load in PyTorch (strict load_state_dict).
// Run from the repository root:
//   node --conditions=@baka/source --import tsx packages/model/scripts/write-ours-checkpoint.ts
//   python3 tools/reference/load_ours.py
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { BakaCausalLM, makeConfig, saveCheckpoint } from '../src/index';

const TINY = { dim_model: 32, dim_ff: 64, n_layers: 3, n_heads: 4, n_vocab: 80, n_ctx: 8 };

/**
 * The models the fixtures hold, by fixture directory; checkpoint.test.ts re-creates them to
 * compare bytes. `ours-thin-checkpoint` has an attention-only layer and per-layer MLP widths.
 */
export const OURS_FIXTURES = {
  'ours-checkpoint': () => BakaCausalLM.create(makeConfig(TINY), { seed: 42 }),
  'ours-thin-checkpoint': () =>
    BakaCausalLM.create(
      makeConfig({
        ...TINY,
        layer_kinds: ['standard', 'attention-only', 'standard'],
        layer_dim_ff: [96, 64, 48],
      }),
      { seed: 43 },
    ),
  // pauses, RMT tokens with upstream's hand-built mask, RMSNorm, same-layer XL
  'ours-rmt-checkpoint': () =>
    BakaCausalLM.create(
      makeConfig({
        ...TINY,
        n_pauses: 2,
        n_rmt_tokens: 3,
        rmt_mask: 'upstream',
        norm: 'rmsnorm',
        memory_source: 'same-layer',
      }),
      { seed: 44 },
    ),
  // split input norms and upstream 000_OLD's negator over all heads with per-head weights
  'ours-qknorm-checkpoint': () =>
    BakaCausalLM.create(
      makeConfig({
        ...TINY,
        split_norm: true,
        qk_norm: 'negator',
        qk_norm_scope: 'all',
        qk_norm_weights: 'per-head',
      }),
      { seed: 45 },
    ),
  // unit q and k with a learned per-head logit scale
  'ours-qk-l2-checkpoint': () =>
    BakaCausalLM.create(
      makeConfig({ ...TINY, qk_norm: 'l2', qk_norm_learned_scale: true, qk_norm_scale: 5 }),
      { seed: 46 },
    ),
  // Memory Transformer tokens in groups every 3 tokens and persistent memory k/v
  'ours-memtok-checkpoint': () =>
    BakaCausalLM.create(
      makeConfig({ ...TINY, n_memory_tokens: 2, memory_tokens_every: 3, n_mem_kv: 2 }),
      { seed: 45 },
    ),
} as const;

/** The model of the `ours-checkpoint` fixture. */
export function oursFixtureModel(): BakaCausalLM {
  return OURS_FIXTURES['ours-checkpoint']();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await tf.setBackend('cpu');
  for (const [name, create] of Object.entries(OURS_FIXTURES)) {
    const model = create();
    const dir = fileURLToPath(new URL(`../__fixtures__/${name}`, import.meta.url));
    // the directory also holds load_ours.py's torch-result.safetensors, which it writes again
    await saveCheckpoint(dir, model, { knownFiles: ['torch-result.safetensors'] });
    model.dispose();
    console.log(`wrote ${dir}`);
  }
}
