import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AUTO_ORDER,
  describeBackend,
  explainNativeLoadError,
  initBackend,
  setVerbose,
} from './backend';
import { UserError } from './cli-kit';

const original = tf.getBackend();
afterAll(async () => {
  await tf.setBackend(original);
});

describe('initBackend', () => {
  it('auto tries tensorflow-gpu, tensorflow, wasm, cpu in that order', () => {
    expect(AUTO_ORDER).toEqual(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']);
  });

  it('forcing a backend that cannot load fails with a UserError naming the backend and the reason', async () => {
    const failure = initBackend('tensorflow-gpu');
    await expect(failure).rejects.toBeInstanceOf(UserError);
    await expect(initBackend('tensorflow-gpu')).rejects.toThrow(
      /--backend tensorflow-gpu cannot start: @tensorflow\/tfjs-node-gpu is installed but its native binding is not built/,
    );
  });

  it('rejects an unknown choice, listing the valid ones', async () => {
    await expect(initBackend('metal' as never)).rejects.toThrow(
      "--backend expects one of auto, tensorflow-gpu, tensorflow, wasm, cpu, got 'metal'",
    );
  });

  it('auto runs a backend and says why each faster one was skipped', async () => {
    // A simulated NVIDIA driver, so auto gets as far as looking for tfjs-node-gpu (verbose.test.ts
    // runs the CLI without one).
    const driver = join(mkdtempSync(join(tmpdir(), 'baka-gpu-')), 'nvidia-version');
    writeFileSync(driver, 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14\n');
    process.env.BAKA_NVIDIA_DRIVER_FILE = driver;
    const report = await initBackend('auto').finally(() => {
      delete process.env.BAKA_NVIDIA_DRIVER_FILE;
    });
    expect(tf.getBackend()).toBe(report.name);
    const order = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
    // Every backend before the one that runs appears in `skipped`, in order, with a reason.
    expect(report.skipped.map((s) => s.backend)).toEqual(
      order.slice(0, order.indexOf(report.backend)),
    );
    expect(report.skipped[0]).toEqual({
      backend: 'tensorflow-gpu',
      reason: expect.stringContaining(
        '@tensorflow/tfjs-node-gpu is installed but its native binding is not built',
      ),
    });
    const line = describeBackend(report);
    expect(line).toContain(`backend: ${report.name}`);
    // The missing GPU build is said only with --verbose.
    expect(line).not.toContain('tensorflow-gpu');
    setVerbose(true);
    try {
      expect(describeBackend(report)).toContain(
        'auto skipped tensorflow-gpu: @tensorflow/tfjs-node-gpu is installed but its native binding is not built',
      );
    } finally {
      setVerbose(false);
    }
    expect(report.threads.count).toBeGreaterThanOrEqual(1);
    expect(report.versions.tfjs).toBe(tf.version_core);
    if (report.name === 'tensorflow') expect(report.versions.tensorflow).toMatch(/^\d+\.\d+/);
  });

  it('a forced backend reports the user choice as the reason and a real thread count', async () => {
    const report = await initBackend('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(report).toMatchObject({ name: 'cpu', backend: 'cpu', choice: 'cpu', skipped: [] });
    expect(report.threads.count).toBe(1);
    expect(describeBackend(report)).toBe('backend: cpu, 1 thread (chosen with --backend cpu)');
  });
});

describe('explainNativeLoadError', () => {
  it('turns the missing-binding error into the setup command', () => {
    // The message tfjs-node 4.22 throws when lib/napi-v8/tfjs_binding.node does not exist.
    const error = new Error(
      'The Node.js native addon module (tfjs_binding.node) can not be found at path: /x/lib/napi-v8/tfjs_binding.node. \nPlease run command ...',
    );
    expect(explainNativeLoadError('@tensorflow/tfjs-node', error)).toBe(
      '@tensorflow/tfjs-node is installed but its native binding is not built; run `pnpm setup:native`',
    );
  });

  it('names libtensorflow when the dynamic loader cannot find it', () => {
    const error = new Error(
      'libtensorflow_cc.so.2: cannot open shared object file: No such file or directory',
    );
    const reason = explainNativeLoadError('@tensorflow/tfjs-node', error);
    expect(reason).toContain('cannot load libtensorflow');
    expect(reason).toContain('libtensorflow_cc.so.2: cannot open shared object file');
    expect(reason).toContain('run `pnpm setup:native`');
  });
});
