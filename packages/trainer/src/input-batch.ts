// `--input-ids FILE`: one batch to train on. Either a JSON array of equal-length rows of token ids
// (labels = the ids, as upstream's loss with labels = input ids), or an object
// `{ "input_ids": rows, "labels"?: rows, "attention_mask"?: rows }` as the PyTorch reference
// writes it, where labels of -100 / a mask of 0 mark padding at the end of a row.
import { type ArticleBatch, IGNORE_INDEX, parseInputIds, readJsonFile } from '@baka/data';
import { TrainerError } from './trainer-state';

function rowsOf(
  value: unknown,
  field: string,
  where: string,
  rows: number,
  length: number,
): number[][] {
  if (!Array.isArray(value) || value.length !== rows) {
    throw new TrainerError(`${where}: '${field}' must be an array of ${rows} rows like input_ids`);
  }
  value.forEach((row: unknown, r) => {
    if (!Array.isArray(row) || row.length !== length) {
      throw new TrainerError(
        `${where}: '${field}' row ${r} must have ${length} integers like input_ids`,
      );
    }
    row.forEach((x: unknown, c) => {
      if (typeof x !== 'number' || !Number.isInteger(x)) {
        throw new TrainerError(
          `${where}: '${field}' row ${r}, position ${c}: expected an integer, got ${JSON.stringify(x)}`,
        );
      }
    });
  });
  return value as number[][];
}

/** Parses an already-read `--input-ids` JSON value; `where` (the file name) prefixes errors. */
export function parseTrainingBatch(value: unknown, where: string): ArticleBatch {
  if (Array.isArray(value)) return parseInputIds(value, where);
  if (typeof value !== 'object' || value === null || !('input_ids' in value)) {
    throw new TrainerError(
      `${where}: expected a JSON array of rows of token ids, or an object with 'input_ids'`,
    );
  }
  const object = value as { input_ids: unknown; labels?: unknown; attention_mask?: unknown };
  const batch = parseInputIds(object.input_ids, `${where}: input_ids`);
  const { rows, length } = batch;
  if (object.labels !== undefined) {
    batch.labels = Int32Array.from(rowsOf(object.labels, 'labels', where, rows, length).flat());
  }
  if (object.attention_mask !== undefined) {
    const mask = rowsOf(object.attention_mask, 'attention_mask', where, rows, length).flat();
    mask.forEach((m, i) => {
      if (m === 0) batch.labels[i] = IGNORE_INDEX;
    });
  }
  // A row's real length ends after its last labelled position (padding sits at the end).
  batch.lengths = [];
  for (let r = 0; r < rows; r++) {
    let n = length;
    while (n > 0 && batch.labels[r * length + n - 1] === IGNORE_INDEX) n--;
    batch.lengths.push(n);
  }
  return batch;
}

/** Reads `--input-ids FILE`; errors name the flag and the file. */
export function readTrainingBatch(path: string): ArticleBatch {
  return parseTrainingBatch(readJsonFile(path, '--input-ids file'), path);
}
