// BakaConfig: the model's one config type. Field names are upstream's config.json keys
// (snake_case, a file format); the fields after `act_fn` are ours, with defaults that reproduce
// upstream 003_baka_xl, so an upstream-style config.json without them loads unchanged.
// `configShape` below is the only place a field, its default and its description are written:
// the type, the validation, `--set key=value`, CLI help and `baka info` all read it.
import { z } from 'zod';
import { ModelError } from './errors';
import { LAYER_KIND_NAMES, THIN_ATTENTION_INIT_SCALE } from './kinds/layers';
import { NORM_NAMES } from './kinds/norms';
import { QK_NORM_NAMES, QK_NORM_SCOPES, QK_NORM_WEIGHTS } from './kinds/qk-norms';
import { SEQUENCE_STATE_NAMES } from './kinds/sequence-states';
import { XL_CONFIG_SHAPE } from './kinds/xl';
import { RECURRENT_CONFIG_SHAPE } from './kinds/block-recurrent';

const positiveInt = z.number().int().positive();

export { THIN_ATTENTION_INIT_SCALE };

/** Every config field: its type and default (zod) and a one-line description. */
const configShape = {
  model_type: z
    .enum(['baka_xl', 'baka_pause', 'baka_rmt', 'baka_mamba'])
    .default('baka_xl')
    .describe(
      "Upstream's model family, derived from the fields: 'baka_mamba' with Mamba layers, else 'baka_rmt' with RMT tokens, 'baka_pause' with pauses, else 'baka_xl'. Read from an upstream config.json it sets that branch's defaults (baka_pause: rmsnorm; baka_rmt and baka_mamba: same-layer memory).",
    ),
  dim_model: positiveInt.describe('Width of the residual stream D.'),
  // upstream treats 0 as "use the default"
  dim_ff: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe('MLP hidden width F (0: upstream default 4 * dim_model).'),
  dim_attn: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe('Width of queries/keys A (0: dim_model); dim_head = dim_attn / n_heads.'),
  n_layers: positiveInt.describe('Number of layers.'),
  n_heads: positiveInt.describe('Attention heads H.'),
  n_vocab: positiveInt
    .default(50277)
    .describe('Vocabulary size V (GPT-NeoX-20B tokenizer: 50277).'),
  n_ctx: positiveInt
    .default(512)
    .describe('Chunk length: the sequence runs in chunks of n_ctx tokens with XL memory between.'),
  act_fn: z.literal('elephant').default('elephant').describe('MLP activation (elephant).'),
  memory: z
    .enum(SEQUENCE_STATE_NAMES)
    .default('xl')
    .describe(
      "'xl' (upstream): attend to the previous chunk's cached k/v; 'none': independent chunks (the sequence-state kind).",
    ),
  ...XL_CONFIG_SHAPE,
  position_policy: z
    .enum(['reset', 'absolute'])
    .default('reset')
    .describe("Rotary positions: 'reset' (past keys start at 0, upstream) or 'absolute'."),
  rotary_layout: z
    .enum(['interleaved', 'half'])
    .default('interleaved')
    .describe("Rotary pair layout: 'interleaved' (rotary-embedding-torch, upstream) or 'half'."),
  rotary_precision: z
    .enum(['float32', 'bfloat16'])
    .default('float32')
    .describe(
      "Rotary table arithmetic: 'float32', or 'bfloat16' (positions, frequencies, angles, cos/sin rounded as rotary-embedding-torch 0.3.x did in upstream's bf16 runs).",
    ),
  rope_theta: z.number().positive().default(10000).describe('Rotary frequency base.'),
  layer_kinds: z
    .array(z.enum(LAYER_KIND_NAMES))
    .default([])
    .describe(
      "Per-layer kind: 'standard', 'attention-only' (a thin layer, no MLP) or 'mega' (Mega's EMA + gated attention in the attention branch's place); [] = all standard.",
    ),
  layer_dim_ff: z
    .array(positiveInt)
    .default([])
    .describe("Per-layer MLP width (upstream's hourglass); [] = dim_ff everywhere."),
  thin_rotary_scale: z
    .number()
    .positive()
    .default(THIN_ATTENTION_INIT_SCALE)
    .describe(
      "Rotary frequency scale of attention-only layers (upstream's 1e-4 init scaled them too); 1 = ordinary.",
    ),
  n_pauses: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe(
      'Pause tokens per chunk (upstream 004): copies of one learned vector inserted at every n_ctx // n_pauses positions; no loss on them.',
    ),
  is_pause_pos_random: z
    .boolean()
    .default(false)
    .describe(
      "Upstream's random pause layout (first pause at 0, each next at a uniform point of the growing chunk), drawn from pause_seed; training only, evaluation draws it the same at every call, generation needs the fixed layout.",
    ),
  pause_seed: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe('Seed of the random pause layout (is_pause_pos_random).'),
  n_rmt_tokens: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe(
      "RMT memory tokens (upstream 005): the last layer's outputs at the write positions of one chunk are read and written by the next.",
    ),
  rmt_mask: z
    .enum(['causal', 'upstream'])
    .default('causal')
    .describe(
      "Attention mask with RMT tokens: 'causal' (upstream 005 as it ran: flash attention's bottom-right causal mask) or 'upstream' (005's hand-built mask: write tokens see every key, read tokens each other).",
    ),
  rmt_grad_chunks: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe(
      'How many chunks back the gradient flows through the RMT memory inside a window (0: all, as upstream).',
    ),
  n_rmt_margins: z
    .literal(0)
    .default(0)
    .describe("Upstream's RMT margins; only 0 (what 005 trained with) is supported."),
  rmt_solidifier: z
    .literal('none')
    .default('none')
    .describe("Upstream's RMT solidifier; only 'none' (what 005 trained with) is supported."),
  use_flash_attn: z
    .boolean()
    .default(true)
    .describe("Upstream's attention switch, kept for its configs; the mask is chosen by rmt_mask."),
  norm: z
    .enum(NORM_NAMES)
    .default('layernorm')
    .describe(
      "Norm of the layer inputs and the final norm: 'layernorm' (003) or 'rmsnorm' (T5-style, 004).",
    ),
  mamba_each_nth_layer: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe(
      'Upstream 007: layers i % n == 0 add y + Mamba(LayerNorm(y)) after their sum; 0 = no Mamba.',
    ),
  mamba_carry_state: z
    .boolean()
    .default(false)
    .describe(
      "Mamba layers continue from the conv window and scan state the previous chunk ended with (and, with carried memory, the previous window's); false = upstream 007's zero state every chunk.",
    ),
  split_norm: z
    .boolean()
    .default(false)
    .describe(
      "Separate input norms for attention and MLP (attn.norm_in, mlp.norm_in; upstream 00x_split_ln, GPT-NeoX style) instead of the layer's one norm_in.",
    ),
  qk_norm: z
    .enum(QK_NORM_NAMES)
    .default('none')
    .describe(
      "Norm of q and k per head after the projection, before rotary (the XL memory keeps them normalised): 'none' (003), 'layernorm', 'rmsnorm', 'l2' (unit length, logits x qk_norm_scale) or 'negator' (upstream 000_OLD: [x ; c - x], then LayerNorm).",
    ),
  qk_norm_scope: z
    .enum(QK_NORM_SCOPES)
    .default('head')
    .describe(
      "qk_norm layernorm/rmsnorm/negator statistics: over each head's features ('head') or over all heads' at once ('all').",
    ),
  qk_norm_weights: z
    .enum(QK_NORM_WEIGHTS)
    .default('shared')
    .describe(
      "qk_norm layernorm/rmsnorm/negator weights and biases: one vector shared by the heads ('shared') or one per head ('per-head').",
    ),
  qk_norm_scale: z
    .number()
    .nonnegative()
    .default(0)
    .describe(
      'qk_norm l2: the logits are q.k times this instead of / sqrt(dim_head) (0: sqrt(dim_head)); the start value when learned.',
    ),
  qk_norm_learned_scale: z
    .boolean()
    .default(false)
    .describe('qk_norm l2: learn the logit scale per head (attn.qk_scale, [n_heads]).'),
  ema_dim: positiveInt
    .default(16)
    .describe(
      "Mega layers: EMA dimensions per channel (the paper's 16); the EMA state is [B, D, ema_dim].",
    ),
  mega_z_dim: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe(
      'Mega layers: width of the shared query/key representation z (0: max(dim_head, dim_model / 4)); at least dim_head.',
    ),
  mega_h_dim: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe('Mega layers: width of the attention values and the reset gate (0: 2 * dim_model).'),
  ...RECURRENT_CONFIG_SHAPE,
  n_memory_tokens: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe(
      'Memory Transformer tokens (Burtsev et al. 2020): learned vectors in front of every chunk, seeing only each other and earlier positions; no loss on them. 0 = off.',
    ),
  memory_tokens_every: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe(
      'A group of the memory tokens in front of every N tokens of a chunk instead of one in front of it (0: one group per chunk).',
    ),
  memory_tokens_in_xl: z
    .boolean()
    .default(false)
    .describe("Whether the memory tokens' k/v enter the XL memory with the chunk's (default: no)."),
  n_mem_kv: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .describe(
      'Persistent memory (all-attention, Sukhbaatar et al. 2019): learned key/value pairs per layer and head that every query attends to, unrotated and never masked. 0 = off.',
    ),
};

const configSchema = z.object(configShape).passthrough();

export type BakaConfig = { [K in keyof typeof configShape]: z.output<(typeof configShape)[K]> };
export type ConfigKey = keyof BakaConfig;
export type MemoryMode = BakaConfig['memory'];
export type NormName = BakaConfig['norm'];
export type MemorySource = BakaConfig['memory_source'];
export type PositionPolicy = BakaConfig['position_policy'];
export type RotaryLayout = BakaConfig['rotary_layout'];
export type RotaryPrecision = BakaConfig['rotary_precision'];
/** What one layer computes: 'standard' = attention + MLP in parallel; 'attention-only' = a thin layer. */
export type LayerKind = BakaConfig['layer_kinds'][number];

/** The config keys, in config.json order. */
export const CONFIG_KEYS = Object.keys(configShape) as ConfigKey[];

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
  /** Upstream 004_pause: baka-xl's shape with 8 pauses per chunk and RMSNorm (valid ~4.02 upstream). */
  'baka-pause': {
    dim_model: 768,
    dim_ff: 3072,
    n_layers: 12,
    n_heads: 12,
    n_ctx: 512,
    n_vocab: 50277,
    n_pauses: 8,
    norm: 'rmsnorm',
  },
  /** Upstream 005_rmt: 8 pauses, 16 RMT tokens, same-layer XL, LayerNorm (valid 3.996 upstream). */
  'baka-rmt': {
    dim_model: 768,
    dim_ff: 3072,
    n_layers: 12,
    n_heads: 12,
    n_ctx: 512,
    n_vocab: 50277,
    n_pauses: 8,
    n_rmt_tokens: 16,
    memory_source: 'same-layer',
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

/** The preset a command uses when it is given neither a preset nor a config file. */
export const DEFAULT_PRESET: PresetName = 'tiny';

/** The preset's fields; the error lists the presets. */
export function presetConfig(name: string, source = '--preset'): Partial<BakaConfig> {
  if (!(name in PRESETS)) {
    throw new ModelError(
      `${source}: expected one of ${Object.keys(PRESETS).join(', ')}, got '${name}'`,
    );
  }
  return { ...PRESETS[name as PresetName] };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.length > 0 ? issue.path.join('.') : '(config)';
  return `${field}: ${issue.message}`;
}

/**
 * Validates a config (e.g. a parsed config.json), applies defaults, asserts the invariants.
 * Unknown extra keys are kept out of the result. Errors name the field.
 */
export function makeConfig(input: unknown, source = 'config'): BakaConfig {
  const parsed = configSchema.safeParse(withFamilyDefaults(input));
  if (!parsed.success) {
    throw new ModelError(`${source}: ${parsed.error.issues.map(describeIssue).join('; ')}`);
  }
  const raw = parsed.data;
  const config = {} as Record<ConfigKey, unknown>;
  for (const key of CONFIG_KEYS) config[key] = raw[key];
  config.model_type =
    raw.mamba_each_nth_layer > 0
      ? 'baka_mamba'
      : raw.n_rmt_tokens > 0
        ? 'baka_rmt'
        : raw.n_pauses > 0
          ? 'baka_pause'
          : 'baka_xl';
  config.dim_ff = raw.dim_ff || 4 * raw.dim_model;
  config.dim_attn = raw.dim_attn || raw.dim_model;
  config.mega_z_dim =
    raw.mega_z_dim ||
    Math.max((config.dim_attn as number) / raw.n_heads, Math.floor(raw.dim_model / 4));
  config.mega_h_dim = raw.mega_h_dim || 2 * raw.dim_model;
  config.n_state_vectors = raw.n_state_vectors || raw.n_ctx;
  const result = config as BakaConfig;
  const fail = (message: string) => {
    throw new ModelError(`${source}: ${message}`);
  };
  if (raw.model_type === 'baka_mamba' && result.mamba_each_nth_layer === 0) {
    fail('model_type baka_mamba needs mamba_each_nth_layer >= 1');
  }
  if (result.mamba_carry_state && result.mamba_each_nth_layer === 0) {
    fail('mamba_carry_state needs Mamba layers (mamba_each_nth_layer >= 1)');
  }
  if (result.dim_attn % result.n_heads !== 0) {
    fail(`dim_attn (${result.dim_attn}) must be divisible by n_heads (${result.n_heads})`);
  }
  if (result.dim_model % result.n_heads !== 0) {
    fail(
      `dim_model (${result.dim_model}) must be divisible by n_heads (${result.n_heads}): values are split into heads`,
    );
  }
  if ((result.dim_attn / result.n_heads) % 2 !== 0) {
    fail(
      `dim_head = dim_attn / n_heads (${result.dim_attn / result.n_heads}) must be even for rotary pairs`,
    );
  }
  if (result.n_pauses > result.n_ctx) {
    fail(
      `n_pauses (${result.n_pauses}) must be at most n_ctx (${result.n_ctx}): pauses sit every n_ctx // n_pauses tokens`,
    );
  }
  checkQkNorm(result, fail);
  for (const layer of result.recurrent_layers) {
    if (layer >= result.n_layers) {
      fail(`recurrent_layers: layer ${layer} does not exist (n_layers ${result.n_layers})`);
    }
    if (layerKind(result, layer) === 'mega') {
      fail(
        `recurrent_layers: layer ${layer} is a Mega layer; a block-recurrent layer needs attention`,
      );
    }
  }
  if (new Set(result.recurrent_layers).size !== result.recurrent_layers.length) {
    fail(`recurrent_layers: [${result.recurrent_layers.join(', ')}] names a layer twice`);
  }
  checkMemoryTokens(result, fail);
  for (const field of ['layer_kinds', 'layer_dim_ff'] as const) {
    if (result[field].length > 0 && result[field].length !== result.n_layers) {
      fail(
        `${field} has ${result[field].length} entries, expected one per layer (n_layers ${result.n_layers})`,
      );
    }
  }
  if (result.layer_kinds.includes('mega')) checkMega(result, fail);
  return result;
}

/** The qk_norm_* fields must belong to the chosen qk_norm (a field it ignores is an error). */
function checkQkNorm(config: BakaConfig, fail: (message: string) => void): void {
  const kind = config.qk_norm;
  const normalising = kind === 'layernorm' || kind === 'rmsnorm' || kind === 'negator';
  if (!normalising && config.qk_norm_scope !== 'head') {
    fail(
      `qk_norm_scope: '${config.qk_norm_scope}' needs qk_norm layernorm, rmsnorm or negator, not '${kind}'`,
    );
  }
  if (!normalising && config.qk_norm_weights !== 'shared') {
    fail(
      `qk_norm_weights: '${config.qk_norm_weights}' needs qk_norm layernorm, rmsnorm or negator, not '${kind}'`,
    );
  }
  if (kind !== 'l2' && config.qk_norm_scale !== 0) {
    fail(`qk_norm_scale: only qk_norm l2 has a logit scale, not '${kind}'`);
  }
  if (kind !== 'l2' && config.qk_norm_learned_scale) {
    fail(`qk_norm_learned_scale: only qk_norm l2 has a logit scale, not '${kind}'`);
  }
}

/** Memory tokens and persistent memory k/v (kinds/memory-tokens.ts): what they combine with. */
function checkMemoryTokens(config: BakaConfig, fail: (message: string) => never): void {
  if (config.n_memory_tokens === 0) {
    if (config.memory_tokens_every > 0) fail('memory_tokens_every needs n_memory_tokens >= 1');
    if (config.memory_tokens_in_xl) fail('memory_tokens_in_xl needs n_memory_tokens >= 1');
  } else {
    for (const [field, value] of [
      ['n_pauses', config.n_pauses],
      ['n_rmt_tokens', config.n_rmt_tokens],
      ['mamba_each_nth_layer', config.mamba_each_nth_layer],
      ['recurrent_layers', config.recurrent_layers.length],
    ] as const) {
      if (value > 0)
        fail(`n_memory_tokens cannot be combined with ${field} (set one of them to 0)`);
    }
  }
  if (config.n_mem_kv > 0 && config.qk_norm !== 'none') {
    fail('n_mem_kv cannot be combined with qk_norm (persistent keys are not normalised)');
  }
  if (config.n_mem_kv > 0 && config.recurrent_layers.length > 0) {
    fail('n_mem_kv cannot be combined with recurrent_layers (set one of them to 0 / [])');
  }
}

/** What a model with Mega layers needs (kinds/mega.ts). */
function checkMega(config: BakaConfig, fail: (message: string) => never): void {
  if (config.memory === 'xl' && config.memory_source !== 'same-layer') {
    fail(
      "layer_kinds 'mega' needs memory_source same-layer (or memory none): a Mega layer's keys are one head of mega_z_dim features, which other layers cannot read",
    );
  }
  if (config.mega_z_dim < dimHead(config)) {
    fail(
      `mega_z_dim (${config.mega_z_dim}) must be at least dim_head (${dimHead(config)}): rotary positions turn its first dim_head features`,
    );
  }
  for (const [field, unsupported] of [
    ['n_pauses', config.n_pauses > 0],
    ['n_rmt_tokens', config.n_rmt_tokens > 0],
    ['mamba_each_nth_layer', config.mamba_each_nth_layer > 0],
    ['rotary_precision', config.rotary_precision !== 'float32'],
    ['qk_norm', config.qk_norm !== 'none'],
    ['split_norm', config.split_norm],
    ['n_memory_tokens', config.n_memory_tokens > 0],
    ['n_mem_kv', config.n_mem_kv > 0],
  ] as const) {
    if (unsupported) fail(`${field}: not supported together with layer_kinds 'mega'`);
  }
}

/**
 * Upstream's branches differ in fields their config.json does not hold: 004 (`baka_pause`) has
 * RMSNorm, 005 (`baka_rmt`) reads the same layer's cache. Those become the defaults when a config
 * names the family and leaves the field out.
 */
function withFamilyDefaults(input: unknown): unknown {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
  const fields = input as Record<string, unknown>;
  const defaults: Record<string, unknown> = {};
  if (fields.model_type === 'baka_pause' && !('norm' in fields)) defaults.norm = 'rmsnorm';
  const sameLayer = fields.model_type === 'baka_rmt' || fields.model_type === 'baka_mamba';
  if (sameLayer && !('memory_source' in fields)) {
    defaults.memory_source = 'same-layer';
  }
  return { ...fields, ...defaults };
}

/** The fields that give a model its size; every other field picks a variant of it. */
export const SIZE_KEYS = [
  'dim_model',
  'dim_ff',
  'dim_attn',
  'n_layers',
  'n_heads',
  'n_vocab',
  'n_ctx',
] as const satisfies readonly ConfigKey[];

/**
 * The variant fields of `config`: every field, in the schema's order, whose value differs from
 * what the defaults give a model of the same size (so a derived default such as n_state_vectors
 * = n_ctx counts as unchanged). `model_type` is left out: it follows from the other fields.
 */
export function variantFields(config: BakaConfig): [ConfigKey, unknown][] {
  const size: Partial<BakaConfig> = {};
  for (const key of SIZE_KEYS) size[key] = config[key];
  const reference = makeConfig(size);
  const sizeKeys: readonly ConfigKey[] = SIZE_KEYS;
  return CONFIG_KEYS.filter(
    (key) =>
      key !== 'model_type' &&
      !sizeKeys.includes(key) &&
      JSON.stringify(config[key]) !== JSON.stringify(reference[key]),
  ).map((key) => [key, config[key]]);
}

/** A field's value as `--set key=value` writes it (lists joined by commas). */
export function settingText(key: string, value: unknown): string {
  return `${key}=${Array.isArray(value) ? value.join(',') : String(value)}`;
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

/**
 * `carry_memory` of a config.json written before it moved to the training options (where it is
 * `carryMemory`); undefined when the file does not have it. Such configs still load.
 */
export function legacyCarryMemory(input: unknown): boolean | undefined {
  if (typeof input !== 'object' || input === null) return undefined;
  const value = (input as Record<string, unknown>).carry_memory;
  return typeof value === 'boolean' ? value : undefined;
}

// ---- fields as data: descriptions, defaults and `key=value` settings, for any zod object shape.

/** One field of a schema, as help text and `baka info` show it. */
export interface FieldInfo {
  key: string;
  description: string;
  /** The default value; undefined when the field is required. */
  default: unknown;
  /** What a value must be, e.g. "an integer >= 1", "one of xl, none". */
  expected: string;
}

interface JsonSchema {
  type?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  prefixItems?: JsonSchema[];
  items?: JsonSchema | false;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
}

function expectedOf(schema: JsonSchema): string {
  if (schema.anyOf) return schema.anyOf.map(expectedOf).join(' or ');
  if (schema.const !== undefined) return `'${String(schema.const)}'`;
  if (schema.enum) return `one of ${schema.enum.join(', ')}`;
  if (schema.type === 'null') return 'null';
  if (schema.type === 'array' && schema.prefixItems) {
    return `a list [${schema.prefixItems.map(expectedOf).join(', ')}]`;
  }
  if (schema.type === 'array' && schema.items) return `a list of ${expectedOf(schema.items)}`;
  if (schema.type === 'integer' || schema.type === 'number') {
    const bounds: string[] = [];
    if (schema.minimum !== undefined) bounds.push(`>= ${schema.minimum}`);
    if (schema.exclusiveMinimum !== undefined) bounds.push(`> ${schema.exclusiveMinimum}`);
    if (schema.maximum !== undefined && schema.maximum < Number.MAX_SAFE_INTEGER) {
      bounds.push(`<= ${schema.maximum}`);
    }
    if (schema.exclusiveMaximum !== undefined) bounds.push(`< ${schema.exclusiveMaximum}`);
    const kind = schema.type === 'integer' ? 'an integer' : 'a number';
    return bounds.length > 0 ? `${kind} ${bounds.join(', ')}` : kind;
  }
  if (schema.type === 'boolean') return 'true or false';
  if (schema.type === 'string') return 'a text';
  return 'a value';
}

/** Description, default and expected type of every field of a zod object shape. */
export function describeFields(shape: Record<string, z.ZodType>): FieldInfo[] {
  return Object.entries(shape).map(([key, schema]) => {
    const json = z.toJSONSchema(schema, { unrepresentable: 'any' }) as JsonSchema & {
      default?: unknown;
    };
    return {
      key,
      description: schema.description ?? '',
      default: json.default,
      expected: expectedOf(json),
    };
  });
}

/** A config field's default (undefined for a required field). */
export function configDefault(key: ConfigKey): unknown {
  const parsed = configShape[key].safeParse(undefined);
  return parsed.success ? parsed.data : undefined;
}

/** The model config's fields (descriptions, defaults), for help text and `baka info`. */
export function configFields(): FieldInfo[] {
  return describeFields(configShape);
}

/**
 * The values a config key offers when it is an enum, or a list of one (its elements' values),
 * in the schema's order; null for any other key. Experiments enumerate variants with it.
 */
export function configChoices(key: ConfigKey): readonly string[] | null {
  const json = z.toJSONSchema(configShape[key], { unrepresentable: 'any' }) as JsonSchema;
  const element = json.type === 'array' && json.items ? json.items : json;
  return element.enum ? element.enum.map(String) : null;
}

/** A setting's text as a typed value: number, boolean, null, JSON list/object, comma list, text. */
function typedValue(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === 'true') return true;
  if (trimmed === 'false') return false;
  if (trimmed === 'null') return null;
  if (trimmed !== '' && Number.isFinite(Number(trimmed))) return Number(trimmed);
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    try {
      return JSON.parse(trimmed);
    } catch {
      return text;
    }
  }
  if (trimmed.includes(',')) return trimmed.split(',').map(typedValue);
  return text;
}

/**
 * Parses `text` as a value of `schema` (a field of a config or options shape): the typed reading
 * first (numbers, booleans, lists), the raw text second, a list of that one value third. The
 * error says what was expected.
 */
export function parseFieldValue(schema: z.ZodType, text: string): unknown {
  const typed = typedValue(text);
  const parsed = schema.safeParse(typed);
  if (parsed.success) return parsed.data;
  if (typed !== text && schema.safeParse(text).success) return text;
  // a one-element list written without brackets or commas (`layer_kinds=mega` for one layer)
  if (!Array.isArray(typed)) {
    const single = schema.safeParse([typed]);
    if (single.success) return single.data;
  }
  const json = z.toJSONSchema(schema, { unrepresentable: 'any' }) as JsonSchema;
  throw new ModelError(`expected ${expectedOf(json)} (${parsed.error.issues[0]?.message})`);
}

/** Splits `key=value`; the error names the flag. */
export function splitSetting(setting: string, flag = '--set'): [string, string] {
  const at = setting.indexOf('=');
  if (at <= 0) throw new ModelError(`${flag}: expected key=value, got '${setting}'`);
  return [setting.slice(0, at).trim(), setting.slice(at + 1)];
}

/**
 * `--set key=value` settings of model config keys, typed by the schema. An unknown key is an
 * error listing the valid keys; a bad value names the key and what was expected.
 */
export function parseConfigSettings(
  settings: readonly string[],
  flag = '--set',
): Partial<BakaConfig> {
  const result: Record<string, unknown> = {};
  for (const setting of settings) {
    const [key, text] = splitSetting(setting, flag);
    if (!(key in configShape)) {
      throw new ModelError(`${flag}: unknown key '${key}'; valid keys: ${CONFIG_KEYS.join(', ')}`);
    }
    try {
      result[key] = parseFieldValue(configShape[key as ConfigKey], text);
    } catch (error) {
      throw new ModelError(`${flag} ${key}=${text}: ${(error as Error).message}`);
    }
  }
  return result as Partial<BakaConfig>;
}

/** True when `key` is a model config key. */
export function isConfigKey(key: string): key is ConfigKey {
  return key in configShape;
}
