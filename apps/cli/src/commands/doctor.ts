// `baka doctor`: which backend runs and why, versions, threads, a measured fp32 matmul speed, and
// the devices (CPU, and the GPUs the NVIDIA driver detection sees).
// When the native TensorFlow backend is not the one running, it prints the exact fix.
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type { Command } from 'commander';
import { detectNvidiaDriver } from '../../../../scripts/nvidia-driver.mjs';
import {
  type BackendChoice,
  type BackendReport,
  NATIVE_FIX,
  type NativeStatus,
  backendOption,
  backendReason,
  initBackend,
  probeNative,
} from '../backend';
import { action, parseIntFlag } from '../cli-kit';

export interface MatmulMeasurement {
  /** Square matrix size n: the product of two [n, n] fp32 matrices. */
  size: number;
  /** Timed runs after one warm-up; the median is reported. */
  runs: number;
  medianMs: number;
  /** 2·n³ floating-point operations per product over the median time. */
  gflops: number;
}

export interface DoctorReport {
  backend: string;
  choice: BackendChoice;
  reason: string;
  skipped: BackendReport['skipped'];
  versions: BackendReport['versions'] & { node: string };
  threads: BackendReport['threads'];
  matmul: MatmulMeasurement;
  /** Native TensorFlow: running here; else whether it would load, why not, and the fix. */
  native: { running: boolean; available: boolean; detail: string; fix: string | null };
  devices: Devices;
}

export interface Devices {
  /** Logical cores and the model name, from /proc/cpuinfo (Node's os.cpus() elsewhere). */
  cpu: { cores: number; model: string };
  /** One line per GPU from `nvidia-smi -L`, or the NVIDIA driver file's version line. */
  gpus: string[];
  /** What the GPU detection found or looked for (the same detection `--backend auto` uses). */
  gpuDetection: string;
}

/** The machine's compute devices: the CPU, and the GPUs the NVIDIA driver detection sees. */
export function listDevices(): Devices {
  let cpu: Devices['cpu'];
  if (existsSync('/proc/cpuinfo')) {
    const lines = readFileSync('/proc/cpuinfo', 'utf8').split('\n');
    const model = lines
      .find((line) => /^model name\s*:/.test(line))
      ?.split(':')[1]
      ?.trim();
    cpu = {
      cores: lines.filter((line) => /^processor\s*:/.test(line)).length,
      model: model ?? 'unknown model',
    };
  } else {
    cpu = { cores: cpus().length, model: cpus()[0]?.model.trim() ?? 'unknown model' };
  }
  const driver = detectNvidiaDriver();
  return { cpu, gpus: driver.devices, gpuDetection: driver.detail };
}

/**
 * Times `matMul` of two [size, size] fp32 matrices on the active backend: one warm-up, then runs
 * until `minRuns` and `budgetMs` are both reached (at most `maxRuns`). `dataSync` makes every run
 * wait for the result, so asynchronous backends are timed to completion.
 */
export function measureMatmul(
  size: number,
  { minRuns = 3, maxRuns = 50, budgetMs = 1500 } = {},
): MatmulMeasurement {
  const [a, b] = tf.tidy(() => [
    tf.randomUniform([size, size], -1, 1, 'float32', 1),
    tf.randomUniform([size, size], -1, 1, 'float32', 2),
  ]);
  try {
    const once = (): number => {
      const start = performance.now();
      const product = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D); // [size, size]
      product.dataSync();
      product.dispose();
      return performance.now() - start;
    };
    once();
    const times: number[] = [];
    const started = performance.now();
    while (
      times.length < maxRuns &&
      (times.length < minRuns || performance.now() - started < budgetMs)
    ) {
      times.push(once());
    }
    times.sort((x, y) => x - y);
    const medianMs = times[Math.floor(times.length / 2)] as number;
    return { size, runs: times.length, medianMs, gflops: (2 * size ** 3) / (medianMs * 1e6) };
  } finally {
    a?.dispose();
    b?.dispose();
  }
}

/** Native status: from the running backend, from auto's skip reason, or probed in a child process. */
export function nativeStatus(report: BackendReport): NativeStatus {
  if (report.name === 'tensorflow') {
    return {
      available: true,
      detail: `TensorFlow ${report.versions.tensorflow ?? '(version unknown)'}`,
    };
  }
  const skipped = report.skipped.find((s) => s.backend === 'tensorflow');
  return skipped ? { available: false, detail: skipped.reason } : probeNative();
}

/** The exact fix when native TensorFlow cannot run, or null when it can. */
export function nativeFix(status: NativeStatus): string | null {
  if (status.available) return null;
  if (/not installed/.test(status.detail)) {
    return `run \`pnpm install\` (@tensorflow/tfjs-node is an optional dependency), then \`${NATIVE_FIX}\``;
  }
  return `run \`${NATIVE_FIX}\` (it needs pip, or BAKA_TF_WHEEL=/path/to/tensorflow_cpu-<version>-...-linux_x86_64.whl; see the README's "Troubleshooting the native install")`;
}

export async function runDoctor(options: {
  backend: BackendChoice;
  size: number;
}): Promise<DoctorReport> {
  const report = await initBackend(options.backend);
  const matmul = measureMatmul(options.size);
  const native = nativeStatus(report);
  return {
    backend: report.backend === 'tensorflow-gpu' ? 'tensorflow-gpu' : report.name,
    choice: report.choice,
    reason: backendReason(report),
    skipped: report.skipped,
    versions: { ...report.versions, node: process.versions.node },
    threads: report.threads,
    matmul,
    native: { running: report.name === 'tensorflow', ...native, fix: nativeFix(native) },
    devices: listDevices(),
  };
}

export function formatDoctor(report: DoctorReport): string {
  const lines = [
    `backend:     ${report.backend} (${report.reason})`,
    `tensorflow:  ${report.versions.tensorflow ? `${report.versions.tensorflow} (native library via tfjs-node ${report.versions.tfjsNode})` : 'not loaded'}`,
    `tfjs:        ${report.versions.tfjs}`,
    `node:        ${report.versions.node}`,
    `threads:     ${report.threads.count} of ${report.threads.available} available (${report.threads.source})`,
    `matmul:      ${report.matmul.gflops.toFixed(2)} GFLOP/s fp32 (${report.matmul.size}x${report.matmul.size}, median of ${report.matmul.runs} runs, ${report.matmul.medianMs.toFixed(2)} ms each)`,
  ];
  if (!report.native.running) {
    lines.push(
      `native:      ${report.native.available ? `available (${report.native.detail}); use --backend auto or tensorflow` : report.native.detail}`,
    );
  }
  if (report.native.fix) lines.push(`fix:         ${report.native.fix}`);
  const { cpu, gpus, gpuDetection } = report.devices;
  lines.push(`devices:     cpu: ${cpu.cores} core${cpu.cores === 1 ? '' : 's'}, ${cpu.model}`);
  if (gpus.length === 0) lines.push(`             gpu: none (${gpuDetection})`);
  for (const gpu of gpus) lines.push(`             gpu: ${gpu}`);
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('show the compute backend and why, versions, threads and a measured matmul speed')
    .addOption(backendOption())
    .option('--size <n>', 'matrix size for the matmul benchmark', '512')
    .option('--json', 'print the report as JSON')
    .action(
      action(async (options: { backend: BackendChoice; size: string; json?: boolean }) => {
        const size = parseIntFlag('--size', options.size, { min: 1 });
        const report = await runDoctor({ backend: options.backend, size });
        process.stdout.write(
          options.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctor(report),
        );
      }),
    );
}
