export { Tokenizer } from './tokenizer.js';
export type { DecodeOptions, EncodeOptions, SpecialTokenIds } from './tokenizer.js';
export { defaultTokenizerPath } from './default-path.js';
export { TokenizerError, UnsupportedComponentError } from './errors.js';
export { byteLevelAlphabet } from './byte-level.js';
export { closeParallelEncoders, encodeBatchParallel } from './parallel-encode.js';
export type { ParallelEncodeOptions } from './parallel-encode.js';
export { BpeTrainer, trainBpe } from './bpe-trainer.js';
export type { BpeTrainingOptions, TrainingProgress } from './bpe-trainer.js';
