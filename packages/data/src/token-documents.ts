// The read interface every batcher consumes: tokenized documents laid end to end in one global
// token stream, with named splits as document ranges. Shards on disk implement it
// (`openShards`); `tokenDocumentsFromArrays` builds one in memory from id arrays.
import { DataError } from './errors';

export type SplitName = 'train' | 'valid' | 'test';

/** A half-open range of document indices [start, end). */
export interface DocumentRange {
  start: number;
  end: number;
}

export interface TokenDocuments {
  readonly numDocuments: number;
  readonly numTokens: number;
  /** Document index ranges of each split present (train always; valid/test when known). */
  readonly splits: Partial<Record<SplitName, DocumentRange>>;
  /** Number of tokens in document i. */
  documentLength(index: number): number;
  /** Global token offset of the first token of document i. */
  documentStart(index: number): number;
  /** The token ids of document i. */
  document(index: number): Uint32Array;
  /** Token ids [start, end) of the global stream (documents concatenated in index order). */
  tokens(start: number, end: number): Uint32Array;
  /**
   * The labels of document i when they are not its ids: -100 where no loss is taken (the recall
   * corpus keeps only its answers). Absent: every token is a label.
   */
  labels?(index: number): Int32Array;
}

/** The document range of `split`; an error names the splits that exist. */
export function splitRange(documents: TokenDocuments, split: SplitName): DocumentRange {
  const range = documents.splits[split];
  if (!range) {
    const known = Object.keys(documents.splits).join(', ');
    throw new DataError(`these documents have no '${split}' split (available: ${known})`);
  }
  return range;
}

/**
 * Splits `count` documents into train and valid by putting the last `validFraction` of them
 * (rounded up, at least one when validFraction > 0 and count >= 2) in valid.
 */
export function trailingSplits(
  count: number,
  validFraction: number,
): Partial<Record<SplitName, DocumentRange>> {
  if (!(validFraction >= 0 && validFraction < 1)) {
    throw new DataError(`validFraction must be in [0, 1), got ${validFraction}`);
  }
  let valid = Math.ceil(count * validFraction);
  if (validFraction > 0 && count >= 2) valid = Math.max(1, valid);
  if (valid >= count) valid = 0;
  if (valid === 0) return { train: { start: 0, end: count } };
  return { train: { start: 0, end: count - valid }, valid: { start: count - valid, end: count } };
}

/** Tokenized documents held in memory (tests, small experiments, `--input-ids`-style data). */
export function tokenDocumentsFromArrays(
  documents: ArrayLike<number>[],
  options: { splits?: Partial<Record<SplitName, DocumentRange>>; validFraction?: number } = {},
): TokenDocuments {
  const offsets = new Float64Array(documents.length + 1);
  for (let i = 0; i < documents.length; i++) {
    offsets[i + 1] = (offsets[i] as number) + (documents[i] as ArrayLike<number>).length;
  }
  const numTokens = offsets[documents.length] as number;
  const stream = new Uint32Array(numTokens);
  documents.forEach((doc, i) => {
    stream.set(Array.from(doc), offsets[i] as number);
  });
  const splits = options.splits ?? trailingSplits(documents.length, options.validFraction ?? 0);
  return {
    ...offsetDocuments(offsets, (start, end) => stream.slice(start, end)),
    splits,
  };
}

/**
 * The counts and accessors of a `TokenDocuments` whose document i spans global tokens
 * [offsets[i], offsets[i + 1]): every index and range is checked before `read` (which may assume
 * a valid range) is asked for the ids. `where` (e.g. ` in <dir>`) ends each range error.
 */
export function offsetDocuments(
  offsets: Float64Array,
  read: (start: number, end: number) => Uint32Array,
  where = '',
): Omit<TokenDocuments, 'splits'> {
  const numDocuments = offsets.length - 1;
  const numTokens = offsets[numDocuments] as number;
  const check = (index: number) => {
    if (!Number.isInteger(index) || index < 0 || index >= numDocuments) {
      throw new DataError(`document index ${index} is out of range [0, ${numDocuments})${where}`);
    }
  };
  return {
    numDocuments,
    numTokens,
    documentLength(index) {
      check(index);
      return (offsets[index + 1] as number) - (offsets[index] as number);
    },
    documentStart(index) {
      check(index);
      return offsets[index] as number;
    },
    document(index) {
      check(index);
      return read(offsets[index] as number, offsets[index + 1] as number);
    },
    tokens(start, end) {
      if (
        !(
          Number.isInteger(start) &&
          Number.isInteger(end) &&
          0 <= start &&
          start <= end &&
          end <= numTokens
        )
      ) {
        throw new DataError(`token range [${start}, ${end}) is outside [0, ${numTokens})${where}`);
      }
      return read(start, end);
    },
  };
}
