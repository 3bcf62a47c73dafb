import { BakaError } from '@baka/common';

/** A misuse of the cache API or bad input; `isUserError` lets a CLI print it without a stack. */
export class CacheError extends BakaError {
  override name = 'CacheError';
}
