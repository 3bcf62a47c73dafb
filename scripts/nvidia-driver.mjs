// Whether an NVIDIA driver (and so a GPU) is present. Shared by scripts/setup-native.mjs, which
// activates tfjs-node-gpu only then, and the CLI's `--backend auto`, which picks tensorflow-gpu
// only then. Plain JavaScript so that the install script can run it before anything is built.
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/**
 * The driver's /proc file (BAKA_NVIDIA_DRIVER_FILE overrides the path, for tests) or
 * `nvidia-smi -L` on PATH listing a GPU. `devices` has one line per GPU from nvidia-smi, or the
 * driver file's version line.
 * @returns {{ found: boolean, detail: string, devices: string[] }}
 */
export function detectNvidiaDriver(env = process.env) {
  const file = env.BAKA_NVIDIA_DRIVER_FILE ?? '/proc/driver/nvidia/version';
  if (existsSync(file)) {
    const first = readFileSync(file, 'utf8').split('\n')[0]?.trim() ?? '';
    return { found: true, detail: `${file}: ${first.slice(0, 120)}`, devices: [first] };
  }
  const smi = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 20_000, env });
  const gpus =
    smi.status === 0 ? smi.stdout.split('\n').filter((line) => /^GPU \d+/.test(line)) : [];
  if (gpus.length > 0)
    return { found: true, detail: `nvidia-smi: ${gpus.join('; ').slice(0, 160)}`, devices: gpus };
  return { found: false, detail: `no ${file} and no GPU from nvidia-smi -L`, devices: [] };
}
