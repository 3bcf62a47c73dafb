/** A misuse of the cache API or bad input; `isUserError` lets a CLI print it without a stack. */
export class CacheError extends Error {
  readonly isUserError = true;
  constructor(message: string) {
    super(message);
    this.name = 'CacheError';
  }
}
