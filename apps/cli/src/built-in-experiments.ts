// The experiments shipped with the repository, run by name (`baka experiment run seed-xl`).
// `seed-xl` is a file (apps/cli/experiments/seed-xl.json): a variant is one line of it.
// `memory-variants` is built from the model config schema: every value the registry offers for
// the memory-related keys, so a new value there becomes a new variant here. `memory-reach` runs
// the same memory variants (without the thin-layer kinds) on the recall corpus, where an answer
// is predictable only from a chunk d chunks back, and reports answer accuracy per distance d.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type BakaConfig,
  type ConfigKey,
  configChoices,
  configFields,
  LAYER_KINDS,
  MEMORY_MECHANISMS,
  presetConfig,
} from '@baka/model';
import { type Experiment, parseExperiment } from './experiment-file';

const directory = fileURLToPath(new URL('../experiments/', import.meta.url));

/** Config keys whose every value is a memory variant. */
export const MEMORY_KEYS = ['memory', 'memory_source'] as const satisfies readonly ConfigKey[];
/** The per-layer key whose non-standard kinds are memory variants (thin layers reach further). */
export const LAYER_KIND_KEY = 'layer_kinds' satisfies ConfigKey;

/** The shared part of `memory-variants` (everything but the variants). */
const MEMORY_VARIANTS_BASE = {
  name: 'memory-variants',
  description:
    'Every memory variant the model offers (memory, memory_source, thin and Mega layers via layer_kinds, pauses, RMT, Mamba, block-recurrent layers), each against the defaults, at one budget on Tiny Shakespeare.',
  base: {
    preset: 'tiny',
    corpus: 'tinyshakespeare',
    set: [
      'window=256',
      'epochs=100',
      'learningRate=3e-3',
      'schedule=cosine',
      'warmupSteps=20',
      'keep=1',
    ],
  },
  budget: { steps: 300 },
  seeds: [0],
  eval: { every: 100, documents: 8 },
  report: { lastSteps: 20 },
};

function choicesOf(key: ConfigKey): readonly string[] {
  const choices = configChoices(key);
  if (choices === null) throw new Error(`config key ${key} offers no choices`);
  return choices;
}

/**
 * The variants of `memory-variants`: the defaults first, then one variant per other value of
 * each memory key, then per layer kind other than the first (standard) one, every second layer
 * of that kind (layers 1, 3, ...: each still sits above a standard layer) with the settings the
 * kind requires (Mega: same-layer memory), then each of the model's MEMORY_MECHANISMS (pauses,
 * RMT, Mamba, block-recurrent layers).
 */
export function memoryVariants(preset: string): Experiment['variants'] {
  const defaults = new Map(configFields().map((field) => [field.key, field.default]));
  const variants: Experiment['variants'] = [{ name: 'defaults', set: [] }];
  for (const key of MEMORY_KEYS) {
    for (const choice of choicesOf(key)) {
      if (choice === defaults.get(key)) continue;
      variants.push({ name: `${key}-${choice}`, set: [`${key}=${choice}`] });
    }
  }
  const [standard, ...kinds] = choicesOf(LAYER_KIND_KEY);
  const layers = (presetConfig(preset) as Partial<BakaConfig>).n_layers ?? 1;
  for (const kind of kinds) {
    const perLayer = Array.from({ length: layers }, (_, i) => (i % 2 === 1 ? kind : standard));
    const requires = Object.entries(
      (LAYER_KINDS as Record<string, { requires?: Partial<BakaConfig> }>)[kind]?.requires ?? {},
    ).map(([key, value]) => `${key}=${value}`);
    variants.push({
      name: `${LAYER_KIND_KEY}-${kind}`,
      set: [`${LAYER_KIND_KEY}=${perLayer}`, ...requires],
    });
  }
  // mechanisms that need more than one enum value (pauses, RMT, Mamba, recurrence): the model's list
  for (const mechanism of MEMORY_MECHANISMS) {
    const set = Object.entries(mechanism.set).map(([key, value]) => `${key}=${value}`);
    variants.push({ name: mechanism.name, set });
  }
  return variants;
}

/** The shared part of `memory-reach` (everything but the variants). */
const MEMORY_REACH_BASE = {
  name: 'memory-reach',
  description:
    'How far back each memory mechanism reaches: multi-query associative recall with queries 0 to 3 chunks after their pairs (corpus recall, documents of 6 chunks of 20 tokens), answer accuracy per distance.',
  base: {
    preset: 'tiny',
    // 6 chunks and 3 layers: sized for 20 minutes on a quiet 2-core machine (8 chunks and 4
    // layers took ~24 min for six variants); XL still separates from no memory at distance 1
    corpus: 'recall:chunks=6',
    set: [
      'n_ctx=20',
      'dim_model=64',
      'dim_ff=256',
      'n_layers=3',
      'window=512',
      'epochs=100',
      'batchSize=16',
      'learningRate=5e-3',
      'schedule=cosine',
      'warmupSteps=20',
      'saveEvery=0',
      'keep=1',
    ],
  },
  budget: { steps: 300 },
  seeds: [0],
  eval: { every: 0, documents: 100 },
  report: { lastSteps: 20 },
};

/**
 * The variants of `memory-reach`: those of `memory-variants` without the thin-layer kinds (a
 * layer kind changes what a layer computes, not what it can see), so XL as the first, no memory,
 * same-layer XL and every entry of MEMORY_MECHANISMS.
 */
export function memoryReachVariants(preset: string): Experiment['variants'] {
  return memoryVariants(preset)
    .filter((variant) => !variant.name.startsWith(`${LAYER_KIND_KEY}-`))
    .map((variant) => (variant.name === 'defaults' ? { ...variant, name: 'xl' } : variant));
}

const BUILT_INS: Record<string, () => Experiment> = {
  'seed-xl': () =>
    parseExperiment(
      JSON.parse(readFileSync(`${directory}seed-xl.json`, 'utf8')),
      'built-in seed-xl',
    ),
  'memory-variants': () =>
    parseExperiment(
      { ...MEMORY_VARIANTS_BASE, variants: memoryVariants(MEMORY_VARIANTS_BASE.base.preset) },
      'built-in memory-variants',
    ),
  'memory-reach': () =>
    parseExperiment(
      { ...MEMORY_REACH_BASE, variants: memoryReachVariants(MEMORY_REACH_BASE.base.preset) },
      'built-in memory-reach',
    ),
};

export const BUILT_IN_NAMES = Object.keys(BUILT_INS);

/** The built-in experiment of that name, or undefined. */
export function builtInExperiment(name: string): Experiment | undefined {
  return BUILT_INS[name]?.();
}
