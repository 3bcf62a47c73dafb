// The experiment file (JSON): a name, a base (preset, corpus, tokenizer and `--set`-style
// settings), variants (a name plus `--set`-style settings over the base), one budget for every
// run, the seeds, and how runs are evaluated. `experimentShape` is the only place a field, its
// default and its description are written; the evaluation fields are the training options'
// own (`evalEvery`, `evalDocuments`, `evalSplit`). Every variant x seed becomes an ordinary
// training run named `<experiment>.<variant>.s<seed>`.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DEFAULT_PRESET } from '@baka/model';
import { type TrainingOptionKey, trainingOptionsShape } from '@baka/trainer';
import { z } from 'zod';
import { UserError } from './cli-kit';

/** Experiment and variant names: they become part of run names and directories. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const name = (what: string) =>
  z.string().regex(NAME, 'letters, digits, "_" and "-" only').describe(what);

const settings = z
  .array(z.string())
  .default([])
  .describe(
    "`--set`-style settings, 'key=value': model config keys (memory=none) and training options (learningRate=3e-3).",
  );

export const experimentShape = {
  name: name('Experiment name; its runs are <name>.<variant>.s<seed> in the runs directory.'),
  description: z.string().default('').describe('What the experiment compares (for the reader).'),
  base: z
    .strictObject({
      preset: z
        .string()
        .default(DEFAULT_PRESET)
        .describe('Model preset every variant starts from.'),
      corpus: trainingOptionsShape.corpus,
      tokenizer: z
        .string()
        .nullable()
        .default(null)
        .describe('tokenizer.json, relative to the experiment file (null: the bundled one).'),
      set: settings,
    })
    .describe('What every run shares.'),
  variants: z
    .array(
      z.strictObject({
        name: name('Variant name (unique in the experiment).'),
        set: settings,
      }),
    )
    .min(1)
    .describe('The variants, in report order; the first is the one the others are compared to.'),
  budget: z
    .strictObject({
      steps: z.number().int().min(1).optional().describe('Optimizer steps per run.'),
      tokens: z.number().int().min(1).optional().describe('Training tokens per run.'),
      minutes: z.number().positive().optional().describe('Minutes of training per run.'),
    })
    .refine((budget) => Object.keys(budget).length === 1, {
      message: 'give exactly one of steps, tokens, minutes',
    })
    .describe('One budget for every run.'),
  seeds: z
    .array(z.number().int())
    .min(1)
    .default([0])
    .describe('Each variant runs once per seed (weights and data order).'),
  eval: z
    .strictObject({
      every: trainingOptionsShape.evalEvery,
      documents: trainingOptionsShape.evalDocuments,
      split: trainingOptionsShape.evalSplit,
    })
    .prefault({})
    .describe(
      'Evaluation: every N steps (0: at the end only), articles per evaluation, the split.',
    ),
  report: z
    .strictObject({
      lastSteps: z
        .number()
        .int()
        .min(1)
        .default(20)
        .describe('Training steps the final train loss is averaged over.'),
    })
    .prefault({})
    .describe('How the report summarises a run.'),
};

export const experimentSchema = z.strictObject(experimentShape);
export type Experiment = z.infer<typeof experimentSchema>;

/**
 * Training options the experiment itself sets: a variant or the base cannot. The value says
 * which field sets it.
 */
export const EXPERIMENT_OWNED: Partial<Record<TrainingOptionKey, string>> = {
  runName: 'the experiment (<name>.<variant>.s<seed>)',
  seed: 'seeds',
  maxSteps: 'budget',
  maxTokens: 'budget',
  maxMinutes: 'budget',
  evalEvery: 'eval.every',
  evalDocuments: 'eval.documents',
  evalSplit: 'eval.split',
  evalAtEnd: 'the experiment (every run is evaluated at its end)',
  corpus: 'base.corpus',
  tokenizer: 'base.tokenizer',
  preset: 'base.preset',
};

/** A zod path as the file spells it: `variants[1].set[0]`. */
function fieldPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, i) =>
      typeof part === 'number' ? `[${part}]` : `${i > 0 ? '.' : ''}${String(part)}`,
    )
    .join('');
}

/** Validates a parsed experiment file; `source` names it in the one-line error. */
export function parseExperiment(input: unknown, source: string): Experiment {
  const parsed = experimentSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const keys = (issue as { keys?: string[] }).keys;
    const field = fieldPath([...issue.path, ...(keys ? [keys[0]!] : [])]);
    const message = keys ? 'unknown field' : issue.message;
    throw new UserError(`${source}: ${field || '(file)'}: ${message}`);
  }
  const experiment = parsed.data;
  const seen = new Set<string>();
  experiment.variants.forEach((variant, i) => {
    if (seen.has(variant.name)) {
      throw new UserError(`${source}: variants[${i}].name: '${variant.name}' is used twice`);
    }
    seen.add(variant.name);
  });
  if (new Set(experiment.seeds).size !== experiment.seeds.length) {
    throw new UserError(`${source}: seeds: a seed is listed twice`);
  }
  return experiment;
}

/** Reads and validates an experiment file; paths in it are relative to its directory. */
export function readExperimentFile(path: string): { experiment: Experiment; directory: string } {
  if (!existsSync(path)) throw new UserError(`experiment file not found: ${path}`);
  let input: unknown;
  try {
    input = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UserError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  return { experiment: parseExperiment(input, path), directory: dirname(resolve(path)) };
}
