// Reading a JSON file the user named, with errors that say which file and what went wrong.
import { readFileSync } from 'node:fs';
import { DataError } from './errors';

/**
 * The parsed contents of the JSON file at `path`. `description` names the file in the errors
 * (e.g. "input ids file", "--input-ids file"): `<description> not found: <path>`,
 * `cannot read <description> <path>: <reason>`, `<path>: not valid JSON (<reason>)`.
 */
export function readJsonFile(path: string, description: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DataError(
      code === 'ENOENT'
        ? `${description} not found: ${path}`
        : `cannot read ${description} ${path}: ${(error as Error).message}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DataError(`${path}: not valid JSON (${(error as Error).message})`);
  }
}
