export {
  attention,
  fromHeads,
  toHeads,
  type AttentionContext,
  type AttentionResult,
  type AttentionState,
} from './attention';
export { AttentionMasks } from './attention-mask';
export {
  bakaLayer,
  bakaNet,
  type FusedLayerWeights,
  type LayerOutput,
  type LayerStateIn,
  type LayerStateOut,
  layerStack,
  type NetResult,
  type PreparedLayer,
  type StackOutput,
} from './baka-net';
export {
  LAYER_KIND_NAMES,
  LAYER_KINDS,
  type LayerForward,
  type LayerKind as LayerKindDefinition,
  type LayerKindName,
  type LayerShape,
  type LayerTensor,
  THIN_ATTENTION_INIT_SCALE,
} from './kinds/layers';
export {
  NORM_KINDS,
  NORM_NAMES,
  type NormKind,
  normKind,
  RMS_NORM_EPSILON,
  rmsNorm,
} from './kinds/norms';
export {
  headNorm,
  l2Scale,
  QK_NORM_KINDS,
  QK_NORM_NAMES,
  QK_NORM_SCOPES,
  QK_NORM_WEIGHTS,
  type QkNormalisation,
  type QkNormKind,
  type QkNormName,
  type QkNormShape,
  unitLength,
} from './kinds/qk-norms';
export {
  loadSequenceState,
  mayBeUnusedParameters,
  SEQUENCE_STATE_KINDS,
  SEQUENCE_STATE_NAMES,
  type SequenceStateName,
  sequenceStateKind,
} from './kinds/sequence-states';
export { isRecurrent, RECURRENT_CONFIG_SHAPE } from './kinds/block-recurrent';
export { MEMORY_MECHANISMS, type MemoryMechanism } from './kinds/mechanisms';
export {
  initialStateName,
  RECURRENT_STATE_FORMAT,
  BlockRecurrentState,
  recurrentKind,
} from './kinds/recurrent-state';
export { MAY_BE_UNUSED_PARAMETERS, RMT_FORMAT, RMTState } from './kinds/rmt';
export { memoryState, XL_MEMORY_FORMAT, XLState } from './kinds/xl';
export type {
  ChunkPass,
  IncrementalState,
  SavedState,
  SequenceState,
  SequenceStateKind,
} from './sequence-state';
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
  configChoices,
  configFields,
  DEFAULT_PRESET,
  describeFields,
  dimHead,
  type FieldInfo,
  isConfigKey,
  legacyCarryMemory,
  isUniform,
  type LayerKind,
  layerDimFf,
  layerKind,
  makeConfig,
  type MemoryMode,
  type MemorySource,
  type NormName,
  parseConfigSettings,
  parseFieldValue,
  type PositionPolicy,
  PRESETS,
  type PresetName,
  presetConfig,
  type RotaryLayout,
  type RotaryPrecision,
  SIZE_KEYS,
  settingText,
  splitSetting,
  variantFields,
} from './config';
export { countParameters } from './count-parameters';
export {
  checkFitsInMemory,
  estimatedTrainingBytes,
  formatBytes,
  parameterCount,
  TRAINING_COPIES,
} from './memory-estimate';
export { ModelError } from './errors';
export { evaluateLoss, type EvaluateLossOptions } from './evaluate-loss';
export {
  generate,
  generateSamples,
  type GenerateOptions,
  type GenerateSamplesOptions,
  IncrementalDecoder,
  KEY_BUCKET,
} from './generation';
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
  type FloatDtype,
  parseSafetensors,
  readSafetensors,
  readSafetensorsMetadata,
  roundToDtype,
  SafetensorsError,
  type SafetensorsDtype,
  type SafetensorsTensor,
  serializeSafetensors,
  type TensorData,
  unitInLastPlace,
  writeSafetensors,
} from './safetensors';
export { argmax, sampleToken, type SamplingOptions } from './sampling';
