import { BakaError } from '@baka/common';

/** A problem with user-supplied input (config, checkpoint, file); the CLI prints it without a stack. */
export class ModelError extends BakaError {
  override name = 'ModelError';
}
