import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors } from '@baka/model';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AdamW } from './adamw';
import {
  checkpointName,
  latestCheckpoint,
  listCheckpoints,
  loadTrainingCheckpoint,
  pruneCheckpoints,
  restoreOptimizer,
  saveTrainingCheckpoint,
} from './checkpoint';
import { tinyModel, tinyOptions } from './test-helpers';
import { TRAINER_STATE_FORMAT, type TrainerState } from './trainer-state';
import { Trainable } from './train-step';

function state(step: number): TrainerState {
  return {
    format: TRAINER_STATE_FORMAT,
    version: 1,
    runName: 'r',
    step,
    tokens: 123 * step,
    elapsedSeconds: 1.5,
    position: { batch: { epoch: 0, position: 2, seed: 5 }, pass: 1, window: 3 },
    rng: { seed: 5, algorithm: 'test' },
    schedule: { name: 'constant', learningRate: 1e-3, warmupSteps: 0 },
    firstLoss: 4,
    lastLoss: 3,
    bestLoss: 2.5,
    skippedSteps: 0,
    savedAt: new Date(0).toISOString(),
  };
}

/** An optimizer with non-trivial moments after two steps of pseudo-random gradients. */
function steppedOptimizer(trainable: Trainable): AdamW {
  const optimizer = new AdamW(trainable.entries());
  for (let s = 0; s < 2; s++) {
    const g = tf.tidy(() =>
      tf.sin(tf.mul(tf.range(0, trainable.layout.size, 1, 'float32'), s + 1)),
    ) as tf.Tensor1D;
    optimizer.step(g);
    g.dispose();
  }
  return optimizer;
}

describe('training checkpoints', () => {
  it('round-trip bit-exactly: weights, optimizer moments by parameter name, trainer state, options, tokenizer', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'baka-ckpt-')), checkpointName(2));
    const model = tinyModel(3);
    const trainable = new Trainable(model.parameters);
    const optimizer = steppedOptimizer(trainable);
    const options = tinyOptions();
    await saveTrainingCheckpoint(dir, {
      model,
      optimizer,
      state: state(2),
      training: options,
      tokenizerJson: '{"x":1}',
    });
    expect(readdirSync(dir).sort()).toEqual(
      [
        'config.json',
        'model.safetensors',
        'optimizer.safetensors',
        'tokenizer.json',
        'trainer_state.json',
        'training.json',
      ].sort(),
    );
    const moments = readSafetensors(join(dir, 'optimizer.safetensors'));
    expect(moments.has('vocab_out.weight.exp_avg')).toBe(true);
    expect(moments.has('model.layers.1.attn.q.weight.exp_avg_sq')).toBe(true);
    expect([...moments.keys()].some((name) => name.includes('rot.freqs'))).toBe(false);

    const loaded = await loadTrainingCheckpoint(dir);
    expect(loaded.state).toEqual(state(2));
    expect(loaded.training).toEqual(options);
    expect(loaded.tokenizerJson).toBe('{"x":1}');
    for (const [name, variable] of model.parameters) {
      expect(Array.from(loaded.model.parameters.get(name)!.dataSync())).toEqual(
        Array.from(variable.dataSync()),
      );
    }
    const restored = new AdamW(new Trainable(loaded.model.parameters).entries());
    restoreOptimizer(dir, restored, loaded.state.step);
    expect(restored.stepCount).toBe(2);
    const a = optimizer.state();
    const b = restored.state();
    for (const name of trainable.layout.names) {
      expect(Array.from(b.expAvg.get(name)!)).toEqual(Array.from(a.expAvg.get(name)!));
      expect(Array.from(b.expAvgSq.get(name)!)).toEqual(Array.from(a.expAvgSq.get(name)!));
    }
    for (const x of [optimizer, restored, model, loaded.model]) x.dispose();
  });

  it('lists complete checkpoints only, keeps the newest K, removes leftovers of killed saves', async () => {
    const root = mkdtempSync(join(tmpdir(), 'baka-ckpts-'));
    const model = tinyModel(1);
    const optimizer = new AdamW(new Trainable(model.parameters).entries());
    for (const step of [1, 2, 3, 10]) {
      await saveTrainingCheckpoint(join(root, checkpointName(step)), {
        model,
        optimizer,
        state: state(step),
        training: {},
      });
    }
    // a save killed half-way (the model package's temporary dir) and a dir without trainer state
    mkdirSync(join(root, '.step-00000011.tmp-999999-1-abc'));
    mkdirSync(join(root, checkpointName(12)));
    writeFileSync(join(root, checkpointName(12), 'config.json'), '{}');
    expect(listCheckpoints(root).map((c) => c.step)).toEqual([1, 2, 3, 10]);
    expect(latestCheckpoint(root)).toBe(join(root, checkpointName(10)));
    pruneCheckpoints(root, 2);
    expect(listCheckpoints(root).map((c) => c.step)).toEqual([3, 10]);
    expect(readdirSync(root).filter((name) => name.startsWith('.'))).toEqual([]);
    model.dispose();
    optimizer.dispose();
  });

  it('a damaged trainer_state.json is an error naming the file and field', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'baka-ckpt-')), 'c');
    const model = tinyModel(1);
    const optimizer = new AdamW(new Trainable(model.parameters).entries());
    await saveTrainingCheckpoint(dir, { model, optimizer, state: state(1), training: {} });
    const path = join(dir, 'trainer_state.json');
    writeFileSync(path, readFileSync(path, 'utf8').replace('"step": 1', '"step": -1'));
    await expect(loadTrainingCheckpoint(dir)).rejects.toThrow(/trainer_state.json: field 'step'/);
    model.dispose();
    optimizer.dispose();
  });
});
