import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { formatDoctor, listDevices, measureMatmul, nativeFix, runDoctor } from './doctor';

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
      devices: {
        cpu: listDevices().cpu,
        gpus: expect.any(Array),
        gpuDetection: expect.any(String),
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

  it('lists the CPU from /proc/cpuinfo and the GPUs the driver detection sees (simulated), in text and --json', () => {
    const scratch = mkdtempSync(join(tmpdir(), 'baka-doctor-'));
    const systemPath = `${join(process.execPath, '..')}:/usr/bin:/bin`;
    const noGpu = { BAKA_NVIDIA_DRIVER_FILE: join(scratch, 'no-such-file'), PATH: systemPath };
    const doctor = (env: Record<string, string>, json: boolean) => {
      const result = spawnSync(
        process.execPath,
        [bin, 'doctor', '--backend', 'cpu', '--size', '16', ...(json ? ['--json'] : [])],
        { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } },
      );
      expect(result.status, result.stderr).toBe(0);
      return result.stdout;
    };
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    const cores = cpuinfo.match(/^processor\s*:/gm)?.length;
    const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1]?.trim();
    expect(JSON.parse(doctor(noGpu, true)).devices).toEqual({
      cpu: { cores, model },
      gpus: [],
      gpuDetection: `no ${noGpu.BAKA_NVIDIA_DRIVER_FILE} and no GPU from nvidia-smi -L`,
    });
    expect(doctor(noGpu, false)).toContain(
      `devices:     cpu: ${cores} core${cores === 1 ? '' : 's'}, ${model}\n             gpu: none (no ${noGpu.BAKA_NVIDIA_DRIVER_FILE}`,
    );

    const fakeBin = join(scratch, 'bin');
    mkdirSync(fakeBin);
    writeFileSync(
      join(fakeBin, 'nvidia-smi'),
      '#!/bin/sh\necho "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-0)"\necho "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-1)"\n',
    );
    chmodSync(join(fakeBin, 'nvidia-smi'), 0o755);
    const withSmi = { ...noGpu, PATH: `${fakeBin}:${systemPath}` };
    expect(JSON.parse(doctor(withSmi, true)).devices.gpus).toEqual([
      'GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-0)',
      'GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-1)',
    ]);
    expect(doctor(withSmi, false)).toContain(
      '             gpu: GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-0)\n             gpu: GPU 1:',
    );

    const driverFile = join(scratch, 'nvidia-version');
    writeFileSync(
      driverFile,
      'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14\nGCC version: 12\n',
    );
    expect(
      JSON.parse(doctor({ ...noGpu, BAKA_NVIDIA_DRIVER_FILE: driverFile }, true)).devices.gpus,
    ).toEqual(['NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14']);
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
