// The registry of sequence-state kinds (`memory` in the config). Adding a kind: a module
// implementing SequenceStateKind (sequence-state.ts) and a line here; docs/architecture.md
// section 6.2.
import { ModelError } from '../errors';
import type { SavedState, SequenceState, SequenceStateKind } from '../sequence-state';
import { loadMega, megaKind, usesMega } from './mega-state';
import { loadRMT, rmtKind } from './rmt';
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

const withRMT = new Map<SequenceStateName, SequenceStateKind>();
const withMega = new Map<SequenceStateName, SequenceStateKind>();

/**
 * The kind a config selects: wrapped in RMT memory tokens when it has n_rmt_tokens, with the
 * Mega layers' EMA states when it has Mega layers (the config refuses both at once).
 */
export function sequenceStateKind(config: {
  memory: SequenceStateName;
  n_rmt_tokens: number;
  layer_kinds: readonly string[];
}): SequenceStateKind {
  const base = SEQUENCE_STATE_KINDS[config.memory];
  if (usesMega(config)) {
    let kind = withMega.get(config.memory);
    if (kind === undefined) {
      kind = megaKind(`mega+${config.memory}`, base);
      withMega.set(config.memory, kind);
    }
    return kind;
  }
  if (config.n_rmt_tokens === 0) return base;
  let kind = withRMT.get(config.memory);
  if (kind === undefined) {
    kind = rmtKind(`rmt+${config.memory}`, base);
    withRMT.set(config.memory, kind);
  }
  return kind;
}

/** Reads a saved state with whichever kind knows its format; `source` names the file in errors. */
export function loadSequenceState(saved: SavedState, source: string): SequenceState {
  const rmt = loadRMT(saved, source, loadSequenceState);
  if (rmt !== null) return rmt;
  const mega = loadMega(saved, source, loadSequenceState);
  if (mega !== null) return mega;
  for (const kind of Object.values(SEQUENCE_STATE_KINDS)) {
    const state = kind.load(saved, source);
    if (state !== null) return state;
  }
  throw new ModelError(
    `${source}: unknown sequence state format '${saved.metadata.format}' (not written by this version?)`,
  );
}
