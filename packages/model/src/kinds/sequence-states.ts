// The registry of sequence-state kinds (`memory` in the config). Adding a kind: a module
// implementing SequenceStateKind (sequence-state.ts) and a line here; docs/architecture.md
// section 6.2.
import { ModelError } from '../errors';
import type { SavedState, SequenceState, SequenceStateKind } from '../sequence-state';
import { loadRecurrentState, recurrentInitialStates, recurrentKind } from './recurrent-state';
import { loadRMT, MAY_BE_UNUSED_PARAMETERS, rmtKind } from './rmt';
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

const wrapped = new Map<string, SequenceStateKind>();

/**
 * The kind a config selects: wrapped in RMT memory tokens when it has n_rmt_tokens, then in
 * block-recurrent states when it has recurrent_layers.
 */
export function sequenceStateKind(config: {
  memory: SequenceStateName;
  n_rmt_tokens: number;
  recurrent_layers: readonly number[];
}): SequenceStateKind {
  const rmt = config.n_rmt_tokens > 0;
  const recurrent = config.recurrent_layers.length > 0;
  let name: string = config.memory;
  let kind: SequenceStateKind = SEQUENCE_STATE_KINDS[config.memory];
  if (!rmt && !recurrent) return kind;
  const key = `${name}:${rmt}:${recurrent}`;
  const known = wrapped.get(key);
  if (known !== undefined) return known;
  if (rmt) {
    name = `rmt+${name}`;
    kind = rmtKind(name, kind);
  }
  if (recurrent) {
    name = `recurrent+${name}`;
    kind = recurrentKind(name, kind);
  }
  wrapped.set(key, kind);
  return kind;
}

/** Reads a saved state with whichever kind knows its format; `source` names the file in errors. */
export function loadSequenceState(saved: SavedState, source: string): SequenceState {
  const recurrent = loadRecurrentState(saved, source, loadSequenceState);
  if (recurrent !== null) return recurrent;
  const rmt = loadRMT(saved, source, loadSequenceState);
  if (rmt !== null) return rmt;
  for (const kind of Object.values(SEQUENCE_STATE_KINDS)) {
    const state = kind.load(saved, source);
    if (state !== null) return state;
  }
  throw new ModelError(
    `${source}: unknown sequence state format '${saved.metadata.format}' (not written by this version?)`,
  );
}

/**
 * Parameters a forward call need not use, so may have no gradient: what starts a sequence (RMT's
 * tokens, recurrent layers' initial states) is unused by a call that continues carried state.
 */
export function mayBeUnusedParameters(config: { recurrent_layers: readonly number[] }): string[] {
  return [...MAY_BE_UNUSED_PARAMETERS, ...recurrentInitialStates(config)];
}
