// Test setup shared by every package: use the native TensorFlow backend when its binding loads
// (see scripts/setup-native.mjs), otherwise the pure-JS cpu backend. Libraries never import a
// backend themselves; tests, like the apps, choose one at the edge. `@tensorflow/tfjs` registers
// the gradient functions and chained ops that tfjs-core alone lacks, so tests that differentiate
// pass on every backend.
import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';

let chosen = 'cpu';
if (process.env.BAKA_TEST_BACKEND !== 'cpu') {
  try {
    await import('@tensorflow/tfjs-node');
    chosen = 'tensorflow';
  } catch {
    chosen = 'cpu';
  }
}
await tf.setBackend(chosen);
await tf.ready();
