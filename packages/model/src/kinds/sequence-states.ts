// The registry of sequence-state kinds (`memory` in the config). Adding a kind: a module
// implementing SequenceStateKind (sequence-state.ts) and a line here; docs/architecture.md
// section 4.
import { ModelError } from '../errors';
import type { SavedState, SequenceState, SequenceStateKind } from '../sequence-state';
import { noMemoryKind, xlKind } from './xl';

export const SEQUENCE_STATE_KINDS = {
  xl: xlKind,
  none: noMemoryKind,
} as const satisfies Record<string, SequenceStateKind>;

export type SequenceStateName = keyof typeof SEQUENCE_STATE_KINDS;

export const SEQUENCE_STATE_NAMES = Object.keys(SEQUENCE_STATE_KINDS) as [
  SequenceStateName,
  ...SequenceStateName[],
];

/** The kind a config selects. */
export function sequenceStateKind(config: { memory: SequenceStateName }): SequenceStateKind {
  return SEQUENCE_STATE_KINDS[config.memory];
}

/** Reads a saved state with whichever kind knows its format; `source` names the file in errors. */
export function loadSequenceState(saved: SavedState, source: string): SequenceState {
  for (const kind of Object.values(SEQUENCE_STATE_KINDS)) {
    const state = kind.load(saved, source);
    if (state !== null) return state;
  }
  throw new ModelError(
    `${source}: unknown sequence state format '${saved.metadata.format}' (not written by this version?)`,
  );
}
