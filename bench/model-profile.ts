// Where the time and memory of one model step go, per TensorFlow.js kernel (tf.profile):
// kernel time summed by kernel name, the tensor-bytes peak, and the process's peak RSS.
//
//   node --conditions=@baka/source --import tsx bench/model-profile.ts [train|eval|generate]
//        [--preset tiny|small] [--batch N] [--window N] [--cpu-time]
//
// --cpu-time: each kernel's time is the process's CPU time (user + system, all threads) while it
// ran instead of its wall time; on a loaded machine wall times mostly measure the waiting.
import { parseArgs } from 'node:util';
import '@tensorflow/tfjs-node';
import * as tf from '@tensorflow/tfjs-core';
import { BakaCausalLM, IncrementalDecoder, makeConfig, PRESETS } from '@baka/model';
import { AdamW, clipAndStep, Trainable, windowGradients } from '@baka/trainer';
import { formatBytes, renderTable } from './format';

const { values, positionals } = parseArgs({
  options: {
    preset: { type: 'string', default: 'tiny' },
    batch: { type: 'string', default: '1' },
    window: { type: 'string', default: '2048' },
    top: { type: 'string', default: '25' },
    'cpu-time': { type: 'boolean', default: false },
  },
  allowPositionals: true,
});
const mode = positionals[0] ?? 'train';
const preset = values.preset as 'tiny' | 'small';
const config = makeConfig({ ...PRESETS[preset], n_vocab: 50277, n_ctx: 512 });
const batch = Number(values.batch);
const window = Number(values.window);
const model = BakaCausalLM.create(config, { seed: 0 });
const ids = new Int32Array(batch * window).map((_, index) => (index * 7919) % config.n_vocab);

function once(): void {
  if (mode === 'train') {
    const trainable = new Trainable(model.parameters);
    const optimizer = new AdamW(trainable.entries());
    const { gradients } = windowGradients(model, trainable, {
      ids,
      labels: ids,
      rows: batch,
      length: window,
    });
    clipAndStep(optimizer, gradients, { learningRate: 1e-3, clipNorm: 1 });
    gradients.dispose();
    optimizer.dispose();
  } else if (mode === 'eval') {
    const loss = tf.tidy(() => {
      const input = tf.tensor2d(ids.subarray(0, window), [1, window], 'int32');
      return model.loss(input, input).loss;
    });
    loss.dataSync();
    loss.dispose();
  } else {
    const decoder = new IncrementalDecoder(model);
    for (let position = 0; position < 64; position++) decoder.append([ids[position]!]);
    decoder.dispose();
  }
}

once(); // warm-up
if (values['cpu-time']) {
  // tfjs-node runs a kernel synchronously inside backend.time(f): time it by CPU instead
  const backend = tf.backend() as unknown as { time(f: () => void): Promise<{ kernelMs: number }> };
  backend.time = async (f) => {
    const before = process.cpuUsage();
    f();
    const used = process.cpuUsage(before);
    return { kernelMs: (used.user + used.system) / 1000 };
  };
}
const rssBefore = process.resourceUsage().maxRSS * 1024;
const began = performance.now();
const profile = await tf.profile(() => once());
const wall = performance.now() - began;
const byKernel = new Map<string, { ms: number; calls: number; bytes: number }>();
let total = 0;
for (const kernel of profile.kernels) {
  const ms = typeof kernel.kernelTimeMs === 'number' ? kernel.kernelTimeMs : 0;
  total += ms;
  const entry = byKernel.get(kernel.name) ?? { ms: 0, calls: 0, bytes: 0 };
  entry.ms += ms;
  entry.calls += 1;
  entry.bytes += kernel.bytesAdded;
  byKernel.set(kernel.name, entry);
}
const rows = [...byKernel]
  .sort((a, b) => b[1].ms - a[1].ms)
  .slice(0, Number(values.top))
  .map(([name, entry]) => [
    name,
    entry.ms.toFixed(1),
    `${((100 * entry.ms) / total).toFixed(1)}%`,
    String(entry.calls),
    formatBytes(Math.max(0, entry.bytes)),
  ]);
process.stdout.write(
  `${mode} ${preset} batch ${batch} window ${window}: wall ${wall.toFixed(0)} ms (profiled), kernels ${total.toFixed(0)} ms${values['cpu-time'] ? ' CPU' : ''} in ${profile.kernels.length} calls; ` +
    `tensor bytes peak ${formatBytes(profile.peakBytes)}, new ${formatBytes(profile.newBytes)}; ` +
    `process peak RSS ${formatBytes(rssBefore)} after warm-up, ${formatBytes(process.resourceUsage().maxRSS * 1024)} now\n`,
);
process.stdout.write(`${renderTable(['kernel', 'ms', 'share', 'calls', 'bytes added'], rows)}\n`);
const slowest = [...profile.kernels]
  .sort((a, b) => Number(b.kernelTimeMs) - Number(a.kernelTimeMs))
  .slice(0, Number(values.top))
  .map((kernel) => [
    kernel.name,
    Number(kernel.kernelTimeMs).toFixed(1),
    kernel.inputShapes.map((shape) => `[${shape?.join(',')}]`).join(' '),
    kernel.outputShapes.map((shape) => `[${shape?.join(',')}]`).join(' '),
  ]);
process.stdout.write(
  `\nslowest calls:\n${renderTable(['kernel', 'ms', 'inputs', 'outputs'], slowest)}\n`,
);
