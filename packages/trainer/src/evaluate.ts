// Evaluation as upstream's bench (docs/architecture.md §3): one article at a time (batch of 1). A
// model with XL memory sees the whole article in one call (chunked into n_ctx internally, memory
// flowing); a model without memory is scored in windows of n_ctx with stride n_ctx/2, the
// overlapped first half of every window after the first masked out. Reported: the mean of the
// per-window losses (for the XL model, one window = one article), exp of it, the NaN count, and a
// token-weighted mean beside it. Documents that mark answers (the recall corpus) are also scored
// on their answer tokens alone, per distance in chunks (`answerAccuracy`).
//
// Shapes: one article of L tokens -> ids [1, L].
import * as tf from '@tensorflow/tfjs-core';
import {
  type AnsweredDocuments,
  hasAnswers,
  IGNORE_INDEX,
  type SplitName,
  splitRange,
  type TokenDocuments,
  windows,
} from '@baka/data';
import {
  type BakaCausalLM,
  type BakaConfig,
  type ConfigKey,
  countParameters,
  evaluateLoss,
  sequenceStateKind,
  settingText,
  variantFields,
} from '@baka/model';
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
  /** Per distance, when the documents mark answers (the recall corpus); otherwise null. */
  answers: AnswerAccuracy[] | null;
}

/** How well a model predicts the answer tokens that sit `distance` chunks after their pair. */
export interface AnswerAccuracy {
  distance: number;
  /** Answer tokens scored. */
  answers: number;
  /** Of them, those the model's most likely next token got right. */
  correct: number;
  /** Mean cross-entropy on them. */
  loss: number;
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
  labels: Int32Array | undefined,
): { ids: Int32Array; labels: Int32Array }[] {
  const whole = Int32Array.from(ids);
  if (sequenceStateKind(model.config).evaluation === 'whole-article') {
    return [{ ids: whole, labels: labels ?? whole.slice() }];
  }
  const nCtx = model.config.n_ctx;
  const batch = {
    ids: whole,
    labels: labels ?? whole.slice(),
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
    const labels = documents.labels?.(index);
    for (const window of articleWindows(model, documents.document(index), labels)) {
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
  const answers = hasAnswers(documents)
    ? answerAccuracy(model, documents, { split, maxDocuments: total })
    : null;
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
    answers,
  };
}

/**
 * Accuracy and loss on the answer tokens of the first `maxDocuments` documents of `split`, per
 * distance in chunks of the model's n_ctx. Every model, with memory or without, sees each
 * document in one call, chunked as in training (the windowed scoring of a memoryless model in
 * `evaluate` would let an answer see half of the previous chunk). Documents of equal length run
 * together, up to about 4M logits per call.
 */
export function answerAccuracy(
  model: BakaCausalLM,
  documents: AnsweredDocuments,
  options: { split?: SplitName; maxDocuments?: number } = {},
): AnswerAccuracy[] {
  const range = splitRange(documents, options.split ?? 'valid');
  const end = Math.min(range.end, range.start + (options.maxDocuments ?? Number.POSITIVE_INFINITY));
  const { n_ctx: chunk, n_vocab: vocab } = model.config;
  const totals = new Map<number, { answers: number; correct: number; loss: number }>();
  let index = range.start;
  while (index < end) {
    const length = documents.documentLength(index);
    const rowsAtMost = Math.max(1, Math.floor(4_000_000 / Math.max(1, length * vocab)));
    const group: number[] = [];
    while (index < end && group.length < rowsAtMost && documents.documentLength(index) === length) {
      group.push(index);
      index += 1;
    }
    if (length < 2) continue;
    // the logits row predicting each answer (its position - 1 in the flattened [B*L] rows)
    const rows: number[] = [];
    const targets: number[] = [];
    const distances: number[] = [];
    const ids = new Int32Array(group.length * length);
    group.forEach((document, row) => {
      const tokens = documents.document(document);
      ids.set(tokens, row * length);
      for (const answer of documents.answers(document, chunk)) {
        rows.push(row * length + answer.position - 1);
        targets.push(tokens[answer.position]!);
        distances.push(answer.distance);
      }
    });
    if (rows.length === 0) continue;
    const [logProbabilities, predictions] = tf.tidy(() => {
      const input = tf.tensor2d(ids, [group.length, length], 'int32');
      const logits = model.forward(input).logits; // [B, L, V]
      const flat = tf.reshape(logits, [group.length * length, vocab]) as tf.Tensor2D; // [B*L, V]
      const picked = tf.gather(flat, tf.tensor1d(rows, 'int32')); // [N, V]
      const logSoftmax = tf.logSoftmax(picked); // [N, V]
      const target = tf.tensor2d(
        targets.map((t, i) => i * vocab + t),
        [targets.length, 1],
        'int32',
      ); // [N, 1] flat indices
      const chosen = tf.gather(tf.reshape(logSoftmax, [-1]), tf.reshape(target, [-1])); // [N]
      return [chosen, tf.argMax(picked, 1)] as const; // [N], [N]
    });
    const logValues = logProbabilities.dataSync();
    const predicted = predictions.dataSync();
    logProbabilities.dispose();
    predictions.dispose();
    distances.forEach((distance, i) => {
      const total = totals.get(distance) ?? { answers: 0, correct: 0, loss: 0 };
      total.answers += 1;
      if (predicted[i] === targets[i]) total.correct += 1;
      total.loss -= logValues[i]!;
      totals.set(distance, total);
    });
  }
  return [...totals.entries()]
    .sort(([a], [b]) => a - b)
    .map(([distance, total]) => ({
      distance,
      answers: total.answers,
      correct: total.correct,
      loss: total.loss / total.answers,
    }));
}

/**
 * A config in one line: its family and size, its sequence-state kind's summary and rotary layout
 * (what results rows said before variants existed), then every other field that differs from its
 * default (`variantFields`), as `key=value` settings after a semicolon. A default config has none.
 */
export function describeArchitecture(config: BakaConfig): string {
  const base =
    `${config.model_type} dim ${config.dim_model} ff ${config.dim_ff} attn ${config.dim_attn} layers ${config.n_layers} ` +
    `heads ${config.n_heads} vocab ${config.n_vocab} ctx ${config.n_ctx} memory ${sequenceStateKind(config).describe(config)}` +
    ` rotary ${config.rotary_layout}`;
  const variants = variantFields(config)
    .filter(([key]) => !SHOWN_IN_BASE.has(key))
    .map(([key, value]) => settingText(key, value));
  return variants.length === 0 ? base : `${base}; ${variants.join(' ')}`;
}

/** Fields `describeArchitecture` names before the semicolon (the size fields are not variants). */
const SHOWN_IN_BASE = new Set<ConfigKey>(['memory', 'rotary_layout']);

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
  const architecture = describeArchitecture(config);
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
    answers: result.answers,
  };
}
