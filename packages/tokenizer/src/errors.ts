import { BakaError } from '@baka/common';

/**
 * An error caused by the user's input (a tokenizer.json we cannot load, bad ids): the CLI prints
 * its message without a stack trace.
 */
export class TokenizerError extends BakaError {
  override name = 'TokenizerError';
}

/** Thrown at load time for a tokenizer.json component this package does not implement. */
export class UnsupportedComponentError extends TokenizerError {
  override name = 'UnsupportedComponentError';
  constructor(component: string, detail: string) {
    super(`unsupported tokenizer.json component ${component}: ${detail}`);
  }
}
