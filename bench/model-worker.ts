// TypeScript side of the model benchmark: one measurement per process, so the peak resident
// memory (process.resourceUsage().maxRSS) belongs to that measurement alone. Mirrors
// bench/torch/worker.py task for task; bench/model.ts spawns both and alternates them.
//
//   node --conditions=@baka/source --import tsx bench/model-worker.ts '<json list of tasks>'
//
// Prints `RESULT <json list of results>` as its last stdout line.
import { readFileSync } from 'node:fs';
import '@tensorflow/tfjs-node';
import * as tf from '@tensorflow/tfjs-core';
import { BakaCausalLM, IncrementalDecoder, loadCheckpoint, makeConfig } from '@baka/model';
import { AdamW, clipAndStep, Trainable, windowGradients } from '@baka/trainer';
import type { WorkerTask } from './model-tasks';

function readIds(path: string): Int32Array {
  const bytes = readFileSync(path);
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function seconds(since: number): number {
  return (performance.now() - since) / 1000;
}

function memoryCounters(): { numTensors: number; numBytes: number } {
  const memory = tf.memory();
  return { numTensors: memory.numTensors, numBytes: memory.numBytes };
}

/** One upstream training step on a window: loss + gradients, clip 1.0, AdamW. */
function trainingStep(
  model: BakaCausalLM,
  trainable: Trainable,
  optimizer: AdamW,
  ids: Int32Array,
  rows: number,
  length: number,
) {
  const { loss, gradients } = windowGradients(model, trainable, { ids, labels: ids, rows, length });
  const { gradNorm } = clipAndStep(optimizer, gradients, { learningRate: 1e-3, clipNorm: 1 });
  gradients.dispose();
  return { loss, gradNorm };
}

async function train(task: Extract<WorkerTask, { kind: 'train' }>) {
  const model = await loadCheckpoint(task.checkpoint);
  const trainable = new Trainable(model.parameters);
  const optimizer = new AdamW(trainable.entries(), { learningRate: 1e-3, weightDecay: 0.01 });
  const ids = readIds(task.ids);
  const { batch, window } = task;
  const times: number[] = [];
  const losses: number[] = [];
  const gradNorms: number[] = [];
  let before = memoryCounters();
  for (let step = 0; step < task.warmup + task.steps; step++) {
    if (step === task.warmup) before = memoryCounters();
    const start = ((task.offset ?? 0) + step * batch * window) % (ids.length - batch * window);
    const rows = ids.subarray(start, start + batch * window); // [B, T] row-major
    const began = performance.now();
    const { loss, gradNorm } = trainingStep(model, trainable, optimizer, rows, batch, window);
    const elapsed = seconds(began);
    losses.push(loss);
    gradNorms.push(gradNorm);
    if (step >= task.warmup) times.push(elapsed);
  }
  const after = memoryCounters();
  optimizer.dispose();
  model.dispose();
  return {
    seconds: times,
    losses,
    gradNorms,
    tokensPerStep: batch * window,
    tensors: { before, after },
  };
}

async function evaluate(task: Extract<WorkerTask, { kind: 'eval' }>) {
  const model = await loadCheckpoint(task.checkpoint);
  const ids = readIds(task.ids);
  const lengths = [];
  const before = memoryCounters();
  for (const length of task.lengths) {
    const times: number[] = [];
    const losses: number[] = [];
    for (let rep = 0; rep < task.warmup + task.reps; rep++) {
      const start = (rep * length) % (ids.length - length);
      const doc = ids.subarray(start, start + length);
      const began = performance.now();
      // what @baka/trainer's evaluate() does per article
      const loss = tf.tidy(() => {
        const input = tf.tensor2d(doc, [1, length], 'int32'); // [1, L]
        return model.loss(input, input).loss;
      });
      const value = loss.dataSync()[0]!;
      loss.dispose();
      const elapsed = seconds(began);
      losses.push(value);
      if (rep >= task.warmup) times.push(elapsed);
    }
    lengths.push({ length, seconds: times, losses });
  }
  const after = memoryCounters();
  model.dispose();
  return { lengths, tensors: { before, after } };
}

async function generate(task: Extract<WorkerTask, { kind: 'generate' }>) {
  const model = await loadCheckpoint(task.checkpoint);
  const ids = Array.from(readIds(task.ids).subarray(0, task.tokens));
  const decoder = new IncrementalDecoder(model);
  const before = memoryCounters();
  const times: number[] = [];
  let logits: Float32Array = new Float32Array(0);
  let chosen = -1;
  for (const id of ids) {
    const began = performance.now();
    logits = decoder.append([id]); // host logits, as a sampler reads them
    chosen = argmax(logits);
    times.push(seconds(began));
  }
  const result: Record<string, unknown> = {
    seconds: times,
    lastArgmax: chosen,
    lastLogitSum: logits.reduce((sum, value) => sum + value, 0),
  };
  decoder.dispose();
  result.tensors = { before, after: memoryCounters() };
  if (task.check) {
    result.maxAbsDifference = differenceFromFullPass(model, ids, logits);
  }
  model.dispose();
  return result;
}

/**
 * Time to the first token: a prompt through a fresh decoder in one call, up to the next-token
 * logits on the host and their argmax, `reps` times in this process (the first pays the process's
 * one-off costs).
 */
async function firstToken(task: Extract<WorkerTask, { kind: 'first-token' }>) {
  const model = await loadCheckpoint(task.checkpoint);
  const prompt = Array.from(readIds(task.ids).subarray(0, task.prompt));
  const before = memoryCounters();
  const times: number[] = [];
  let logits: Float32Array = new Float32Array(0);
  let chosen = -1;
  for (let rep = 0; rep < task.reps; rep++) {
    const began = performance.now();
    const decoder = new IncrementalDecoder(model);
    logits = decoder.append(prompt);
    chosen = argmax(logits);
    times.push(seconds(began));
    decoder.dispose();
  }
  const result: Record<string, unknown> = {
    seconds: times,
    argmax: chosen,
    tensors: { before, after: memoryCounters() },
  };
  if (task.check) {
    result.maxAbsDifference = differenceFromFullPass(model, prompt, logits);
  }
  model.dispose();
  return result;
}

/** Largest |difference| between `logits` and a full forward pass's last-position logits for `ids`. */
function differenceFromFullPass(model: BakaCausalLM, ids: number[], logits: Float32Array): number {
  const full = tf.tidy(() => {
    const input = tf.tensor2d([ids], [1, ids.length], 'int32'); // [1, n]
    const out = model.forward(input);
    return tf.slice(out.logits, [0, ids.length - 1, 0], [1, 1, model.config.n_vocab]); // [1, 1, V]
  });
  const reference = full.dataSync() as Float32Array;
  full.dispose();
  return reference.reduce(
    (max, value, index) => Math.max(max, Math.abs(value - logits[index]!)),
    0,
  );
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let index = 1; index < values.length; index++)
    if (values[index]! > values[best]!) best = index;
  return best;
}

function matmul(task: Extract<WorkerTask, { kind: 'matmul' }>) {
  const { size } = task;
  const a = tf.randomNormal([size, size], 0, 1, 'float32', 1);
  const b = tf.randomNormal([size, size], 0, 1, 'float32', 2);
  const times: number[] = [];
  for (let rep = 0; rep < task.warmup + task.reps; rep++) {
    const began = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
    if (rep >= task.warmup) times.push(seconds(began));
  }
  tf.dispose([a, b]);
  const sorted = [...times].sort((x, y) => x - y);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return { seconds: times, gflops: (2 * size ** 3) / median / 1e9 };
}

/** Many small training, evaluation and generation steps: does tf.memory() grow? */
function leak(task: Extract<WorkerTask, { kind: 'leak' }>) {
  const config = makeConfig(task.config);
  const model = BakaCausalLM.create(config, { seed: 1 });
  const trainable = new Trainable(model.parameters);
  const optimizer = new AdamW(trainable.entries());
  const { batch, window } = task;
  const ids = new Int32Array(batch * window);
  let state = 12345;
  const next = () => {
    state = (state * 1103515245 + 12345) >>> 0;
    return state % config.n_vocab;
  };
  const samples: { step: number; numTensors: number; numBytes: number }[] = [];
  const began = performance.now();
  for (let step = 0; step <= task.steps; step++) {
    if (step % Math.max(1, Math.floor(task.steps / 10)) === 0)
      samples.push({ step, ...memoryCounters() });
    if (step === task.steps) break;
    for (let index = 0; index < ids.length; index++) ids[index] = next();
    trainingStep(model, trainable, optimizer, ids, batch, window);
  }
  const trainSeconds = seconds(began);
  const evalBefore = memoryCounters();
  for (let step = 0; step < task.evalSteps; step++) {
    const loss = tf.tidy(() => {
      const input = tf.tensor2d(ids.subarray(0, window), [1, window], 'int32'); // [1, L]
      return model.loss(input, input).loss;
    });
    loss.dataSync();
    loss.dispose();
  }
  const evalAfter = memoryCounters();
  const generated = model.generate([1, 2, 3], {
    maxNewTokens: task.generateTokens,
    temperature: 1,
    seed: 3,
  });
  const generateAfter = memoryCounters();
  optimizer.dispose();
  model.dispose();
  return {
    samples,
    trainSeconds,
    eval: { before: evalBefore, after: evalAfter },
    generate: { tokens: generated.length, after: generateAfter },
    afterDispose: memoryCounters(),
  };
}

async function generateSamples(task: Extract<WorkerTask, { kind: 'generate-samples' }>) {
  const model = await loadCheckpoint(task.checkpoint);
  const prompt = Array.from(readIds(task.ids).subarray(0, task.prompt));
  const decoder = new IncrementalDecoder(model);
  const vocab = model.config.n_vocab;
  const began = performance.now();
  let logits = decoder.append(prompt);
  if (task.samples > 1) decoder.selectRows(new Array(task.samples).fill(0));
  let next = new Array(task.samples).fill(argmax(logits));
  const firstTokenSeconds = seconds(began);
  const times: number[] = [];
  for (let step = 1; step < task.tokens; step++) {
    const stepBegan = performance.now();
    logits = decoder.appendRows(next); // host logits [samples x V], as a sampler reads them
    // greedy per row, each row offset so the rows differ (as sampled rows would)
    next = next.map(
      (_, row) => (argmax(logits.subarray(row * vocab, (row + 1) * vocab)) + row) % vocab,
    );
    times.push(seconds(stepBegan));
  }
  decoder.dispose();
  model.dispose();
  return { samples: task.samples, seconds: times, firstTokenSeconds };
}

async function runTask(task: WorkerTask): Promise<Record<string, unknown>> {
  switch (task.kind) {
    case 'train':
      return train(task);
    case 'eval':
      return evaluate(task);
    case 'generate':
      return generate(task);
    case 'first-token':
      return firstToken(task);
    case 'generate-samples':
      return generateSamples(task);
    case 'matmul':
      return matmul(task);
    case 'leak':
      return leak(task);
    default:
      throw new Error(`model-worker: cannot run task ${JSON.stringify(task)}`);
  }
}

/** argv[2]: a JSON list of tasks, run in order in this process; one RESULT line with a list. */
async function main(): Promise<void> {
  const tasks = JSON.parse(process.argv[2] ?? '[]') as WorkerTask[];
  if (tf.getBackend() !== 'tensorflow') {
    throw new Error(
      `model-worker: expected the native tensorflow backend, got '${tf.getBackend()}'`,
    );
  }
  const binding = (tf.backend() as unknown as { binding?: { TF_Version?: string } }).binding;
  // resident memory once Node, tfjs-node and the TensorFlow library are loaded
  const startRssBytes = process.memoryUsage().rss;
  const results = [];
  for (const task of tasks) {
    const began = performance.now();
    const result = await runTask(task);
    results.push({
      ...result,
      side: 'tfjs',
      kind: task.kind,
      threads: Number(process.env.TF_NUM_INTRAOP_THREADS) || null,
      version: `tfjs ${tf.version_core} / TensorFlow ${binding?.TF_Version ?? '?'}`,
      // maxRSS: the process's peak so far (exact for the first task of the list)
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      startRssBytes,
      wallSeconds: seconds(began),
    });
  }
  process.stdout.write(`RESULT ${JSON.stringify(results)}\n`);
}

await main();
