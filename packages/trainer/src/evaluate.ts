// Evaluation as upstream's bench (docs/architecture.md §3): one article at a time (batch of 1). A
// model with XL memory sees the whole article in one call (chunked into n_ctx internally, memory
// flowing); a model without memory is scored in windows of n_ctx with stride n_ctx/2, the
// overlapped first half of every window after the first masked out. Reported: the mean of the
// per-window losses (for the XL model, one window = one article), exp of it, the NaN count, and a
// token-weighted mean beside it.
//
// Shapes: one article of L tokens -> ids [1, L].
import { IGNORE_INDEX, type SplitName, splitRange, type TokenDocuments, windows } from '@baka/data';
import { type BakaCausalLM, countParameters, evaluateLoss, sequenceStateKind } from '@baka/model';
import type { ResultRow } from './metrics-store';

export interface EvaluationOptions {
  split?: SplitName;
  /** Score only the first N articles of the split (default: all). */
  maxDocuments?: number;
  onProgress?: (progress: { documents: number; totalDocuments: number; tokens: number }) => void;
}

export interface EvaluationResult {
  split: SplitName;
  /** Articles scored. */
  documents: number;
  /** Loss terms averaged (articles for the XL model, windows otherwise). */
  windows: number;
  /** Mean of the per-window losses (upstream's number); NaN windows excluded. */
  loss: number;
  /** exp(loss). */
  ppl: number;
  /** Token-weighted mean loss over every predicted token. */
  tokenLoss: number;
  /** Windows whose loss was NaN/Inf. */
  nans: number;
  /** Tokens predicted. */
  tokens: number;
  seconds: number;
}

/** Number of predicted positions of a [1, L] window: labels 1..L-1 that are not -100. */
function targets(labels: Int32Array): number {
  let n = 0;
  for (let i = 1; i < labels.length; i++) if (labels[i] !== IGNORE_INDEX) n++;
  return n;
}

/** The [1, L] windows one article is scored in (one window for a model with XL memory). */
function articleWindows(
  model: BakaCausalLM,
  ids: Uint32Array,
): { ids: Int32Array; labels: Int32Array }[] {
  const whole = Int32Array.from(ids);
  if (sequenceStateKind(model.config).evaluation === 'whole-article') {
    return [{ ids: whole, labels: whole.slice() }];
  }
  const nCtx = model.config.n_ctx;
  const batch = {
    ids: whole,
    labels: whole.slice(),
    rows: 1,
    length: whole.length,
    documents: [],
    lengths: [whole.length],
  };
  return [
    ...windows(batch, {
      window: nCtx,
      stride: Math.max(1, Math.floor(nCtx / 2)),
      maskOverlap: true,
    }),
  ].map((window) => ({ ids: window.ids, labels: window.labels }));
}

export function evaluate(
  model: BakaCausalLM,
  documents: TokenDocuments,
  options: EvaluationOptions = {},
): EvaluationResult {
  const split = options.split ?? 'valid';
  const range = splitRange(documents, split);
  const total = Math.min(range.end - range.start, options.maxDocuments ?? Number.POSITIVE_INFINITY);
  const started = performance.now();
  let sum = 0;
  let counted = 0;
  let weighted = 0;
  let tokens = 0;
  let nans = 0;
  let scored = 0;
  for (let index = range.start; index < range.start + total; index++) {
    for (const window of articleWindows(model, documents.document(index))) {
      const n = targets(window.labels);
      if (n === 0) continue;
      // Long articles run in segments with the memory handed on: the same chunking as one call,
      // without materialising [L, V] logits at once.
      const value = evaluateLoss(model, {
        ids: window.ids,
        labels: window.labels,
        rows: 1,
        length: window.ids.length,
      }).loss;
      if (!Number.isFinite(value)) {
        nans += 1;
        continue;
      }
      sum += value;
      counted += 1;
      weighted += value * n;
      tokens += n;
    }
    scored += 1;
    options.onProgress?.({ documents: scored, totalDocuments: total, tokens });
  }
  const loss = counted > 0 ? sum / counted : Number.NaN;
  return {
    split,
    documents: scored,
    windows: counted,
    loss,
    ppl: Math.exp(loss),
    tokenLoss: tokens > 0 ? weighted / tokens : Number.NaN,
    nans,
    tokens,
    seconds: (performance.now() - started) / 1000,
  };
}

/** A results-table row (upstream's result fields) for an evaluation of `model` on `benchmark`. */
export function resultRow(
  model: BakaCausalLM,
  result: EvaluationResult,
  options: {
    benchmark: string;
    configId?: string | null;
    note?: string | null;
    runId?: number | null;
  },
): ResultRow {
  const { config } = model;
  const parameters = countParameters(model);
  const architecture =
    `${config.model_type} dim ${config.dim_model} ff ${config.dim_ff} attn ${config.dim_attn} layers ${config.n_layers} ` +
    `heads ${config.n_heads} vocab ${config.n_vocab} ctx ${config.n_ctx} memory ${sequenceStateKind(config).describe(config)}` +
    ` rotary ${config.rotary_layout}`;
  return {
    runId: options.runId ?? null,
    configId: options.configId ?? null,
    modelType: config.model_type,
    nParams: parameters.total,
    nInputEmbParams: parameters.inputEmbedding,
    benchmark: options.benchmark,
    split: result.split,
    nCtx: config.n_ctx,
    nans: result.nans,
    loss: result.loss,
    ppl: result.ppl,
    tokenLoss: result.tokenLoss,
    tokens: result.tokens,
    architecture,
    note: options.note ?? null,
  };
}
