// Upstream's procedure against our PyTorch reference (packages/model/__fixtures__/train-4-steps):
// one batch, window 16 in chunks of n_ctx 8, two passes (from 0 and from 8), one AdamW step per
// window with clip 1.0 — per-step losses, gradient norms and the final weights to 1e-4.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenDocumentsFromArrays } from '@baka/data';
import { loadCheckpoint, readSafetensors } from '@baka/model';
import { describe, expect, it } from 'vitest';
import { readTrainingBatch } from './input-batch';
import { makeTrainingOptions } from './training-options';
import { TrainingSession } from './training-session';

const fixtures = new URL('../../model/__fixtures__/train-4-steps/', import.meta.url).pathname;

describe('upstream training parity', () => {
  it('4 steps on the fixture batch match torch (losses, grad norms, weights)', async () => {
    const expected = JSON.parse(readFileSync(join(fixtures, 'expected.json'), 'utf8')) as {
      steps: { loss: number; grad_norm: number; length: number; rows: number[] }[];
    };
    const batch = readTrainingBatch(join(fixtures, 'batch.json'));
    const model = await loadCheckpoint(join(fixtures, 'init'));
    const session = new TrainingSession({
      model,
      documents: tokenDocumentsFromArrays([]),
      options: makeTrainingOptions({
        runName: 'parity',
        window: 16,
        batchSize: batch.rows,
        epochs: 1,
      }),
      runDir: mkdtempSync(join(tmpdir(), 'baka-parity-')),
      batch,
    });
    const steps: { loss: number; gradNorm: number; rows: number; length: number }[] = [];
    await session.run({
      onStep: (s) => {
        steps.push({
          loss: s.loss,
          gradNorm: s.gradNorm,
          rows: s.unit.rows,
          length: s.unit.length,
        });
      },
    });
    expect(steps.map((s) => [s.rows, s.length])).toEqual(
      expected.steps.map((s) => [s.rows.length, s.length]),
    );
    let lossError = 0;
    let normError = 0;
    steps.forEach((step, i) => {
      lossError = Math.max(lossError, Math.abs(step.loss - expected.steps[i]!.loss));
      normError = Math.max(normError, Math.abs(step.gradNorm - expected.steps[i]!.grad_norm));
    });
    let weightError = 0;
    for (const [name, tensor] of readSafetensors(join(fixtures, 'final.safetensors'))) {
      const ours = model.parameters.get(name)!.dataSync();
      tensor.data.forEach((value, i) => {
        weightError = Math.max(weightError, Math.abs(Number(value) - ours[i]!));
      });
    }
    console.log(
      `parity max-abs errors: loss ${lossError.toExponential(2)}, grad norm ${normError.toExponential(2)}, weights ${weightError.toExponential(2)}`,
    );
    expect(lossError).toBeLessThan(1e-4);
    expect(normError).toBeLessThan(1e-4);
    expect(weightError).toBeLessThan(1e-4);
    session.dispose();
    model.dispose();
  });
});
