// Writes __fixtures__/ours-checkpoint/ with our TypeScript checkpoint writer, for
// tools/reference/load_ours.py to load in PyTorch (strict load_state_dict).
// Run from the repository root:
//   node --conditions=@baka/source --import tsx packages/model/scripts/write-ours-checkpoint.ts
//   python3 tools/reference/load_ours.py
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { BakaCausalLM, makeConfig, saveCheckpoint } from '../src/index';

/** The model the fixture holds; ours-checkpoint.test.ts re-creates it to compare bytes. */
export function oursFixtureModel(): BakaCausalLM {
  const config = makeConfig({
    dim_model: 32,
    dim_ff: 64,
    n_layers: 3,
    n_heads: 4,
    n_vocab: 80,
    n_ctx: 8,
  });
  return BakaCausalLM.create(config, { seed: 42 });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await tf.setBackend('cpu');
  const model = oursFixtureModel();
  const dir = fileURLToPath(new URL('../__fixtures__/ours-checkpoint', import.meta.url));
  await saveCheckpoint(dir, model);
  model.dispose();
  console.log(`wrote ${dir}`);
}
