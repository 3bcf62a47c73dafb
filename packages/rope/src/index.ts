export {
  inverseFrequencies,
  RotaryEmbedding,
  RotaryEmbeddingError,
  roundToBfloat16,
  type RotaryEmbeddingOptions,
  type RotaryLayout,
  type RotaryPrecision,
  type RotaryTables,
  type RotateOptions,
  type RotateQueriesAndKeysOptions,
  type XposRole,
} from './rotary-embedding';
