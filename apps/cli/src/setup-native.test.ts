// scripts/setup-native.mjs runs as the root postinstall: it must never fail an install.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../../../scripts/setup-native.mjs', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'baka-setup-native-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function runScript(path: string, args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, [path, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, BAKA_CACHE_DIR: join(scratch, 'cache'), ...env },
  });
}

describe('setup-native', () => {
  it('BAKA_SKIP_NATIVE=1 exits 0 and says why and what runs instead', () => {
    for (const args of [['--from-postinstall'], []]) {
      const result = runScript(script, args, { BAKA_SKIP_NATIVE: '1' });
      expect(result.status).toBe(0);
      expect(result.stdout).toBe(
        'setup-native: skipped because BAKA_SKIP_NATIVE=1; the CLI falls back to wasm or cpu (see `pnpm baka doctor`)\n',
      );
    }
  });

  it('without tfjs-node installed: postinstall still exits 0, a manual run exits 1, both say what to do', () => {
    // A checkout with no node_modules: the script finds no tfjs-node package to set up.
    const repo = join(scratch, 'repo');
    mkdirSync(join(repo, 'scripts'), { recursive: true });
    const copy = join(repo, 'scripts', 'setup-native.mjs');
    copyFileSync(script, copy);
    copyFileSync(
      join(script, '..', 'nvidia-driver.mjs'),
      join(repo, 'scripts', 'nvidia-driver.mjs'),
    );
    const postinstall = runScript(copy, ['--from-postinstall'], {});
    expect(postinstall.status).toBe(0);
    expect(postinstall.stdout).toContain('setup-native: @tensorflow/tfjs-node is not installed');
    expect(postinstall.stdout).toContain('falls back to wasm or cpu');
    const manual = runScript(copy, [], {});
    expect(manual.status).toBe(1);
    expect(manual.stdout).toContain('setup-native: @tensorflow/tfjs-node is not installed');
  });

  it('activates the GPU build only with an NVIDIA driver: /proc file or nvidia-smi (simulated)', () => {
    const bin = join(scratch, 'fake-bin');
    mkdirSync(bin, { recursive: true });
    const none = { BAKA_NVIDIA_DRIVER_FILE: join(scratch, 'no-such-file'), PATH: '/usr/bin:/bin' };
    const absent = runScript(script, ['--detect-gpu'], none);
    expect(absent.status).toBe(1);
    expect(absent.stdout).toContain('setup-native: no NVIDIA driver');

    const proc = join(scratch, 'nvidia-version');
    writeFileSync(proc, 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14\n');
    const fromProc = runScript(script, ['--detect-gpu'], {
      ...none,
      BAKA_NVIDIA_DRIVER_FILE: proc,
    });
    expect(fromProc.status).toBe(0);
    expect(fromProc.stdout).toContain(`NVIDIA driver found (${proc}: NVRM version`);

    const smi = join(bin, 'nvidia-smi');
    writeFileSync(smi, '#!/bin/sh\necho "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-0)"\n');
    chmodSync(smi, 0o755);
    const fromSmi = runScript(script, ['--detect-gpu'], { ...none, PATH: `${bin}:/usr/bin:/bin` });
    expect(fromSmi.status).toBe(0);
    expect(fromSmi.stdout).toContain('NVIDIA driver found (nvidia-smi: GPU 0: NVIDIA A100');

    // nvidia-smi without a GPU (driver missing) does not count.
    writeFileSync(smi, '#!/bin/sh\necho "NVIDIA-SMI has failed" >&2\nexit 9\n');
    expect(
      runScript(script, ['--detect-gpu'], { ...none, PATH: `${bin}:/usr/bin:/bin` }).status,
    ).toBe(1);
  });
  it("pip's retry warnings are not echoed on an offline machine; its ERROR line is", () => {
    // A checkout whose tfjs-node has no binding, no cached build and no download: setup-native
    // goes to `pip download`, and pip (a stand-in on PATH) prints what it prints offline.
    const repo = join(scratch, 'offline');
    const tfjs = join(repo, 'node_modules', '@tensorflow', 'tfjs-node');
    mkdirSync(join(repo, 'scripts'), { recursive: true });
    mkdirSync(tfjs, { recursive: true });
    for (const name of ['setup-native.mjs', 'nvidia-driver.mjs'])
      copyFileSync(join(script, '..', name), join(repo, 'scripts', name));
    writeFileSync(
      join(tfjs, 'package.json'),
      JSON.stringify({
        name: '@tensorflow/tfjs-node',
        version: '4.22.0',
        binary: {
          module_name: 'tfjs_binding',
          module_path: './lib/napi-v{napi_build_version}',
          napi_versions: [8],
        },
      }),
    );
    writeFileSync(join(tfjs, 'binding.gyp'), '{}');
    const bin = join(scratch, 'offline-bin');
    mkdirSync(bin, { recursive: true });
    const retry =
      "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError(...)': /simple/tensorflow-cpu/";
    writeFileSync(
      join(bin, 'pip'),
      [
        '#!/bin/sh',
        'if [ "$1" = "--version" ]; then echo "pip 23.2.1"; exit 0; fi',
        `echo "${retry.replaceAll('"', '\\"')}" >&2`,
        `echo "${retry.replaceAll('"', '\\"').replace('total=4', 'total=3')}" >&2`,
        'echo "ERROR: Could not find a version that satisfies the requirement tensorflow-cpu" >&2',
        'exit 1',
      ].join('\n'),
    );
    chmodSync(join(bin, 'pip'), 0o755);
    const result = runScript(join(repo, 'scripts', 'setup-native.mjs'), [], {
      PATH: `${bin}:/usr/bin:/bin`,
      BAKA_NATIVE_DOWNLOAD: '0',
      BAKA_CACHE_DIR: join(scratch, 'offline-cache'),
      BAKA_NVIDIA_DRIVER_FILE: join(scratch, 'no-such-file'),
    });
    const output = `${result.stdout}${result.stderr}`;
    expect(result.status).toBe(1);
    expect(output).toContain('ERROR: Could not find a version that satisfies the requirement');
    expect(output).not.toMatch(/Retrying/);
  });
});
