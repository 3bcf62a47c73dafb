// Answer evaluation on the recall corpus: per distance, from one whole-document call per model.
import {
  articleBatches,
  IGNORE_INDEX,
  RECALL_DEFAULTS,
  RECALL_SYMBOLS,
  recallDocuments,
} from '@baka/data';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { answerAccuracy, evaluate } from './evaluate';
import { tinyModel, tinyOptions } from './test-helpers';
import { startPosition, trainingUnits } from './training-units';

const documents = recallDocuments({ ...RECALL_DEFAULTS, train: 6, valid: 5 });
const modelOf = (overrides: Record<string, unknown> = {}) =>
  tinyModel(3, { n_vocab: RECALL_SYMBOLS.length, n_ctx: RECALL_DEFAULTS.chunk, ...overrides });

/** The same figures by hand: one document at a time, argmax and log-softmax at position - 1. */
function byHand(model: ReturnType<typeof modelOf>) {
  const totals = new Map<number, { answers: number; correct: number; loss: number }>();
  const valid = documents.splits.valid!;
  for (let index = valid.start; index < valid.end; index++) {
    const ids = documents.document(index);
    const logits = tf.tidy(() =>
      tf.logSoftmax(
        model.forward(tf.tensor2d(Int32Array.from(ids), [1, ids.length], 'int32')).logits,
      ),
    );
    const values = logits.arraySync()[0]!;
    logits.dispose();
    for (const { position, distance } of documents.answers(index, model.config.n_ctx)) {
      const row = values[position - 1]!;
      const total = totals.get(distance) ?? { answers: 0, correct: 0, loss: 0 };
      total.answers += 1;
      if (row.indexOf(Math.max(...row)) === ids[position]) total.correct += 1;
      total.loss -= row[ids[position]!]!;
      totals.set(distance, total);
    }
  }
  return [...totals].sort(([a], [b]) => a - b);
}

describe('answerAccuracy', () => {
  for (const memory of ['xl', 'none'] as const) {
    it(`${memory}: equals scoring each document alone, per distance, without leaking tensors`, () => {
      const model = modelOf({ memory });
      const result = answerAccuracy(model, documents);
      const before = tf.memory().numTensors;
      answerAccuracy(model, documents);
      expect(tf.memory().numTensors).toBe(before);
      const expected = byHand(model);
      expect(result.map((r) => r.distance)).toEqual([0, 1, 2, 3]);
      expect(result.map((r) => r.answers)).toEqual([40, 35, 30, 25]); // 5 documents x (8 - d)
      for (const [i, [distance, total]] of expected.entries()) {
        expect(result[i]).toMatchObject({
          distance,
          answers: total.answers,
          correct: total.correct,
        });
        expect(Math.abs(result[i]!.loss - total.loss / total.answers)).toBeLessThan(1e-5);
      }
      model.dispose();
    });
  }

  it('an XL answer sees the earlier chunk, a memoryless one does not (one call, chunked)', () => {
    // change every key and value of chunk 0: answers in chunk 1 then see other pairs under XL (2
    // layers of previous-layer memory reach one chunk back); without memory nothing they see did
    const index = documents.splits.valid!.start;
    const chunk = RECALL_DEFAULTS.chunk;
    const changed = documents.document(index).slice();
    for (let t = 0; t < chunk; t++)
      if (changed[t]! >= 2) changed[t] = 2 + ((changed[t]! - 2 + 7) % 84);
    // predicted from a row of chunk 1
    const answers = documents
      .answers(index, chunk)
      .filter((a) => a.position - 1 >= chunk && a.position < 2 * chunk);
    expect(answers.length).toBe(2); // one at distance 1, one at distance 0
    const logitsOf = (model: ReturnType<typeof modelOf>, ids: Uint32Array) => {
      const logits = tf.tidy(
        () => model.forward(tf.tensor2d(Int32Array.from(ids), [1, ids.length], 'int32')).logits,
      );
      const values = logits.arraySync()[0]!;
      logits.dispose();
      return answers.map((a) => values[a.position - 1]!);
    };
    for (const memory of ['xl', 'none'] as const) {
      const model = modelOf({ memory });
      const original = logitsOf(model, documents.document(index));
      const other = logitsOf(model, changed);
      const difference = Math.max(
        ...original.flatMap((row, i) => row.map((value, j) => Math.abs(value - other[i]![j]!))),
      );
      if (memory === 'xl') expect(difference).toBeGreaterThan(1e-4);
      else expect(difference).toBe(0);
      model.dispose();
    }
  });
});

describe('answer-only labels', () => {
  it('article batches keep labels only at answers; the valid loss is the answer loss', () => {
    const batch = articleBatches(documents, { batchSize: 2, seed: 0 }).next().value!;
    for (let row = 0; row < batch.rows; row++) {
      const index = batch.documents[row]!;
      const answers = new Set(documents.answers(index, 1).map((a) => a.position));
      const ids = documents.document(index);
      for (let t = 0; t < batch.length; t++) {
        const label = batch.labels[row * batch.length + t];
        expect(label).toBe(answers.has(t) ? ids[t] : IGNORE_INDEX);
      }
    }
    const model = modelOf();
    const result = evaluate(model, documents);
    const answers = result.answers!;
    const count = answers.reduce((sum, a) => sum + a.answers, 0);
    expect(result.tokens).toBe(count);
    const answerLoss = answers.reduce((sum, a) => sum + a.loss * a.answers, 0) / count;
    expect(Math.abs(result.tokenLoss - answerLoss)).toBeLessThan(1e-5);
    model.dispose();
  });

  it('packed mode refuses documents with their own labels', () => {
    const units = trainingUnits(documents, startPosition(0), {
      ...tinyOptions({ mode: 'packed' }),
    });
    expect(() => units.next()).toThrow(/mode=packed .* use mode=upstream/);
  });
});
