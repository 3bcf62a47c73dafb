// The memory mechanisms beyond what the enum keys (`memory`, `memory_source`, `layer_kinds`)
// already list: one small, valid setting each, for experiments that compare every mechanism the
// model has (`baka experiment run memory-variants`). A mechanism that needs more than a value of
// an enum key adds its line here.
import type { BakaConfig } from '../config';

export interface MemoryMechanism {
  name: string;
  description: string;
  /** Config fields that switch it on, on top of any preset. */
  set: Partial<BakaConfig>;
}

export const MEMORY_MECHANISMS: readonly MemoryMechanism[] = [
  {
    name: 'pause',
    description: 'pause tokens with RMSNorm (upstream 004)',
    set: { n_pauses: 4, norm: 'rmsnorm' },
  },
  {
    name: 'rmt',
    description: 'RMT memory tokens with pauses and same-layer XL (upstream 005)',
    set: { n_pauses: 4, n_rmt_tokens: 4, memory_source: 'same-layer' },
  },
  {
    name: 'mamba',
    description: 'a Mamba block in every second layer (upstream 007 without its pauses and RMT)',
    set: { mamba_each_nth_layer: 2 },
  },
  {
    name: 'block-recurrent',
    description:
      'a Block-Recurrent Transformer state (n_ctx vectors, fixed gate) in layer 2, near the top (Hutchins et al. 2022)',
    set: { recurrent_layers: [2] },
  },
  {
    name: 'memtok',
    description:
      'Memory Transformer tokens in front of every chunk and persistent memory k/v (Burtsev et al. 2020; Sukhbaatar et al. 2019)',
    set: { n_memory_tokens: 4, n_mem_kv: 4 },
  },
];
