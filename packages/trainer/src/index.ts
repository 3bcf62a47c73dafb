export { AdamW, type AdamWOptions, type AdamWState } from './adamw';
export {
  clipByGlobalNorm,
  GradientAccumulator,
  globalNorm,
  ParameterLayout,
  type ParameterSlot,
} from './flat-gradients';
export * from './metrics-store';
export { checkSchedule, learningRateAt, type ScheduleName, type ScheduleOptions } from './schedule';
