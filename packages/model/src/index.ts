export {
  attention,
  fromHeads,
  toHeads,
  type AttentionContext,
  type AttentionResult,
} from './attention';
export { AttentionMasks } from './attention-mask';
export {
  bakaLayer,
  bakaNet,
  fuseLayer,
  type FusedLayerWeights,
  type LayerOutput,
  type LayerWeights,
  type NetResult,
} from './baka-net';
export {
  BakaCausalLM,
  type ForwardOptions,
  type ForwardResult,
  type LossResult,
} from './causal-lm';
export {
  CONFIG_FILE,
  checkCheckpointTarget,
  configJson,
  loadCheckpoint,
  MODEL_CHECKPOINT_FILES,
  modelTensors,
  readCheckpointConfig,
  readCheckpointTensors,
  saveCheckpoint,
  TOKENIZER_FILE,
  WEIGHTS_FILE,
} from './checkpoint';
export {
  type BakaConfig,
  CONFIG_KEYS,
  type ConfigKey,
  configFields,
  DEFAULT_PRESET,
  describeFields,
  dimHead,
  type FieldInfo,
  isConfigKey,
  legacyCarryMemory,
  makeConfig,
  type MemoryMode,
  type MemorySource,
  parseConfigSettings,
  parseFieldValue,
  type PositionPolicy,
  PRESETS,
  type PresetName,
  presetConfig,
  type RotaryLayout,
  splitSetting,
} from './config';
export { countParameters } from './count-parameters';
export { ModelError } from './errors';
export { evaluateLoss, type EvaluateLossOptions } from './evaluate-loss';
export { generate, type GenerateOptions, IncrementalDecoder } from './generation';
export { blockRows, projectedCrossEntropy } from './head-loss';
export { LAYER_NORM_EPSILON, layerNorm } from './layer-norm';
export {
  causalLmLoss,
  causalLmLossWithCount,
  crossEntropy,
  IGNORE_INDEX,
  shiftLabels,
} from './loss';
export { elephant, gatedMlp } from './mlp';
export { type ParameterSpec, parameterSpecs } from './parameters';
export {
  parseSafetensors,
  readSafetensors,
  readSafetensorsMetadata,
  SafetensorsError,
  type SafetensorsDtype,
  type SafetensorsTensor,
  serializeSafetensors,
  type TensorData,
  writeSafetensors,
} from './safetensors';
export { argmax, sampleToken, type SamplingOptions } from './sampling';
