// BakaConfig: the model's one config type. Field names are upstream's config.json keys
// (snake_case, a file format); the fields after `act_fn` are ours, with defaults that reproduce
// upstream 003_baka_xl, so an upstream-style config.json without them loads unchanged.
import { z } from 'zod';
import { ModelError } from './errors';

export type MemoryMode = 'xl' | 'none';
export type MemorySource = 'previous-layer' | 'same-layer';
export type PositionPolicy = 'reset' | 'absolute';
export type RotaryLayout = 'interleaved' | 'half';
/** What one layer computes: 'standard' = attention + MLP in parallel; 'attention-only' = a thin layer. */
export type LayerKind = 'standard' | 'attention-only';

export interface BakaConfig {
  model_type: 'baka_xl';
  /** Width of the residual stream D. */
  dim_model: number;
  /** MLP hidden width F (upstream default 4 * dim_model). */
  dim_ff: number;
  /** Width of queries/keys A (upstream default dim_model); dim_head = dim_attn / n_heads. */
  dim_attn: number;
  n_layers: number;
  n_heads: number;
  /** Vocabulary size V (GPT-NeoX-20B tokenizer: 50277). */
  n_vocab: number;
  /** Chunk length: the sequence is processed in chunks of n_ctx tokens with XL memory between. */
  n_ctx: number;
  act_fn: 'elephant';
  /** 'xl' (upstream): attend to the previous chunk's cached k/v; 'none': independent chunks. */
  memory: MemoryMode;
  /** Whose cache a layer reads: layer i-1's ('previous-layer', 003) or its own ('same-layer', 005). */
  memory_source: MemorySource;
  /** Rotary positions: 'reset' (past keys start at 0, upstream) or 'absolute' (document positions). */
  position_policy: PositionPolicy;
  /** Carry detached memory across training windows (upstream: false, its hand-off returned nothing). */
  carry_memory: boolean;
  /** Rotary pair layout: 'interleaved' (rotary-embedding-torch, upstream) or GPT-NeoX 'half'. */
  rotary_layout: RotaryLayout;
  /** Rotary frequency base. */
  rope_theta: number;
  /**
   * Per-layer kind (upstream 00x_thin): 'standard' or 'attention-only' (no MLP, no MLP tensors).
   * [] (the default): every layer is 'standard'. Read it through layerKind().
   */
  layer_kinds: LayerKind[];
  /** Per-layer MLP width (upstream's "hourglass"); [] (the default): dim_ff everywhere (layerDimFf()). */
  layer_dim_ff: number[];
  /**
   * Rotary frequency scale of attention-only layers. Upstream's init multiplied every attention
   * parameter of a thin layer by 1e-4, the (untrained) rotary frequencies included; 1 = ordinary.
   */
  thin_rotary_scale: number;
}

/** The upstream init factor of a thin layer's attention weights. */
export const THIN_ATTENTION_INIT_SCALE = 1e-4;

const positiveInt = z.number().int().positive();

const configSchema = z
  .object({
    model_type: z.literal('baka_xl').default('baka_xl'),
    dim_model: positiveInt,
    // upstream treats 0 as "use the default"
    dim_ff: z.number().int().nonnegative().default(0),
    dim_attn: z.number().int().nonnegative().default(0),
    n_layers: positiveInt,
    n_heads: positiveInt,
    n_vocab: positiveInt.default(50277),
    n_ctx: positiveInt.default(512),
    act_fn: z.literal('elephant').default('elephant'),
    memory: z.enum(['xl', 'none']).default('xl'),
    memory_source: z.enum(['previous-layer', 'same-layer']).default('previous-layer'),
    position_policy: z.enum(['reset', 'absolute']).default('reset'),
    carry_memory: z.boolean().default(false),
    rotary_layout: z.enum(['interleaved', 'half']).default('interleaved'),
    rope_theta: z.number().positive().default(10000),
    layer_kinds: z.array(z.enum(['standard', 'attention-only'])).default([]),
    layer_dim_ff: z.array(positiveInt).default([]),
    thin_rotary_scale: z.number().positive().default(THIN_ATTENTION_INIT_SCALE),
  })
  .passthrough();

/** Named starting points; `makeConfig({ ...PRESETS.tiny, n_vocab })` fills the rest. */
export const PRESETS = {
  /** Upstream 003_baka_xl: 12 layers, 768 wide, 190M parameters with the 50277 vocab (77M of them embeddings). */
  'baka-xl': {
    dim_model: 768,
    dim_ff: 3072,
    n_layers: 12,
    n_heads: 12,
    n_ctx: 512,
    n_vocab: 50277,
  },
  /** The PermuteFormer paper's wikitext-103 size. */
  permuteformer: {
    dim_model: 512,
    dim_ff: 1024,
    n_layers: 6,
    n_heads: 8,
    n_ctx: 512,
    n_vocab: 50277,
  },
  small: { dim_model: 256, dim_ff: 1024, n_layers: 6, n_heads: 8, n_ctx: 256, n_vocab: 50277 },
  /** Trains visibly on two CPU cores in minutes (the vocabulary projection dominates its cost). */
  tiny: { dim_model: 128, dim_ff: 512, n_layers: 4, n_heads: 4, n_ctx: 128, n_vocab: 50277 },
} satisfies Record<string, Partial<BakaConfig>>;

export type PresetName = keyof typeof PRESETS;

function describeIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.length > 0 ? issue.path.join('.') : '(config)';
  return `${field}: ${issue.message}`;
}

/**
 * Validates a config (e.g. a parsed config.json), applies defaults, asserts the invariants.
 * Unknown extra keys are kept out of the result. Errors name the field.
 */
export function makeConfig(input: unknown, source = 'config'): BakaConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    throw new ModelError(`${source}: ${parsed.error.issues.map(describeIssue).join('; ')}`);
  }
  const raw = parsed.data;
  const config: BakaConfig = {
    model_type: 'baka_xl',
    dim_model: raw.dim_model,
    dim_ff: raw.dim_ff || 4 * raw.dim_model,
    dim_attn: raw.dim_attn || raw.dim_model,
    n_layers: raw.n_layers,
    n_heads: raw.n_heads,
    n_vocab: raw.n_vocab,
    n_ctx: raw.n_ctx,
    act_fn: raw.act_fn,
    memory: raw.memory,
    memory_source: raw.memory_source,
    position_policy: raw.position_policy,
    carry_memory: raw.carry_memory,
    rotary_layout: raw.rotary_layout,
    rope_theta: raw.rope_theta,
    layer_kinds: raw.layer_kinds,
    layer_dim_ff: raw.layer_dim_ff,
    thin_rotary_scale: raw.thin_rotary_scale,
  };
  const fail = (message: string) => {
    throw new ModelError(`${source}: ${message}`);
  };
  if (config.dim_attn % config.n_heads !== 0) {
    fail(`dim_attn (${config.dim_attn}) must be divisible by n_heads (${config.n_heads})`);
  }
  if (config.dim_model % config.n_heads !== 0) {
    fail(
      `dim_model (${config.dim_model}) must be divisible by n_heads (${config.n_heads}): values are split into heads`,
    );
  }
  if ((config.dim_attn / config.n_heads) % 2 !== 0) {
    fail(
      `dim_head = dim_attn / n_heads (${config.dim_attn / config.n_heads}) must be even for rotary pairs`,
    );
  }
  for (const field of ['layer_kinds', 'layer_dim_ff'] as const) {
    if (config[field].length > 0 && config[field].length !== config.n_layers) {
      fail(
        `${field} has ${config[field].length} entries, expected one per layer (n_layers ${config.n_layers})`,
      );
    }
  }
  return config;
}

/** Whether every layer is a standard layer of width dim_ff (the 003 model: no per-layer fields). */
export function isUniform(config: BakaConfig): boolean {
  return Array.from(
    { length: config.n_layers },
    (_, layer) =>
      layerKind(config, layer) === 'standard' && layerDimFf(config, layer) === config.dim_ff,
  ).every(Boolean);
}

/** Layer i's kind ('standard' unless layer_kinds says otherwise). */
export function layerKind(config: BakaConfig, layer: number): LayerKind {
  return config.layer_kinds[layer] ?? 'standard';
}

/** Layer i's MLP width (dim_ff unless layer_dim_ff says otherwise). */
export function layerDimFf(config: BakaConfig, layer: number): number {
  return config.layer_dim_ff[layer] ?? config.dim_ff;
}

/** dim_head K = dim_attn / n_heads. */
export function dimHead(config: BakaConfig): number {
  return config.dim_attn / config.n_heads;
}
