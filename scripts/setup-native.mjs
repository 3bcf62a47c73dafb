#!/usr/bin/env node
// Makes the native TensorFlow binding of @tensorflow/tfjs-node (and tfjs-node-gpu) work.
//
// Run by the root `postinstall` (never fails the install) and by hand as `pnpm setup:native`
// (exits 1 when it cannot succeed). For each installed tfjs-node package:
//   1. the binding already loads and runs a matmul in a child process -> done;
//   2. a verified build for this package/Node ABI sits in the cache -> link it in, verify, done;
//   3. the package's own install script (downloads libtensorflow 2.9.1), with a short timeout;
//   4. a TensorFlow Python wheel (BAKA_TF_WHEEL, else `pip download tensorflow-cpu --no-deps`):
//      extract libtensorflow_cc.so.2 + libtensorflow_framework.so.2 + headers, build the binding
//      with node-gyp, install it, verify it with a real op, then publish it to the cache
//      (temp dir + rename, so a partial or concurrent build is never used).
// Cache: $BAKA_CACHE_DIR, else $XDG_CACHE_HOME/baka, else ~/.cache/baka; builds in native/<key>/.
//
// Environment: BAKA_SKIP_NATIVE=1 (do nothing), BAKA_TF_WHEEL / BAKA_TF_GPU_WHEEL (wheel path),
// BAKA_TF_PIP_SPEC / BAKA_TF_GPU_PIP_SPEC (what pip downloads), BAKA_NATIVE_DOWNLOAD=0 (skip the
// package's own download), BAKA_NATIVE_DOWNLOAD_TIMEOUT (seconds, default 60). Flags:
// --from-postinstall (always exit 0), --rebuild (ignore a working binding and the cache).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectNvidiaDriver } from './nvidia-driver.mjs';

const args = new Set(process.argv.slice(2));
const fromPostinstall = args.has('--from-postinstall');
const rebuild = args.has('--rebuild');
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const startedAt = Date.now();

/** Thrown for an expected failure whose message tells the user what went wrong. */
class SetupError extends Error {}

/** Reads an environment variable (these configure an install step, not a turbo task). */
function env(name) {
  return process.env[name];
}

function log(message) {
  process.stdout.write(`setup-native: ${message}\n`);
}

function seconds() {
  return `${((Date.now() - startedAt) / 1000).toFixed(1)} s`;
}

function cacheRoot() {
  if (env('BAKA_CACHE_DIR')) return resolve(env('BAKA_CACHE_DIR'));
  if (env('XDG_CACHE_HOME')) return join(resolve(env('XDG_CACHE_HOME')), 'baka');
  return join(homedir(), '.cache', 'baka');
}

// ---------------------------------------------------------------------------------------------
// Finding the installed packages

/** Installed tfjs-node / tfjs-node-gpu package directories (real paths, deduplicated). */
function findPackages() {
  const found = new Map();
  const add = (dir) => {
    if (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'binding.gyp'))) return;
    const real = realpathSync(dir);
    const pkg = JSON.parse(readFileSync(join(real, 'package.json'), 'utf8'));
    found.set(real, {
      dir: real,
      name: pkg.name,
      version: pkg.version,
      gpu: pkg.name.endsWith('-gpu'),
    });
  };
  const store = join(repoRoot, 'node_modules', '.pnpm');
  if (existsSync(store)) {
    for (const entry of readdirSync(store)) {
      const match = /^@tensorflow\+(tfjs-node(?:-gpu)?)@/.exec(entry);
      if (match) add(join(store, entry, 'node_modules', '@tensorflow', match[1]));
    }
  }
  for (const name of ['tfjs-node', 'tfjs-node-gpu'])
    add(join(repoRoot, 'node_modules', '@tensorflow', name));
  return [...found.values()];
}

/** Where the package's loader (node-pre-gyp `find`) expects tfjs_binding.node. */
function bindingPath(pkg) {
  try {
    const requireFromPackage = createRequire(join(pkg.dir, 'package.json'));
    return requireFromPackage('@mapbox/node-pre-gyp').find(join(pkg.dir, 'package.json'));
  } catch {
    // Same rule as node-pre-gyp: the highest N-API version the package lists that Node supports.
    const pkgJson = JSON.parse(readFileSync(join(pkg.dir, 'package.json'), 'utf8'));
    const supported = Number(process.versions.napi);
    const napi = Math.max(...pkgJson.binary.napi_versions.filter((v) => v <= supported));
    return join(pkg.dir, 'lib', `napi-v${napi}`, 'tfjs_binding.node');
  }
}

function napiVersionOf(path) {
  const match = /napi-v(\d+)/.exec(path);
  if (!match) throw new SetupError(`cannot tell the N-API version from the binding path ${path}`);
  return Number(match[1]);
}

// ---------------------------------------------------------------------------------------------
// Verifying: load the package in a fresh process and run a real op

const VERIFY_SCRIPT = `
const tf = require(process.argv[1]);
const a = tf.tensor2d([1, 2, 3, 4], [2, 2]);
const product = Array.from(tf.matMul(a, a).dataSync());
const binding = tf.backend().binding;
process.stdout.write('\\n' + JSON.stringify({
  backend: tf.getBackend(),
  ok: tf.getBackend() === 'tensorflow' && product.join(',') === '7,10,15,22',
  product,
  tensorflow: binding && binding.TF_Version,
}) + '\\n');
`;

/** { ok: true, tensorflow } when the binding loads and multiplies correctly, else { ok: false, reason }. */
function verify(pkg, binding) {
  if (binding && !existsSync(binding)) {
    return { ok: false, reason: `no binding at ${binding.slice(pkg.dir.length + 1)} yet` };
  }
  const result = spawnSync(process.execPath, ['-e', VERIFY_SCRIPT, pkg.dir], {
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  const last = (result.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    const parsed = JSON.parse(last);
    if (parsed.ok) return { ok: true, tensorflow: parsed.tensorflow };
    return {
      ok: false,
      reason: `backend ${parsed.backend} gave ${JSON.stringify(parsed.product)}`,
    };
  } catch {
    const lines = `${result.stderr ?? ''}`.split('\n').filter((line) => /^\w*Error: /.test(line));
    const reason = result.error ? result.error.message : (lines[0] ?? `exit code ${result.status}`);
    return { ok: false, reason: reason.trim().slice(0, 300) };
  }
}

// ---------------------------------------------------------------------------------------------
// The cache

function cacheKey(pkg, napi, wheel) {
  const short = pkg.name.replace('@tensorflow/', '');
  const node = `node-abi${process.versions.modules}-napi${napi}-${process.platform}-${process.arch}`;
  return `${wheel.distribution}-${wheel.version}+${short}-${pkg.version}+${node}`;
}

/** A cache entry is complete when its manifest exists and every listed file has its size. */
function readEntry(dir) {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    for (const [file, size] of Object.entries(manifest.files)) {
      if (statSync(join(dir, file)).size !== size) return undefined;
    }
    return { dir, manifest };
  } catch {
    return undefined;
  }
}

/** The newest complete build for this package, N-API version and Node ABI (any TF version). */
function findCachedEntry(pkg, napi) {
  const nativeDir = join(cacheRoot(), 'native');
  if (!existsSync(nativeDir)) return undefined;
  const short = pkg.name.replace('@tensorflow/', '');
  const suffix = `+${short}-${pkg.version}+node-abi${process.versions.modules}-napi${napi}-${process.platform}-${process.arch}`;
  const wanted = process.env[pkg.gpu ? 'BAKA_TF_GPU_WHEEL' : 'BAKA_TF_WHEEL'];
  const wantedPrefix = wanted ? wheelInfo(wanted) : undefined;
  const entries = readdirSync(nativeDir)
    .filter((name) => name.endsWith(suffix) && !name.startsWith('.'))
    .filter(
      (name) =>
        !wantedPrefix || name.startsWith(`${wantedPrefix.distribution}-${wantedPrefix.version}+`),
    )
    .map((name) => readEntry(join(nativeDir, name)))
    .filter(Boolean);
  entries.sort((a, b) => String(b.manifest.builtAt).localeCompare(String(a.manifest.builtAt)));
  return entries[0];
}

/** Removes leftovers of interrupted builds (older than an hour, so a running build is safe). */
function removeStaleTemp() {
  const nativeDir = join(cacheRoot(), 'native');
  if (!existsSync(nativeDir)) return;
  for (const name of readdirSync(nativeDir)) {
    if (!name.startsWith('.tmp-')) continue;
    const path = join(nativeDir, name);
    try {
      if (Date.now() - statSync(path).mtimeMs > 3_600_000)
        rmSync(path, { recursive: true, force: true });
    } catch {
      // another process removed it first
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Installing a build (from the cache or a fresh temp entry) into the package directory

const LIBRARIES = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'];
const LIBRARY_ALIASES = [
  ['libtensorflow.so', 'libtensorflow_cc.so.2'],
  ['libtensorflow.so.2', 'libtensorflow_cc.so.2'],
  ['libtensorflow_framework.so', 'libtensorflow_framework.so.2'],
];

/** Hard-links (same filesystem) or copies `from` to `to`, atomically replacing `to`. */
function placeFile(from, to) {
  if (sameFile(from, to)) return; // rename() between two links of one inode would do nothing
  const temp = `${to}.tmp-${process.pid}`;
  rmSync(temp, { force: true });
  try {
    linkSync(from, temp);
  } catch {
    copyFileSync(from, temp);
  }
  renameSync(temp, to);
}

function sameFile(a, b) {
  try {
    const [x, y] = [statSync(a), statSync(b)];
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

function placeSymlink(target, path) {
  const temp = `${path}.tmp-${process.pid}`;
  rmSync(temp, { force: true });
  symlinkSync(target, temp);
  renameSync(temp, path);
}

function installEntry(pkg, entryDir, binding) {
  const libDir = join(pkg.dir, 'deps', 'lib');
  mkdirSync(libDir, { recursive: true });
  for (const library of LIBRARIES) placeFile(join(entryDir, 'lib', library), join(libDir, library));
  for (const [alias, target] of LIBRARY_ALIASES) placeSymlink(target, join(libDir, alias));
  mkdirSync(dirname(binding), { recursive: true });
  // The addon is small: copy it, so the package never shares an inode with the cache's copy.
  const temp = `${binding}.tmp-${process.pid}`;
  copyFileSync(join(entryDir, 'tfjs_binding.node'), temp);
  renameSync(temp, binding);
  writeFileSync(
    join(pkg.dir, 'deps', 'baka-native.json'),
    `${JSON.stringify({ from: entryDir }, null, 2)}\n`,
  );
}

function uninstallBinding(binding) {
  rmSync(binding, { force: true });
}

// ---------------------------------------------------------------------------------------------
// Running tools with prefixed, filtered progress output

/** Runs a command, echoing lines that `show` accepts; resolves { code, tail } (last 40 lines). */
function run(command, argv, { cwd, timeoutSeconds, show = () => true, label } = {}) {
  return new Promise((resolvePromise) => {
    const child = spawn(command, argv, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail = [];
    let timedOut = false;
    const onLine = (line) => {
      if (!line.trim()) return;
      tail.push(line);
      if (tail.length > 40) tail.shift();
      if (show(line)) log(`${label ?? basename(command)}: ${line.slice(0, 200)}`);
    };
    for (const stream of [child.stdout, child.stderr]) {
      let buffer = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        buffer += chunk;
        const lines = buffer.split(/\r?\n|\r/);
        buffer = lines.pop() ?? '';
        lines.forEach(onLine);
      });
      stream.on('end', () => onLine(buffer));
    }
    const timer = timeoutSeconds
      ? setTimeout(() => {
          timedOut = true;
          try {
            process.kill(-child.pid, 'SIGKILL'); // the whole process group: npm/gyp children too
          } catch {
            child.kill('SIGKILL');
          }
        }, timeoutSeconds * 1000)
      : undefined;
    child.on('error', (error) => {
      clearTimeout(timer);
      resolvePromise({ code: -1, tail: [error.message], timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, tail, timedOut });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Step 3: the package's own install (downloads libtensorflow 2.9.1 and a prebuilt addon)

async function tryPackageInstall(pkg) {
  if (env('BAKA_NATIVE_DOWNLOAD') === '0') {
    log(`${pkg.name}: skipping its own download (BAKA_NATIVE_DOWNLOAD=0)`);
    return false;
  }
  const timeoutSeconds = Number(env('BAKA_NATIVE_DOWNLOAD_TIMEOUT') ?? 60);
  log(`${pkg.name}: trying its own install (downloads libtensorflow; timeout ${timeoutSeconds} s)`);
  // scripts/install.js rewrites package.json in place. pnpm hard-links package files from its
  // store, so give package.json its own inode first (write + rename) and restore it afterwards.
  const packageJson = join(pkg.dir, 'package.json');
  const original = readFileSync(packageJson);
  const restore = () => {
    writeFileSync(`${packageJson}.tmp-${process.pid}`, original);
    renameSync(`${packageJson}.tmp-${process.pid}`, packageJson);
  };
  restore();
  try {
    const result = await run(process.execPath, ['scripts/install.js', pkg.gpu ? 'gpu' : 'cpu'], {
      cwd: pkg.dir,
      timeoutSeconds,
      label: 'install.js',
      show: (line) => /Downloading|^\w*Error: /.test(line),
    });
    if (result.timedOut) log(`${pkg.name}: its own install timed out after ${timeoutSeconds} s`);
    else if (result.code !== 0) log(`${pkg.name}: its own install failed (exit ${result.code})`);
  } finally {
    restore();
  }
  return verify(pkg).ok;
}

// ---------------------------------------------------------------------------------------------
// Step 4: build from a TensorFlow wheel

/** Distribution and version from a wheel file name (PEP 427: name-version-...whl). */
function wheelInfo(path) {
  const match = /^([A-Za-z0-9_.]+)-([0-9][^-]*)-.*\.whl$/.exec(basename(path));
  if (!match)
    throw new SetupError(
      `${path} is not a wheel file name (expected name-version-...-platform.whl)`,
    );
  return { path, distribution: match[1].toLowerCase().replace(/_/g, '-'), version: match[2] };
}

function findPip() {
  const candidates = [['pip'], ['pip3'], ['python3', '-m', 'pip'], ['python', '-m', 'pip']];
  for (const [command, ...prefix] of candidates) {
    const probe = spawnSync(command, [...prefix, '--version'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (probe.status === 0) return { command, prefix };
  }
  return undefined;
}

async function obtainWheel(pkg) {
  const variable = pkg.gpu ? 'BAKA_TF_GPU_WHEEL' : 'BAKA_TF_WHEEL';
  const given = process.env[variable];
  if (given) {
    const path = resolve(env('INIT_CWD') ?? process.cwd(), given);
    if (!existsSync(path)) throw new SetupError(`${variable}=${given}: no such file`);
    log(`${pkg.name}: using the wheel from ${variable}: ${path}`);
    return wheelInfo(path);
  }
  const spec =
    process.env[pkg.gpu ? 'BAKA_TF_GPU_PIP_SPEC' : 'BAKA_TF_PIP_SPEC'] ??
    (pkg.gpu ? 'tensorflow' : 'tensorflow-cpu');
  const pip = findPip();
  if (!pip)
    throw new SetupError('pip is not available (tried pip, pip3, python3 -m pip, python -m pip)');
  const wheelDir = join(cacheRoot(), 'wheels');
  mkdirSync(wheelDir, { recursive: true });
  log(`${pkg.name}: pip download ${spec} --no-deps (into ${wheelDir})`);
  let saved;
  const result = await run(
    pip.command,
    [
      ...pip.prefix,
      'download',
      spec,
      '--no-deps',
      '--only-binary=:all:',
      '--progress-bar',
      'off',
      '-d',
      wheelDir,
    ],
    {
      timeoutSeconds: Number(env('BAKA_PIP_TIMEOUT') ?? 1800),
      label: 'pip',
      show: (line) => {
        const match = /(?:Saved|File was already downloaded)\s+(\S+\.whl)/.exec(line);
        if (match) saved = match[1];
        // pip's "WARNING: Retrying (Retry(total=4, ...)) after connection broken by
        // 'NewConnectionError(...)'" lines are noise on an offline machine; a real failure ends
        // in an ERROR line, which is shown.
        if (/^WARNING: Retrying\b/.test(line)) return false;
        return /Collecting|Downloading|Saved|already downloaded|ERROR|error/i.test(line);
      },
    },
  );
  if (result.code !== 0 || !saved) {
    throw new SetupError(
      `pip download ${spec} failed (exit ${result.code}): ${result.tail.slice(-1)[0] ?? ''}`,
    );
  }
  return wheelInfo(resolve(wheelDir, saved));
}

async function extractWheel(wheel, into) {
  const members = ['tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'];
  log(`extracting the TensorFlow libraries and headers from ${basename(wheel.path)}`);
  const unzip = spawnSync('unzip', ['-v'], { encoding: 'utf8' });
  let result;
  if (unzip.status === 0) {
    result = await run(
      'unzip',
      ['-q', '-o', wheel.path, ...members, 'tensorflow/include/*', '-d', into],
      {
        label: 'unzip',
      },
    );
  } else {
    const python = `
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n in sys.argv[3:] or n.startswith('tensorflow/include/')]
    z.extractall(sys.argv[2], names)
`;
    result = await run('python3', ['-c', python, wheel.path, into, ...members], {
      label: 'python3',
    });
  }
  for (const member of [...members, 'tensorflow/include/tensorflow/c/c_api.h']) {
    if (!existsSync(join(into, member))) {
      throw new SetupError(
        `${basename(wheel.path)} has no ${member} (extract exit ${result.code}); is it a Linux TensorFlow >= 2.x wheel?`,
      );
    }
  }
  return join(into, 'tensorflow');
}

function nodeGypScript() {
  try {
    return createRequire(join(repoRoot, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    const npmBundled = join(
      dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    );
    if (existsSync(npmBundled)) return npmBundled;
    throw new SetupError(
      'node-gyp is not installed (it is a root devDependency: run pnpm install)',
    );
  }
}

/** Node's headers next to the running binary (distribution packages), so node-gyp needs no download. */
function nodeDirArgs() {
  const prefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'common.gypi')) ? [`--nodedir=${prefix}`] : [];
}

async function buildBinding(pkg, tensorflowDir, buildDir, napi) {
  for (const item of ['binding', 'binding.gyp', 'package.json']) {
    spawnSync('cp', ['-R', join(pkg.dir, item), join(buildDir, item)]);
  }
  mkdirSync(join(buildDir, 'deps', 'lib'), { recursive: true });
  symlinkSync(join(tensorflowDir, 'include'), join(buildDir, 'deps', 'include'));
  for (const library of LIBRARIES)
    symlinkSync(join(tensorflowDir, library), join(buildDir, 'deps', 'lib', library));
  for (const [alias, target] of LIBRARY_ALIASES)
    symlinkSync(target, join(buildDir, 'deps', 'lib', alias));
  const outDir = join(buildDir, 'out');
  log(`${pkg.name}: building the binding with node-gyp (N-API ${napi})`);
  const result = await run(
    process.execPath,
    [
      nodeGypScript(),
      'rebuild',
      ...nodeDirArgs(),
      '--module_name=tfjs_binding',
      `--module_path=${outDir}`,
      `--napi_build_version=${napi}`,
      `--jobs=${Math.max(1, Math.min(4, (await import('node:os')).availableParallelism()))}`,
    ],
    {
      cwd: buildDir,
      timeoutSeconds: 1200,
      label: 'node-gyp',
      show: (line) =>
        /^\s+(CXX|SOLINK|COPY)|error|Error/.test(line) && !line.startsWith('gyp info'),
    },
  );
  const built = join(outDir, 'tfjs_binding.node');
  if (result.code !== 0 || !existsSync(built)) {
    for (const line of result.tail.slice(-15)) log(`node-gyp: ${line}`);
    throw new SetupError(`node-gyp could not build the binding (exit ${result.code})`);
  }
  return built;
}

async function buildFromWheel(pkg, binding) {
  if (process.platform !== 'linux') {
    throw new SetupError(
      `building from a wheel is implemented for Linux only (this is ${process.platform})`,
    );
  }
  const napi = napiVersionOf(binding);
  const wheel = await obtainWheel(pkg);
  const nativeDir = join(cacheRoot(), 'native');
  const temp = join(nativeDir, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(temp, { recursive: true });
  try {
    const tensorflowDir = await extractWheel(wheel, join(temp, 'wheel'));
    const buildDir = join(temp, 'build');
    mkdirSync(buildDir);
    const built = await buildBinding(pkg, tensorflowDir, buildDir, napi);

    const entry = join(temp, 'entry');
    mkdirSync(join(entry, 'lib'), { recursive: true });
    for (const library of LIBRARIES)
      renameSync(join(tensorflowDir, library), join(entry, 'lib', library));
    copyFileSync(built, join(entry, 'tfjs_binding.node'));
    const files = {};
    for (const file of [...LIBRARIES.map((l) => `lib/${l}`), 'tfjs_binding.node']) {
      files[file] = statSync(join(entry, file)).size;
    }
    const key = cacheKey(pkg, napi, wheel);
    const manifest = {
      key,
      package: pkg.name,
      packageVersion: pkg.version,
      tensorflowWheel: basename(wheel.path),
      tensorflowVersion: wheel.version,
      nodeAbi: process.versions.modules,
      napi,
      platform: `${process.platform}-${process.arch}`,
      builtAt: new Date().toISOString(),
      files,
    };

    installEntry(pkg, entry, binding);
    const check = verify(pkg);
    if (!check.ok) {
      uninstallBinding(binding);
      throw new SetupError(
        `the binding built from ${basename(wheel.path)} does not run: ${check.reason}`,
      );
    }
    // Publish: the manifest is written last, and the rename makes the entry appear complete.
    writeFileSync(join(entry, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const final = join(nativeDir, key);
    let published = true;
    try {
      if (existsSync(final) && !readEntry(final)) rmSync(final, { recursive: true, force: true });
      renameSync(entry, final);
      installEntry(pkg, final, binding); // record the cache path; files are the same inodes
    } catch {
      published = false;
      log(`${pkg.name}: another process cached ${key} first; keeping its copy`);
    }
    return { tensorflow: check.tensorflow, key, published };
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

async function setupPackage(pkg) {
  const label = `${pkg.name}@${pkg.version}`;
  const binding = bindingPath(pkg);
  if (!rebuild) {
    const check = verify(pkg, binding);
    if (check.ok) {
      log(
        `${label}: native binding works (TensorFlow ${check.tensorflow}); nothing to do (${seconds()})`,
      );
      return true;
    }
    log(`${label}: native binding not working yet (${check.reason})`);
    const cached = findCachedEntry(pkg, napiVersionOf(binding));
    if (cached) {
      log(`${label}: using the cached build ${cached.manifest.key}`);
      installEntry(pkg, cached.dir, binding);
      const again = verify(pkg);
      if (again.ok) {
        log(
          `${label}: native binding works (TensorFlow ${again.tensorflow}), from the cache (${seconds()})`,
        );
        return true;
      }
      uninstallBinding(binding);
      log(`${label}: the cached build does not run here (${again.reason}); building again`);
    }
    if (await tryPackageInstall(pkg)) {
      log(`${label}: native binding works after its own install (${seconds()})`);
      return true;
    }
  }
  const built = await buildFromWheel(pkg, binding);
  const cached = built.published ? `cached as ${built.key}` : 'the cache already had this build';
  log(
    `${label}: built and verified against TensorFlow ${built.tensorflow}; ${cached} (${seconds()})`,
  );
  return true;
}

function printHelp(reason) {
  log(`could not make the native TensorFlow backend work: ${reason}`);
  log('to fix it, do one of:');
  log(
    '  - make pip able to download TensorFlow (python3 -m pip download tensorflow-cpu --no-deps), then: pnpm setup:native',
  );
  log(
    '  - or point at a TensorFlow wheel you have: BAKA_TF_WHEEL=/path/to/tensorflow_cpu-<version>-cp3XX-...-linux_x86_64.whl pnpm setup:native',
  );
  log('  - or use a slower backend: pnpm baka <command> --backend wasm (or --backend cpu)');
  log('`pnpm baka doctor` shows which backend runs and why.');
}

async function main() {
  if (process.argv.includes('--detect-gpu')) {
    const driver = detectNvidiaDriver();
    log(
      driver.found
        ? `NVIDIA driver found (${driver.detail})`
        : `no NVIDIA driver (${driver.detail})`,
    );
    return driver.found ? 0 : 1;
  }
  if (env('BAKA_SKIP_NATIVE') === '1') {
    log(
      'skipped because BAKA_SKIP_NATIVE=1; the CLI falls back to wasm or cpu (see `pnpm baka doctor`)',
    );
    return 0;
  }
  const packages = findPackages();
  if (packages.length === 0) {
    log(
      '@tensorflow/tfjs-node is not installed (optional dependency), so there is no native backend to set up',
    );
    log(
      'the CLI falls back to wasm or cpu; reinstall with optional dependencies to get it (pnpm install)',
    );
    return fromPostinstall ? 0 : 1;
  }
  removeStaleTemp();
  let failures = 0;
  const gpuPackages = packages.filter((pkg) => pkg.gpu);
  const driver = gpuPackages.length > 0 ? detectNvidiaDriver() : null;
  for (const pkg of packages) {
    if (pkg.gpu && !driver.found) {
      log(`${pkg.name}: not activated, no NVIDIA driver here (${driver.detail})`);
      continue;
    }
    if (pkg.gpu) log(`${pkg.name}: NVIDIA driver found (${driver.detail})`);
    try {
      await setupPackage(pkg);
    } catch (error) {
      failures += 1;
      printHelp(
        `${pkg.name}: ${error instanceof SetupError ? error.message : (error?.stack ?? error)}`,
      );
    }
  }
  return failures === 0 ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  printHelp(String(error?.stack ?? error));
}
process.exit(fromPostinstall ? 0 : code);
