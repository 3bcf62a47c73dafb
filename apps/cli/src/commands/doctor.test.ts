import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { formatDoctor, measureMatmul, nativeFix, runDoctor } from './doctor';

const bin = fileURLToPath(new URL('../../bin/baka.js', import.meta.url));
const original = tf.getBackend();
afterAll(async () => {
  await tf.setBackend(original);
});

describe('baka doctor', () => {
  it('--json prints the full report from a real run on the cpu backend', () => {
    const result = spawnSync(
      process.execPath,
      [bin, 'doctor', '--backend', 'cpu', '--size', '64', '--json'],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toEqual({
      backend: 'cpu',
      choice: 'cpu',
      reason: 'chosen with --backend cpu',
      skipped: [],
      versions: { tfjs: tf.version_core, node: process.versions.node },
      threads: { count: 1, available: expect.any(Number), source: expect.any(String) },
      matmul: {
        size: 64,
        runs: expect.any(Number),
        medianMs: expect.any(Number),
        gflops: expect.any(Number),
      },
      native: {
        running: false,
        available: expect.any(Boolean),
        detail: expect.any(String),
        fix: report.native.available ? null : expect.any(String),
      },
    });
    expect(report.matmul.runs).toBeGreaterThanOrEqual(3);
    expect(report.matmul.gflops).toBeCloseTo((2 * 64 ** 3) / (report.matmul.medianMs * 1e6), 6);
    // The fix is present exactly when native TensorFlow would not load.
    if (report.native.available) {
      expect(report.native.fix).toBeNull();
      expect(report.native.detail).toMatch(/^TensorFlow \d+\.\d+/);
    } else {
      expect(report.native.fix).toMatch(/pnpm (setup:native|install)/);
    }
  });

  it('reports the backend the test run uses, with versions and a positive speed', async () => {
    const report = await runDoctor({
      backend: original === 'tensorflow' ? 'tensorflow' : 'cpu',
      size: 32,
    });
    expect(report.backend).toBe(original === 'tensorflow' ? 'tensorflow' : 'cpu');
    expect(report.matmul.gflops).toBeGreaterThan(0);
    if (report.backend === 'tensorflow') {
      expect(report.versions.tensorflow).toMatch(/^\d+\.\d+/);
      expect(report.native).toEqual({
        running: true,
        available: true,
        detail: `TensorFlow ${report.versions.tensorflow}`,
        fix: null,
      });
    }
    const text = formatDoctor(report);
    expect(text).toMatch(/^backend: {5}/);
    expect(text).toContain(`matmul:      ${report.matmul.gflops.toFixed(2)} GFLOP/s fp32 (32x32`);
  });

  it('measureMatmul leaves no tensors behind', () => {
    const before = tf.memory().numTensors;
    measureMatmul(16, { minRuns: 3, maxRuns: 3 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gives the exact fix for each native failure', () => {
    expect(nativeFix({ available: true, detail: 'TensorFlow 2.21.0' })).toBeNull();
    expect(
      nativeFix({
        available: false,
        detail: '@tensorflow/tfjs-node is not installed (optional dependency; run pnpm install)',
      }),
    ).toContain('run `pnpm install`');
    expect(
      nativeFix({
        available: false,
        detail: '@tensorflow/tfjs-node is installed but its native binding is not built',
      }),
    ).toContain('run `pnpm setup:native`');
  });
});
