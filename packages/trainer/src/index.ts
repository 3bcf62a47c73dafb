export { AdamW, type AdamWOptions, type AdamWState } from './adamw';
export {
  CHECKPOINT_FILES,
  checkpointName,
  checkTrainingCheckpointTarget,
  dropOlderOptimizerStates,
  latestCheckpoint,
  listCheckpoints,
  loadTrainingCheckpoint,
  optimizerTensorName,
  pruneCheckpoints,
  readOptimizerState,
  restoreMemory,
  restoreOptimizer,
  saveTrainingCheckpoint,
  type TrainingCheckpoint,
  serializeOptimizerState,
} from './checkpoint';
export {
  type CorpusDocumentsOptions,
  openCorpusDocuments,
  shardCacheDirectory,
} from './corpus-documents';
export {
  type AnswerAccuracy,
  answerAccuracy,
  describeArchitecture,
  type EvaluationOptions,
  type EvaluationResult,
  evaluate,
  resultRow,
} from './evaluate';
export { MEMORY_FILE, readMemory, serializeMemory } from './memory-state';
export {
  clipByGlobalNorm,
  GradientAccumulator,
  globalNorm,
  ParameterLayout,
  type ParameterSlot,
} from './flat-gradients';
export { parseTrainingBatch, readTrainingBatch } from './input-batch';
export * from './metrics-store';
export { checkSchedule, learningRateAt, type ScheduleName, type ScheduleOptions } from './schedule';
export {
  type LoopContext,
  type LoopHooks,
  type LoopOptions,
  type SkipReport,
  type StepReport,
  type StopReason,
  trainLoop,
} from './train-loop';
export {
  clipAndStep,
  type StepResult,
  Trainable,
  type WindowBatch,
  type WindowGradients,
  windowGradients,
} from './train-step';
export {
  CheckpointError,
  parseTrainerState,
  TRAINER_STATE_FORMAT,
  TrainerError,
  type TrainerState,
  type TrainingPosition,
} from './trainer-state';
export {
  isTrainingOptionKey,
  makeTrainingOptions,
  parseTrainingOptionValue,
  parseTrainingSettings,
  RESUMABLE_OPTIONS,
  TRAINING_OPTION_KEYS,
  type TrainingOptionKey,
  type TrainingOptions,
  type TrainingOptionsInput,
  trainingOptionFields,
  trainingOptionsSchema,
  trainingOptionsShape,
} from './training-options';
export {
  NonFiniteTrainingError,
  type SessionHooks,
  type SessionSetup,
  type SessionSummary,
  TrainingSession,
} from './training-session';
export { isProcessAlive, LOCK_FILE, RunLock } from './run-lock';
export {
  databaseError,
  describeSystemError,
  isSystemError,
  StorageError,
} from './storage-errors';
export {
  checkTrainingData,
  plannedUnits,
  startPosition,
  type TrainingMode,
  type TrainingUnit,
  trainingUnits,
  type UnitOptions,
} from './training-units';
