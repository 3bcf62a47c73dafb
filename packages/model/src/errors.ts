/** A problem with user-supplied input (config, checkpoint, file); the CLI prints it without a stack. */
export class ModelError extends Error {
  readonly isUserError = true;
  constructor(message: string) {
    super(message);
    this.name = 'ModelError';
  }
}
