// `pnpm bench`: runs every bench script under bench/ (model, tokenizer, data, viewer — the ones
// present), each in its own child process, streams their output, and prints one summary.
//
//   pnpm bench [--quick] [--only model,tokenizer,data,viewer] [-- <options for bench/model.ts>]
//
// A script may print a line `SUMMARY <json>` ({ name, results?, rows?: [{ metric, ratio, target,
// met }], errors? }); the summary shows those rows. Files written under bench/results/ during the
// run are listed. Writes bench/results/summary.json (summary-quick.json with --quick). With
// --quick the other scripts run short (their --quick, or fewer runs) and whatever they write
// under bench/results/ is put back afterwards, so committed full results stay as they were.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runChild } from './child';
import { formatRatio, renderTable } from './format';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results');
const SCRIPTS = ['model', 'tokenizer', 'data', 'viewer'] as const;

/**
 * Short-run arguments for scripts without a --quick flag of their own (a script whose source
 * declares a `quick` option gets --quick instead).
 */
const QUICK_ARGS: Record<string, string[]> = {
  tokenizer: ['--runs', '2'],
  data: ['--runs', '1'],
  viewer: ['--rows', '200000', '--runs', '2'],
};

function quickArgs(name: string, script: string): string[] {
  if (/\bquick\s*:/.test(readFileSync(script, 'utf8'))) return ['--quick'];
  return QUICK_ARGS[name] ?? [];
}

interface ScriptSummary {
  name: string;
  results?: string;
  rows?: {
    metric: string;
    ratio: number | null;
    target?: string;
    met?: boolean | null;
    value?: string;
  }[];
  errors?: number;
}

interface Outcome {
  name: string;
  status: 'ok' | 'failed' | 'missing';
  exitCode: number | null;
  seconds: number;
  summary: ScriptSummary | null;
  files: string[];
  error?: string;
}

/** The bytes of every file in bench/results/ (to put back what a quick run of another script wrote). */
function snapshotResults(): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  if (!existsSync(RESULTS)) return files;
  for (const name of readdirSync(RESULTS)) files.set(name, readFileSync(join(RESULTS, name)));
  return files;
}

/** Restores bench/results/ to `snapshot`: rewrites changed files, removes new ones. */
function restoreResults(snapshot: Map<string, Buffer>): void {
  for (const name of readdirSync(RESULTS)) {
    const before = snapshot.get(name);
    const path = join(RESULTS, name);
    if (before === undefined) rmSync(path, { force: true });
    else if (!before.equals(readFileSync(path))) writeFileSync(path, before);
  }
}

function resultFiles(): Map<string, number> {
  const files = new Map<string, number>();
  if (!existsSync(RESULTS)) return files;
  for (const name of readdirSync(RESULTS)) files.set(name, statSync(join(RESULTS, name)).mtimeMs);
  return files;
}

function lastSummary(stdout: string): ScriptSummary | null {
  const line = stdout
    .split('\n')
    .reverse()
    .find((text) => text.startsWith('SUMMARY '));
  if (line === undefined) return null;
  try {
    return JSON.parse(line.slice('SUMMARY '.length)) as ScriptSummary;
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(
      'usage: pnpm bench [--quick] [--only model,tokenizer,data,viewer] [-- <bench/model.ts options>]\n',
    );
    return;
  }
  const quick = values.quick ?? false;
  const only = values.only?.split(',') ?? [...SCRIPTS];
  for (const name of only) {
    if (!(SCRIPTS as readonly string[]).includes(name)) {
      throw new Error(`pnpm bench: --only takes ${SCRIPTS.join(', ')}; got '${name}'`);
    }
  }
  mkdirSync(RESULTS, { recursive: true });
  const began = performance.now();
  const outcomes: Outcome[] = [];
  for (const name of only) {
    const script = join(ROOT, 'bench', `${name}.ts`);
    if (!existsSync(script)) {
      outcomes.push({
        name,
        status: 'missing',
        exitCode: null,
        seconds: 0,
        summary: null,
        files: [],
      });
      continue;
    }
    const extra = quick ? quickArgs(name, script) : [];
    process.stdout.write(`\n=== bench/${name}.ts ${extra.join(' ')} ===\n`);
    const before = resultFiles();
    // a short run of another script must not replace its committed full results
    const snapshot = quick && name !== 'model' ? snapshotResults() : null;
    const args = ['--conditions=@baka/source', '--import', 'tsx', script, ...extra];
    if (name === 'model') args.push(...positionals);
    let outcome: Outcome;
    try {
      const run = await runChild(process.execPath, args, {
        cwd: ROOT,
        echo: true,
        timeoutSeconds: quick ? 300 : 3600,
      });
      const after = resultFiles();
      const files = [...after]
        .filter(([file, mtime]) => before.get(file) !== mtime)
        .map(
          ([file]) => relative(ROOT, join(RESULTS, file)) + (snapshot ? ' (not kept: quick)' : ''),
        );
      outcome = {
        name,
        status: run.code === 0 ? 'ok' : 'failed',
        exitCode: run.code,
        seconds: run.seconds,
        summary: lastSummary(run.stdout),
        files,
      };
      if (run.code !== 0) {
        const tail = run.stderr.trim().split('\n').slice(-10).join('\n');
        outcome.error = tail;
        process.stdout.write(`bench/${name}.ts exited with ${run.code}:\n${tail}\n`);
      }
    } catch (error) {
      outcome = {
        name,
        status: 'failed',
        exitCode: null,
        seconds: 0,
        summary: null,
        files: [],
        error: String((error as Error).message),
      };
    } finally {
      if (snapshot) restoreResults(snapshot);
    }
    outcomes.push(outcome);
  }

  const rows = outcomes.map((outcome) => [
    `bench/${outcome.name}.ts`,
    outcome.status,
    outcome.status === 'missing' ? '' : `${outcome.seconds.toFixed(0)} s`,
    outcome.files.join(', '),
  ]);
  process.stdout.write(
    `\n=== summary (${((performance.now() - began) / 1000).toFixed(0)} s) ===\n`,
  );
  process.stdout.write(`${renderTable(['script', 'status', 'time', 'results written'], rows)}\n`);
  const headline = outcomes.flatMap((outcome) =>
    (outcome.summary?.rows ?? []).map((entry) => [
      outcome.name,
      entry.metric,
      entry.value ?? formatRatio(entry.ratio),
      entry.target
        ? `${entry.target} ${entry.met === null || entry.met === undefined ? '' : entry.met ? 'met' : 'NOT met'}`
        : '',
    ]),
  );
  if (headline.length > 0) {
    process.stdout.write(
      `\n${renderTable(['bench', 'measure', 'ours / reference', 'target'], headline)}\n`,
    );
  }
  const out = join(RESULTS, quick ? 'summary-quick.json' : 'summary.json');
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), quick, seconds: (performance.now() - began) / 1000, outcomes }, null, 1)}\n`,
  );
  process.stdout.write(`\nwrote ${relative(ROOT, out)}\n`);
  if (outcomes.some((outcome) => outcome.status === 'failed')) process.exitCode = 1;
}

await main();
