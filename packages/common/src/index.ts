// @baka/common: what every BakaLLM package shares. Node-only path helpers are in
// `@baka/common/user-paths`.
export { BakaError, type BakaErrorOptions, isUserError, userErrorExitCode } from './errors';
export { mulberry32 } from './random';

/** The label of a position that is not scored (padding): torch cross_entropy's ignore_index. */
export const IGNORE_INDEX = -100;
