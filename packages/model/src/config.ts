// BakaConfig: the model's one config type. Field names are upstream's config.json keys
// (snake_case, a file format); the fields after `act_fn` are ours, with defaults that reproduce
// upstream 003_baka_xl, so an upstream-style config.json without them loads unchanged.
// `configShape` below is the only place a field, its default and its description are written:
// the type, the validation, `--set key=value`, CLI help and `baka info` all read it.
import { z } from 'zod';
import { ModelError } from './errors';

const positiveInt = z.number().int().positive();

/** The upstream init factor of a thin layer's attention weights. */
export const THIN_ATTENTION_INIT_SCALE = 1e-4;

/** Every config field: its type and default (zod) and a one-line description. */
const configShape = {
  model_type: z.literal('baka_xl').default('baka_xl').describe('Model family (always baka_xl).'),
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
    .enum(['xl', 'none'])
    .default('xl')
    .describe(
      "'xl' (upstream): attend to the previous chunk's cached k/v; 'none': independent chunks.",
    ),
  memory_source: z
    .enum(['previous-layer', 'same-layer'])
    .default('previous-layer')
    .describe("Whose cache a layer reads: layer i-1's ('previous-layer', 003) or its own (005)."),
  position_policy: z
    .enum(['reset', 'absolute'])
    .default('reset')
    .describe("Rotary positions: 'reset' (past keys start at 0, upstream) or 'absolute'."),
  rotary_layout: z
    .enum(['interleaved', 'half'])
    .default('interleaved')
    .describe("Rotary pair layout: 'interleaved' (rotary-embedding-torch, upstream) or 'half'."),
  rope_theta: z.number().positive().default(10000).describe('Rotary frequency base.'),
  layer_kinds: z
    .array(z.enum(['standard', 'attention-only']))
    .default([])
    .describe(
      "Per-layer kind: 'standard' or 'attention-only' (a thin layer, no MLP); [] = all standard.",
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
};

const configSchema = z.object(configShape).passthrough();

export type BakaConfig = { [K in keyof typeof configShape]: z.output<(typeof configShape)[K]> };
export type ConfigKey = keyof BakaConfig;
export type MemoryMode = BakaConfig['memory'];
export type MemorySource = BakaConfig['memory_source'];
export type PositionPolicy = BakaConfig['position_policy'];
export type RotaryLayout = BakaConfig['rotary_layout'];
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
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    throw new ModelError(`${source}: ${parsed.error.issues.map(describeIssue).join('; ')}`);
  }
  const raw = parsed.data;
  const config = {} as Record<ConfigKey, unknown>;
  for (const key of CONFIG_KEYS) config[key] = raw[key];
  config.dim_ff = raw.dim_ff || 4 * raw.dim_model;
  config.dim_attn = raw.dim_attn || raw.dim_model;
  const result = config as BakaConfig;
  const fail = (message: string) => {
    throw new ModelError(`${source}: ${message}`);
  };
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
  for (const field of ['layer_kinds', 'layer_dim_ff'] as const) {
    if (result[field].length > 0 && result[field].length !== result.n_layers) {
      fail(
        `${field} has ${result[field].length} entries, expected one per layer (n_layers ${result.n_layers})`,
      );
    }
  }
  return result;
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
 * first (numbers, booleans, lists), the raw text second. The error says what was expected.
 */
export function parseFieldValue(schema: z.ZodType, text: string): unknown {
  const typed = typedValue(text);
  const parsed = schema.safeParse(typed);
  if (parsed.success) return parsed.data;
  if (typed !== text && schema.safeParse(text).success) return text;
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
