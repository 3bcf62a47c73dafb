// Errors caused by the user's data or arguments (missing file, bad format, mismatched shards).
// The CLI prints them as one line without a stack trace because of BakaError's `isUserError`.
import { BakaError } from '@baka/common';

/** A problem with the user's corpus, shards or options; the message names the file or field. */
export class DataError extends BakaError {
  override name = 'DataError';
}
