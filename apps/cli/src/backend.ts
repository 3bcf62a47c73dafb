// Chooses the TensorFlow.js backend at the edge. Libraries only depend on tfjs-core; this module
// imports the backend packages, tries them fastest first, and reports why faster ones did not run.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Option } from 'commander';
import { UserError } from './cli-kit';

export const BACKEND_CHOICES = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendReport {
  /** The tfjs backend name now active ('tensorflow', 'wasm', 'cpu'). */
  name: string;
  /** What the user asked for. */
  choice: BackendChoice;
  /** One line per faster backend that was tried and failed, with the reason. */
  skipped: { backend: BackendChoice; reason: string }[];
}

const require = createRequire(import.meta.url);

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0] ?? 'unknown error';
}

async function tryBackend(backend: Exclude<BackendChoice, 'auto'>): Promise<string> {
  switch (backend) {
    case 'tensorflow-gpu': {
      await import('@tensorflow/tfjs-node-gpu' as string);
      await tf.setBackend('tensorflow');
      return 'tensorflow';
    }
    case 'tensorflow': {
      await import('@tensorflow/tfjs-node');
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tensorflow backend failed to initialise');
      return 'tensorflow';
    }
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const dist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist/');
      wasm.setWasmPaths(dist);
      if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to initialise');
      return 'wasm';
    }
    case 'cpu': {
      await import('@tensorflow/tfjs-backend-cpu');
      await tf.setBackend('cpu');
      return 'cpu';
    }
  }
}

/** Activates the requested backend ('auto': tensorflow-gpu, tensorflow, wasm, cpu in order). */
export async function initBackend(choice: BackendChoice = 'auto'): Promise<BackendReport> {
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new UserError(`--backend expects one of ${BACKEND_CHOICES.join(', ')}, got '${choice}'`);
  }
  const order: Exclude<BackendChoice, 'auto'>[] =
    choice === 'auto' ? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] : [choice];
  const skipped: BackendReport['skipped'] = [];
  for (const backend of order) {
    if (backend === 'tensorflow-gpu' && choice === 'auto' && process.env.BAKA_TRY_GPU !== '1') {
      skipped.push({ backend, reason: 'no GPU build installed (set BAKA_TRY_GPU=1 to try @tensorflow/tfjs-node-gpu)' });
      continue;
    }
    try {
      const name = await tryBackend(backend);
      await tf.ready();
      return { name, choice, skipped };
    } catch (error) {
      skipped.push({ backend, reason: firstLine(error) });
    }
  }
  throw new UserError(
    `no TensorFlow.js backend could start for --backend ${choice}:\n${skipped.map((s) => `  ${s.backend}: ${s.reason}`).join('\n')}`,
  );
}

/** One line saying which backend runs and why faster ones did not, for stderr. */
export function describeBackend(report: BackendReport): string {
  const why = report.skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ');
  return `backend: ${report.name}${why ? ` (skipped ${why})` : ''}`;
}

/** The shared `--backend` option. */
export function backendOption(): Option {
  return new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto');
}
