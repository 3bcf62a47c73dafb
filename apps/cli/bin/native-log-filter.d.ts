// Types of native-log-filter.js (plain JavaScript: bin/baka.js runs it without tsx).
export const ABSL_PRE_INIT_WARNING: string;
export const ONEDNN_NOTICE: string;
export function isNativeStartupLine(line: string): boolean;
export function createNativeLogFilter(): {
  /** What to pass on now of this latin1 chunk. */
  write(chunk: string): string;
  /** What is left when the stream ends. */
  end(): string;
};
