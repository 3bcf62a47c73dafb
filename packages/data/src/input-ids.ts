// `--input-ids FILE`: a JSON array of equal-length rows of token ids, used as one article batch
// for reproducible experiments and parity checks. Labels are the ids themselves (upstream's loss
// with labels = input ids), with no padding.
import type { ArticleBatch } from './article-batches';
import { DataError } from './errors';
import { readJsonFile } from './json-file';

/** Parses an already-read JSON value; `where` (the file name) prefixes every error. */
export function parseInputIds(value: unknown, where: string): ArticleBatch {
  if (!Array.isArray(value) || value.length === 0) {
    throw new DataError(`${where}: expected a non-empty JSON array of rows of token ids`);
  }
  let length = -1;
  value.forEach((row: unknown, r) => {
    if (!Array.isArray(row)) throw new DataError(`${where}: row ${r} is not an array of token ids`);
    if (length === -1) length = row.length;
    if (row.length !== length) {
      throw new DataError(
        `${where}: row ${r} has ${row.length} ids, but row 0 has ${length}; all rows must have equal length`,
      );
    }
    row.forEach((id: unknown, c) => {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0x7fffffff) {
        throw new DataError(
          `${where}: row ${r}, position ${c}: expected a non-negative integer token id, got ${JSON.stringify(id)}`,
        );
      }
    });
  });
  if (length < 1) throw new DataError(`${where}: rows are empty`);
  const rows = value.length;
  const ids = Int32Array.from((value as number[][]).flat());
  return {
    ids,
    labels: ids.slice(),
    rows,
    length,
    documents: [],
    lengths: new Array(rows).fill(length),
  };
}

/** Reads `--input-ids FILE`; errors name the file and the bad row. */
export function readInputIds(path: string): ArticleBatch {
  return parseInputIds(readJsonFile(path, 'input ids file'), path);
}
