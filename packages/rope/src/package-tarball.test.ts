// Builds @baka/rope, packs it with `pnpm pack`, installs the tarball into a scratch project and
// runs one rotation from ESM (`import`) and from CommonJS (`require`), as a user of the published
// package would. No registry: the tarball is extracted into the scratch node_modules and the tfjs
// peer dependencies are symlinked from this repository's install.
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RotaryEmbedding } from './rotary-embedding';

const packageDirectory = fileURLToPath(new URL('..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'baka-rope-pack-'));
const project = join(scratch, 'project');

// The one rotation both module formats run, and the reference computed here from source.
const USAGE = `
const rope = new RotaryEmbedding({ dim: 8, layout: 'interleaved' });
const x = tf.tensor3d(Array.from({ length: 2 * 3 * 10 }, (_, i) => Math.sin(i)), [2, 3, 10]);
const out = rope.rotate(x, { offset: 7 });
console.log(JSON.stringify({ shape: out.shape, values: Array.from(out.dataSync()), backend: tf.getBackend() }));
`;

function run(file: string): { shape: number[]; values: number[]; backend: string } {
  const stdout = execFileSync(process.execPath, [file], {
    cwd: project,
    encoding: 'utf8',
    stdio: 'pipe',
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string);
}

describe('packed @baka/rope tarball', () => {
  let packedFiles: string[] = [];

  beforeAll(() => {
    execFileSync('pnpm', ['run', 'build'], { cwd: packageDirectory, stdio: 'pipe' });
    const packOutput = execFileSync('pnpm', ['pack', '--pack-destination', scratch], {
      cwd: packageDirectory,
      encoding: 'utf8',
    });
    const tarball = readdirSync(scratch).find((name) => name.endsWith('.tgz'));
    if (tarball === undefined) throw new Error(`pnpm pack wrote no tarball:\n${packOutput}`);
    packedFiles = execFileSync('tar', ['-tzf', join(scratch, tarball)], { encoding: 'utf8' })
      .trim()
      .split('\n');

    const installed = join(project, 'node_modules', '@baka', 'rope');
    mkdirSync(installed, { recursive: true });
    execFileSync('tar', ['-xzf', join(scratch, tarball), '-C', installed, '--strip-components=1']);

    // Its one dependency, @baka/common (the error base class), packed and installed the same way.
    const common = join(packageDirectory, '..', 'common');
    const commonPacks = join(scratch, 'common');
    mkdirSync(commonPacks);
    execFileSync('pnpm', ['run', 'build'], { cwd: common, stdio: 'pipe' });
    execFileSync('pnpm', ['pack', '--pack-destination', commonPacks], {
      cwd: common,
      stdio: 'pipe',
    });
    const commonTarball = readdirSync(commonPacks).find((name) => name.endsWith('.tgz'));
    if (commonTarball === undefined) throw new Error('pnpm pack wrote no @baka/common tarball');
    const commonInstalled = join(project, 'node_modules', '@baka', 'common');
    mkdirSync(commonInstalled, { recursive: true });
    execFileSync('tar', [
      '-xzf',
      join(commonPacks, commonTarball),
      '-C',
      commonInstalled,
      '--strip-components=1',
    ]);

    // Peers from this repo: link tfjs-core to the very copy tfjs-backend-cpu resolves, so both
    // share one engine.
    const repoRequire = createRequire(join(packageDirectory, '..', '..', 'package.json'));
    const backendManifest = realpathSync(
      repoRequire.resolve('@tensorflow/tfjs-backend-cpu/package.json'),
    );
    const coreManifest = realpathSync(
      createRequire(backendManifest).resolve('@tensorflow/tfjs-core/package.json'),
    );
    const tensorflowScope = join(project, 'node_modules', '@tensorflow');
    mkdirSync(tensorflowScope, { recursive: true });
    symlinkSync(dirname(backendManifest), join(tensorflowScope, 'tfjs-backend-cpu'), 'dir');
    symlinkSync(dirname(coreManifest), join(tensorflowScope, 'tfjs-core'), 'dir');

    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'scratch', private: true, type: 'module' }),
    );
    writeFileSync(
      join(project, 'use-esm.mjs'),
      `import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { RotaryEmbedding } from '@baka/rope';
await tf.setBackend('cpu');
${USAGE}`,
    );
    writeFileSync(
      join(project, 'use-cjs.cjs'),
      `const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const { RotaryEmbedding } = require('@baka/rope');
tf.setBackend('cpu').then(() => {
${USAGE}
});`,
    );
  }, 180_000);

  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it('ships the ESM and CJS builds with their types and the README, not the sources', () => {
    for (const file of [
      'dist/index.js',
      'dist/index.cjs',
      'dist/index.d.ts',
      'dist/index.d.cts',
      'README.md',
    ]) {
      expect(packedFiles).toContain(`package/${file}`);
    }
    expect(packedFiles.some((file) => file.startsWith('package/src/'))).toBe(false);
  });

  it('rotates from ESM and from CommonJS exactly as the source does', () => {
    const reference = tf.tidy(() => {
      const rope = new RotaryEmbedding({ dim: 8 });
      const x = tf.tensor3d(
        Array.from({ length: 2 * 3 * 10 }, (_, i) => Math.sin(i)),
        [2, 3, 10],
      );
      const values = Array.from(rope.rotate(x, { offset: 7 }).dataSync());
      rope.dispose();
      return values;
    });
    for (const file of ['use-esm.mjs', 'use-cjs.cjs']) {
      const result = run(file);
      expect(result.backend).toBe('cpu');
      expect(result.shape).toEqual([2, 3, 10]);
      expect(result.values.length).toBe(reference.length);
      for (let i = 0; i < reference.length; i++) {
        expect(
          Math.abs((result.values[i] as number) - (reference[i] as number)),
          `${file} [${i}]`,
        ).toBeLessThan(1e-6);
      }
    }
  });

  it('runs the README example (an attention layer using the package) as written', () => {
    const readme = readFileSync(join(packageDirectory, 'README.md'), 'utf8');
    const example = /## Example[^\n]*\n+```js\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example, 'README.md has a ```js block under "## Example"').toBeDefined();
    writeFileSync(join(project, 'readme-example.mjs'), example as string);
    const stdout = execFileSync(process.execPath, ['readme-example.mjs'], {
      cwd: project,
      encoding: 'utf8',
      stdio: 'pipe',
    });
    expect(stdout.trim().split('\n').pop()).toBe('[ 2, 5, 64 ]');
  });
});
