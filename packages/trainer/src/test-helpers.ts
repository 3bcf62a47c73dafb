// Shared by the trainer's tests: a tiny model and a small in-memory corpus.
import { tokenDocumentsFromArrays, type TokenDocuments } from '@baka/data';
import { BakaCausalLM, makeConfig } from '@baka/model';
import {
  makeTrainingOptions,
  type TrainingOptions,
  type TrainingOptionsInput,
} from './training-options';

export const TINY_CONFIG = makeConfig({
  dim_model: 16,
  dim_ff: 32,
  n_layers: 2,
  n_heads: 2,
  n_vocab: 40,
  n_ctx: 8,
});

export function tinyModel(seed = 0, overrides: Record<string, unknown> = {}): BakaCausalLM {
  return BakaCausalLM.create(makeConfig({ ...TINY_CONFIG, ...overrides }), { seed });
}

/** 16 documents of 6..40 tokens (ids 1..39), the last 4 are the valid split. */
export function tinyDocuments(): TokenDocuments {
  const docs = Array.from({ length: 16 }, (_, d) =>
    Array.from(
      { length: 6 + ((d * 11) % 35) },
      (_, i) => 1 + ((d * 13 + i * 7 + ((i * i) % 5)) % 39),
    ),
  );
  return tokenDocumentsFromArrays(docs, { validFraction: 0.25 });
}

export function tinyOptions(overrides: Partial<TrainingOptionsInput> = {}): TrainingOptions {
  return makeTrainingOptions({
    runName: 'test',
    window: 16,
    batchSize: 3,
    epochs: 1,
    seed: 5,
    ...overrides,
  });
}
