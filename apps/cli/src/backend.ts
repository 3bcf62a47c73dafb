// Chooses the TensorFlow.js backend at the edge. Libraries only depend on tfjs-core; this module
// imports the backend packages, tries them fastest first, and reports why faster ones did not run.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Option } from 'commander';
import { detectNvidiaDriver } from '../../../scripts/nvidia-driver.mjs';
import { UserError } from './cli-kit';

export const BACKEND_CHOICES = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
type ConcreteBackend = Exclude<BackendChoice, 'auto'>;

/** The order `auto` tries, fastest first. */
export const AUTO_ORDER: readonly ConcreteBackend[] = [
  'tensorflow-gpu',
  'tensorflow',
  'wasm',
  'cpu',
];

/** The command that repairs a missing native binding. */
export const NATIVE_FIX = 'pnpm setup:native';

export interface BackendReport {
  /** The tfjs backend name now active ('tensorflow', 'wasm', 'cpu'). */
  name: string;
  /** Which choice produced it ('tensorflow-gpu' and 'tensorflow' both run as tfjs 'tensorflow'). */
  backend: ConcreteBackend;
  /** What the user asked for. */
  choice: BackendChoice;
  /** One line per faster backend that was tried and failed, with the reason. */
  skipped: { backend: BackendChoice; reason: string }[];
  /** Threads the backend computes with, and how that number was found. */
  threads: { count: number; available: number; source: string };
  /** Versions: tfjs-core, tfjs-node (when native), the TensorFlow C library (when native). */
  versions: { tfjs: string; tfjsNode?: string; tensorflow?: string };
}

const require = createRequire(import.meta.url);

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0] ?? 'unknown error';
}

function isInstalled(packageName: string): boolean {
  try {
    require.resolve(`${packageName}/package.json`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Turns a failure to load @tensorflow/tfjs-node(-gpu) into a reason with the fix. Exported for
 * tests: the messages are the ones tfjs-node and the dynamic loader actually throw.
 */
export function explainNativeLoadError(packageName: string, error: unknown): string {
  const message = firstLine(error);
  if (/tfjs_binding\.node\) can not be found/.test(message)) {
    return `${packageName} is installed but its native binding is not built; run \`${NATIVE_FIX}\``;
  }
  if (/cannot open shared object file|libtensorflow|undefined symbol/.test(message)) {
    return `${packageName}'s native binding cannot load libtensorflow (${message.slice(0, 160)}); run \`${NATIVE_FIX}\``;
  }
  return `${packageName} failed to load (${message.slice(0, 200)}); run \`${NATIVE_FIX}\``;
}

/**
 * Quiets TensorFlow's start-up logging before the native library loads (a value the user set
 * wins): TF_CPP_MIN_LOG_LEVEL=2 hides info and warnings such as cpu_feature_guard, not errors.
 * Where oneDNN's custom ops are on, TensorFlow 2.21 still prints two lines whatever the level
 * (absl's "All log messages before absl::InitializeLog()" warning and "oneDNN custom operations
 * are on"); bin/baka.js drops them from the CLI's stderr (bin/native-log-filter.js). oneDNN stays
 * on: TF_ENABLE_ONEDNN_OPTS=0 was measured to cost speed (tiny, quick bench, two rounds each:
 * training 1624 / 1435 -> 1157 / 1181 tokens/s, eval 3781 / 4492 -> 3186 / 3140).
 */
export function quietNativeLogs(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  return env;
}

/** The TensorFlow C library's thread pool: TF_NUM_INTRAOP_THREADS, else one per available core. */
function nativeThreads(): BackendReport['threads'] {
  const available = availableParallelism();
  const fromEnv = Number(process.env.TF_NUM_INTRAOP_THREADS);
  if (Number.isInteger(fromEnv) && fromEnv > 0) {
    return {
      count: fromEnv,
      available,
      source: 'TensorFlow intra-op threads from TF_NUM_INTRAOP_THREADS',
    };
  }
  return {
    count: available,
    available,
    source: 'TensorFlow intra-op threads (default: one per available core)',
  };
}

async function loadNative(packageName: '@tensorflow/tfjs-node' | '@tensorflow/tfjs-node-gpu') {
  if (!isInstalled(packageName)) {
    throw new Error(
      packageName.endsWith('-gpu')
        ? `${packageName} is not installed (optional dependency; run pnpm install)`
        : `${packageName} is not installed (optional dependency; run pnpm install, then \`${NATIVE_FIX}\`)`,
    );
  }
  let native: { version?: Record<string, string> };
  try {
    native = (await import(packageName)) as typeof native;
  } catch (error) {
    throw new Error(explainNativeLoadError(packageName, error));
  }
  if (!(await tf.setBackend('tensorflow')))
    throw new Error(`${packageName} loaded but the tensorflow backend failed to initialise`);
  const binding = (tf.backend() as unknown as { binding?: { TF_Version?: string } }).binding;
  return { tfjsNode: native.version?.['tfjs-node'], tensorflow: binding?.TF_Version };
}

/**
 * tfjs-core alone registers no gradient functions or chained ops; the `@tensorflow/tfjs` union
 * package does (tfjs-node imports it too). Without it, training on wasm or cpu would fail with
 * "gradient function not found".
 */
async function registerGradients(): Promise<void> {
  await import('@tensorflow/tfjs');
}

/**
 * `auto` tries tensorflow-gpu only where a GPU is seen: the NVIDIA driver, found the way
 * setup-native finds it. The binding's own answer (`isUsingGpuDevice`) comes only after the GPU
 * build has loaded and registered the 'tensorflow' backend, too late for auto to fall back to
 * tfjs-node cleanly, so it is not asked.
 */
function requireGpuDevice(): void {
  const driver = detectNvidiaDriver();
  if (!driver.found) throw new Error(`no GPU device seen (${driver.detail})`);
}

async function tryBackend(
  backend: ConcreteBackend,
  choice: BackendChoice,
): Promise<
  Pick<BackendReport, 'name' | 'threads'> & { versions: Partial<BackendReport['versions']> }
> {
  quietNativeLogs();
  switch (backend) {
    case 'tensorflow-gpu': {
      if (choice === 'auto') requireGpuDevice();
      const versions = await loadNative('@tensorflow/tfjs-node-gpu');
      return { name: 'tensorflow', threads: nativeThreads(), versions };
    }
    case 'tensorflow': {
      const versions = await loadNative('@tensorflow/tfjs-node');
      return { name: 'tensorflow', threads: nativeThreads(), versions };
    }
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const dist = join(
        dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')),
        'dist/',
      );
      wasm.setWasmPaths(dist);
      if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
      const count = wasm.getThreadsCount();
      return {
        name: 'wasm',
        threads: {
          count,
          available: availableParallelism(),
          source: 'WebAssembly threads (Node runs the single-threaded SIMD build)',
        },
        versions: {},
      };
    }
    case 'cpu': {
      await import('@tensorflow/tfjs-backend-cpu');
      if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
      // The cpu backend nags once about installing tfjs-node; we already say why cpu runs.
      const cpu = tf.backend() as unknown as { firstUse?: boolean };
      if ('firstUse' in cpu) cpu.firstUse = false;
      return {
        name: 'cpu',
        threads: {
          count: 1,
          available: availableParallelism(),
          source: 'pure JavaScript on the main thread',
        },
        versions: {},
      };
    }
  }
}

export interface NativeStatus {
  available: boolean;
  /** Why not, with the fix; or the TensorFlow version when available. */
  detail: string;
}

const PROBE_SCRIPT = `
const tf = require(process.argv[1]);
const product = tf.matMul(tf.ones([2, 2]), tf.ones([2, 2])).dataSync();
if (product[0] !== 2) throw new Error('matMul gave ' + product[0] + ' instead of 2');
process.stdout.write('\\n' + JSON.stringify({ tensorflow: tf.backend().binding.TF_Version }) + '\\n');
`;

/**
 * Whether @tensorflow/tfjs-node loads and runs a matmul, checked in a child process so the
 * current process keeps the backend it chose (used by `baka doctor` when another backend runs).
 */
export function probeNative(packageName = '@tensorflow/tfjs-node'): NativeStatus {
  if (!isInstalled(packageName)) {
    return {
      available: false,
      detail: `${packageName} is not installed (optional dependency; run pnpm install)`,
    };
  }
  const result = spawnSync(process.execPath, ['-e', PROBE_SCRIPT, require.resolve(packageName)], {
    encoding: 'utf8',
    timeout: 120_000,
    env: quietNativeLogs({ ...process.env }),
  });
  try {
    const { tensorflow } = JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as {
      tensorflow: string;
    };
    return { available: true, detail: `TensorFlow ${tensorflow}` };
  } catch {
    const error =
      `${result.stderr}`.split('\n').find((line) => /^\w*Error: /.test(line)) ??
      `exit code ${result.status}`;
    return {
      available: false,
      detail: explainNativeLoadError(packageName, error.replace(/^\w*Error: /, '')),
    };
  }
}

/** Activates the requested backend ('auto': tensorflow-gpu, tensorflow, wasm, cpu in order). */
export async function initBackend(choice: BackendChoice = 'auto'): Promise<BackendReport> {
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new UserError(`--backend expects one of ${BACKEND_CHOICES.join(', ')}, got '${choice}'`);
  }
  const order: readonly ConcreteBackend[] = choice === 'auto' ? AUTO_ORDER : [choice];
  const skipped: BackendReport['skipped'] = [];
  await registerGradients();
  for (const backend of order) {
    try {
      const { name, threads, versions } = await tryBackend(backend, choice);
      await tf.ready();
      return {
        name,
        backend,
        choice,
        skipped,
        threads,
        versions: { tfjs: tf.version_core, ...versions },
      };
    } catch (error) {
      skipped.push({ backend, reason: firstLine(error) });
    }
  }
  if (choice !== 'auto') {
    throw new UserError(
      `--backend ${choice} cannot start: ${skipped[0]?.reason ?? 'unknown error'}`,
    );
  }
  throw new UserError(
    `no TensorFlow.js backend could start for --backend auto:\n${skipped.map((s) => `  ${s.backend}: ${s.reason}`).join('\n')}`,
  );
}

/** Why this backend runs: the user's choice, or which faster backends auto skipped and why. */
export function backendReason(report: BackendReport): string {
  if (report.choice !== 'auto') return `chosen with --backend ${report.choice}`;
  if (report.skipped.length === 0) return 'the fastest backend (auto)';
  return `auto skipped ${report.skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`;
}

let verbose = false;

/** `--verbose`: describeBackend also says that auto skipped tensorflow-gpu (doctor always does). */
export function setVerbose(value: boolean): void {
  verbose = value;
}

/** One line saying which backend runs and why faster ones did not, for stderr. */
export function describeBackend(report: BackendReport): string {
  const label = report.backend === 'tensorflow-gpu' ? 'tensorflow (GPU build)' : report.name;
  // Most machines have no GPU build: its skip is noise on every command, so only --verbose says it.
  const shown = verbose
    ? report
    : { ...report, skipped: report.skipped.filter((s) => s.backend !== 'tensorflow-gpu') };
  return `backend: ${label}, ${report.threads.count} thread${report.threads.count === 1 ? '' : 's'} (${backendReason(shown)})`;
}

/** The shared `--backend` option. */
export function backendOption(): Option {
  return new Option(
    '--backend <name>',
    'compute backend (auto tries tensorflow-gpu, tensorflow, wasm, cpu)',
  )
    .choices(BACKEND_CHOICES)
    .default('auto');
}
