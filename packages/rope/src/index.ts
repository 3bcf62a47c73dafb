export {
  inverseFrequencies,
  RotaryEmbedding,
  RotaryEmbeddingError,
  type RotaryEmbeddingOptions,
  type RotaryLayout,
  type RotaryTables,
  type RotateOptions,
  type RotateQueriesAndKeysOptions,
  type XposRole,
} from './rotary-embedding';
