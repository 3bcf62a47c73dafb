import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-node';
import { BakaCausalLM, makeConfig, PRESETS } from './src/index.ts';
const preset = (process.argv[2] ?? 'tiny') as keyof typeof PRESETS;
const rows = Number(process.argv[3] ?? 4);
const length = Number(process.argv[4] ?? 256);
const overrides = JSON.parse(process.argv[5] ?? '{}');
await tf.setBackend(process.env.BACKEND ?? 'tensorflow');
const config = makeConfig({ ...PRESETS[preset], ...overrides });
const model = BakaCausalLM.create(config, { seed: 1 });
const ids = tf.tensor2d(
  Array.from({ length: rows * length }, (_, i) => (i * 7919) % config.n_vocab),
  [rows, length],
  'int32',
);
const vars = [...model.trainableParameters().values()];
function fwd() {
  const l = tf.tidy(() => model.loss(ids, ids).loss);
  l.dataSync();
  l.dispose();
}
function step() {
  const { value, grads } = tf.variableGrads(() => model.loss(ids, ids).loss, vars);
  value.dataSync();
  tf.dispose([value, ...Object.values(grads)]);
}
fwd();
step();
let t = performance.now();
const n = 3;
for (let i = 0; i < n; i++) fwd();
const f = (performance.now() - t) / n;
t = performance.now();
for (let i = 0; i < n; i++) step();
const s = (performance.now() - t) / n;
console.log(
  JSON.stringify({
    preset,
    backend: tf.getBackend(),
    rows,
    length,
    forwardMs: +f.toFixed(1),
    stepMs: +s.toFixed(1),
    trainTokensPerSec: Math.round(((rows * length) / s) * 1000),
    numTensors: tf.memory().numTensors,
  }),
);
