// The registry of sequence-state kinds (`memory` in the config). Adding a kind: a module
// implementing SequenceStateKind (sequence-state.ts) and a line here; docs/architecture.md
// section 6.2.
import type { BakaConfig } from '../config';
import { ModelError } from '../errors';
import type { SavedState, SequenceState, SequenceStateKind } from '../sequence-state';
import { carriesLayerStates, layerStatesKind, loadLayerStates } from './layer-states';
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

/** `make(name, inner)` made once per name. */
function wrap(
  name: string,
  inner: SequenceStateKind,
  make: (name: string, inner: SequenceStateKind) => SequenceStateKind,
): SequenceStateKind {
  let kind = wrapped.get(name);
  if (kind === undefined) {
    kind = make(name, inner);
    wrapped.set(name, kind);
  }
  return kind;
}

/**
 * The kind a config selects: `memory`'s, wrapped in RMT memory tokens when it has n_rmt_tokens,
 * that in carried layer states when layers carry theirs (mamba_carry_state), and that in
 * block-recurrent states when it has recurrent_layers.
 */
export function sequenceStateKind(config: BakaConfig): SequenceStateKind {
  let name: string = config.memory;
  let kind: SequenceStateKind = SEQUENCE_STATE_KINDS[config.memory];
  if (config.n_rmt_tokens > 0) {
    name = `rmt+${name}`;
    kind = wrap(name, kind, rmtKind);
  }
  if (carriesLayerStates(config)) {
    name = `layer-states+${name}`;
    kind = wrap(name, kind, layerStatesKind);
  }
  if (config.recurrent_layers.length > 0) {
    name = `recurrent+${name}`;
    kind = wrap(name, kind, recurrentKind);
  }
  return kind;
}

/** Reads a saved state with whichever kind knows its format; `source` names the file in errors. */
export function loadSequenceState(saved: SavedState, source: string): SequenceState {
  const wrapper =
    loadRecurrentState(saved, source, loadSequenceState) ??
    loadLayerStates(saved, source, loadSequenceState) ??
    loadRMT(saved, source, loadSequenceState);
  if (wrapper !== null) return wrapper;
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
