// The "auto skipped tensorflow-gpu" note: on every command only with --verbose; doctor always.
// Auto tries the GPU build only where it sees an NVIDIA driver, simulated here by a driver file
// (BAKA_NVIDIA_DRIVER_FILE) or a fake nvidia-smi on PATH. This machine has no GPU; tfjs-node-gpu is
// installed (optional dependency) but setup-native left it unbuilt, so auto falls back every time.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../bin/baka.js', import.meta.url));
const checkpoint = fileURLToPath(
  new URL('../../../packages/model/__fixtures__/tiny-torch', import.meta.url),
);
const scratch = mkdtempSync(join(tmpdir(), 'baka-verbose-'));
const systemPath = `${join(process.execPath, '..')}:/usr/bin:/bin`;
const noGpu = { BAKA_NVIDIA_DRIVER_FILE: join(scratch, 'no-such-file'), PATH: systemPath };

function backendLine(extra: string[], env: NodeJS.ProcessEnv = noGpu): string {
  const result = spawnSync(
    process.execPath,
    [
      bin,
      'eval',
      '--checkpoint',
      checkpoint,
      '--input-ids',
      `${checkpoint}/input-ids.json`,
      ...extra,
    ],
    { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } },
  );
  expect(result.status, result.stderr).toBe(0);
  return result.stderr.split('\n').find((line) => line.startsWith('backend: ')) ?? '';
}

describe('--verbose', () => {
  it('only --verbose says that auto skipped tensorflow-gpu', () => {
    expect(backendLine([])).not.toContain('tensorflow-gpu');
    expect(backendLine(['--verbose'])).toContain('auto skipped tensorflow-gpu');
  });
});

describe('--backend auto and the GPU', () => {
  it('without a GPU, skips tensorflow-gpu with the reason that no GPU device was seen', () => {
    expect(backendLine(['--verbose'])).toContain(
      `auto skipped tensorflow-gpu: no GPU device seen (no ${noGpu.BAKA_NVIDIA_DRIVER_FILE} and no GPU from nvidia-smi -L)`,
    );
  });

  it('with a simulated driver file, loads the GPU build, which setup-native left inactive', () => {
    const driver = join(scratch, 'nvidia-version');
    writeFileSync(driver, 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14\n');
    const line = backendLine(['--verbose'], { ...noGpu, BAKA_NVIDIA_DRIVER_FILE: driver });
    expect(line).toContain(
      'auto skipped tensorflow-gpu: @tensorflow/tfjs-node-gpu is installed but its native binding is not built',
    );
    expect(line).not.toContain('no GPU device seen');
  });

  it('with a fake nvidia-smi listing a GPU, does the same; a failing nvidia-smi counts as none', () => {
    const fakeBin = join(scratch, 'bin');
    mkdirSync(fakeBin, { recursive: true });
    const smi = join(fakeBin, 'nvidia-smi');
    writeFileSync(smi, '#!/bin/sh\necho "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-0)"\n');
    chmodSync(smi, 0o755);
    const withSmi = { ...noGpu, PATH: `${fakeBin}:${systemPath}` };
    expect(backendLine(['--verbose'], withSmi)).toContain(
      'auto skipped tensorflow-gpu: @tensorflow/tfjs-node-gpu is installed but its native binding is not built',
    );
    writeFileSync(smi, '#!/bin/sh\necho "NVIDIA-SMI has failed" >&2\nexit 9\n');
    expect(backendLine(['--verbose'], withSmi)).toContain('tensorflow-gpu: no GPU device seen');
  });
});
