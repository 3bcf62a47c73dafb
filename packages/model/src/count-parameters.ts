// Parameter counts as upstream reports them (n_params = every state_dict parameter, including
// the rotary frequencies; n_input_emb_params = the input embedding).
import type { BakaConfig } from './config';
import { parameterSpecs } from './parameters';

export function countParameters(model: { config: BakaConfig }): {
  total: number;
  inputEmbedding: number;
} {
  let total = 0;
  let inputEmbedding = 0;
  for (const spec of parameterSpecs(model.config)) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    total += size;
    if (spec.name === 'vocab_in.weight') inputEmbedding = size;
  }
  return { total, inputEmbedding };
}
