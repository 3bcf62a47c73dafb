// Where an iteration over batches stands. JSON-serialisable so a checkpoint's trainer_state.json
// can store it, and exact: resuming from a saved cursor yields exactly the remaining batches.
import { DataError } from './errors';

export interface DataCursor {
  /** Epoch number (0-based). */
  epoch: number;
  /** Batches of this epoch already consumed (the next batch to yield). */
  position: number;
  /** The seed the order was drawn from; resuming with another seed is an error. */
  seed: number;
}

/** Validates a cursor read back from JSON; `where` names its origin for the error. */
export function parseCursor(value: unknown, where = 'cursor'): DataCursor {
  const object = value as Partial<Record<keyof DataCursor, unknown>> | null;
  if (typeof object !== 'object' || object === null) {
    throw new DataError(`${where}: expected an object {epoch, position, seed}`);
  }
  for (const key of ['epoch', 'position', 'seed'] as const) {
    const field = object[key];
    if (typeof field !== 'number' || !Number.isInteger(field) || (key !== 'seed' && field < 0)) {
      throw new DataError(
        `${where}.${key}: expected an integer${key === 'seed' ? '' : ' >= 0'}, got ${JSON.stringify(field)}`,
      );
    }
  }
  return {
    epoch: object.epoch as number,
    position: object.position as number,
    seed: object.seed as number,
  };
}

/** The starting cursor for `seed`, or `cursor` after checking it was drawn from the same seed. */
export function startCursor(seed: number, cursor: DataCursor | undefined): DataCursor {
  if (!Number.isInteger(seed)) throw new DataError(`seed must be an integer, got ${seed}`);
  if (!cursor) return { epoch: 0, position: 0, seed };
  const checked = parseCursor(cursor);
  if (checked.seed !== seed) {
    throw new DataError(
      `the cursor was saved with seed ${checked.seed}, but seed ${seed} was given; resume with the same seed`,
    );
  }
  return checked;
}
