// `baka runs`: the runs in a runs directory (its run directories and metrics.sqlite).
//   baka runs list [--runs-dir DIR] [--json]
//   baka runs rm NAME --yes [--runs-dir DIR]
//   baka runs rename NAME NEW_NAME [--runs-dir DIR]
// rm and rename refuse a run that is being trained: a live process id in <run>/.lock, or a
// 'running' row whose heartbeat is recent.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKPOINT_FILES, listCheckpoints, MetricsStore, type RunSummary } from '@baka/trainer';
import type { Command } from 'commander';
import { UserError, action } from '../cli-kit';
import { HEARTBEAT_BUSY_MS, lockHolder, RUN_NAME, runsDirectory } from '../run-directory';

const DATABASE = 'metrics.sqlite';

export interface RunListing {
  name: string;
  /** From the database; null for a directory the database does not know. */
  status: RunSummary['status'] | null;
  directory: string | null;
  checkpoints: number;
  latestStep: number | null;
  lastLoss: number | null;
  startedAt: string | null;
  /** The live process training it, from <run>/.lock. */
  lockedBy: number | null;
}

function openStore(runsDir: string, write: boolean): MetricsStore | null {
  const path = join(runsDir, DATABASE);
  if (!existsSync(path)) return null;
  try {
    return new MetricsStore(path, { readonly: !write });
  } catch (error) {
    throw new UserError(`${path}: cannot open the metrics database (${(error as Error).message})`);
  }
}

/** Run directories (holding checkpoints/) and database runs, by name. */
export function listRuns(runsDir: string): RunListing[] {
  const store = openStore(runsDir, false);
  const rows = store?.listRuns() ?? [];
  store?.close();
  const names = new Set(rows.map((row) => row.name));
  if (existsSync(runsDir)) {
    for (const entry of readdirSync(runsDir, { withFileTypes: true })) {
      if (
        entry.isDirectory() &&
        RUN_NAME.test(entry.name) &&
        existsSync(join(runsDir, entry.name, 'checkpoints'))
      )
        names.add(entry.name);
    }
  }
  return [...names].map((name) => {
    const row = rows.find((r) => r.name === name);
    const dir = join(runsDir, name);
    const checkpoints = listCheckpoints(join(dir, 'checkpoints'));
    return {
      name,
      status: row?.status ?? null,
      directory: existsSync(dir) ? dir : null,
      checkpoints: checkpoints.length,
      latestStep: checkpoints.at(-1)?.step ?? row?.lastStep ?? null,
      lastLoss: row?.lastLoss ?? null,
      startedAt: row ? new Date(row.startedAt).toISOString() : null,
      lockedBy: existsSync(dir) ? lockHolder(dir) : null,
    };
  });
}

/** Throws unless run `name` exists and no process is training it. */
function checkIdle(runsDir: string, name: string, store: MetricsStore | null, verb: string): void {
  if (!RUN_NAME.test(name)) {
    throw new UserError(
      `runs ${verb}: '${name}' is not a run name (letters, digits, ".", "_", "-")`,
    );
  }
  const dir = join(runsDir, name);
  const row = store?.listRuns().find((r) => r.name === name);
  if (!existsSync(dir) && !row)
    throw new UserError(`runs ${verb}: no run named '${name}' in ${runsDir}`);
  const pid = existsSync(dir) ? lockHolder(dir) : null;
  if (pid !== null) {
    throw new UserError(
      `runs ${verb}: run '${name}' is being trained by process ${pid} (${join(dir, '.lock')})`,
    );
  }
  if (
    row?.status === 'running' &&
    row.heartbeatAt !== null &&
    Date.now() - row.heartbeatAt < HEARTBEAT_BUSY_MS
  ) {
    throw new UserError(
      `runs ${verb}: run '${name}' is running (its last metrics are ${Math.round((Date.now() - row.heartbeatAt) / 1000)} s old); stop it first`,
    );
  }
}

export function removeRun(
  runsDir: string,
  name: string,
): { directory: boolean; database: boolean } {
  const store = openStore(runsDir, true);
  try {
    checkIdle(runsDir, name, store, 'rm');
    const dir = join(runsDir, name);
    const directory = existsSync(dir);
    if (directory) rmSync(dir, { recursive: true });
    const database = store?.deleteRun(name) ?? false;
    return { directory, database };
  } finally {
    store?.close();
  }
}

/** Rewrites `runName` in a checkpoint's JSON file (trainer_state.json, training.json). */
function renameInJson(path: string, to: string): void {
  if (!existsSync(path)) return;
  const value = JSON.parse(readFileSync(path, 'utf8')) as { runName?: string };
  if (value.runName === undefined) return;
  value.runName = to;
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(temporary, path);
}

export function renameRun(runsDir: string, from: string, to: string): void {
  if (!RUN_NAME.test(to)) {
    throw new UserError(`runs rename: '${to}' is not a run name (letters, digits, ".", "_", "-")`);
  }
  const store = openStore(runsDir, true);
  try {
    checkIdle(runsDir, from, store, 'rename');
    const fromDir = join(runsDir, from);
    const toDir = join(runsDir, to);
    if (existsSync(toDir) || store?.hasRun(to)) {
      throw new UserError(`runs rename: a run named '${to}' already exists in ${runsDir}`);
    }
    if (existsSync(fromDir)) {
      renameSync(fromDir, toDir);
      // A resumed run takes its name from the checkpoint, so the checkpoints follow the rename.
      for (const checkpoint of listCheckpoints(join(toDir, 'checkpoints'))) {
        renameInJson(join(checkpoint.dir, CHECKPOINT_FILES.trainerState), to);
        renameInJson(join(checkpoint.dir, CHECKPOINT_FILES.training), to);
      }
    }
    try {
      store?.renameRun(from, to, { from: fromDir, to: toDir });
    } catch (error) {
      if (existsSync(toDir)) renameSync(toDir, fromDir);
      throw new UserError(`runs rename: ${join(runsDir, DATABASE)}: ${(error as Error).message}`);
    }
  } finally {
    store?.close();
  }
}

function formatRuns(runs: RunListing[], runsDir: string): string {
  if (runs.length === 0) return `no runs in ${runsDir}\n`;
  const header = ['name', 'status', 'step', 'checkpoints', 'last loss', 'started'];
  const rows = runs.map((run) => [
    run.name,
    run.lockedBy !== null ? `training (pid ${run.lockedBy})` : (run.status ?? 'no database row'),
    run.latestStep === null ? '-' : String(run.latestStep),
    String(run.checkpoints),
    run.lastLoss === null ? '-' : run.lastLoss.toFixed(4),
    run.startedAt?.replace('T', ' ').slice(0, 19) ?? '-',
  ]);
  const widths = header.map((title, i) =>
    Math.max(title.length, ...rows.map((row) => row[i]!.length)),
  );
  return `${[header, ...rows]
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

export function register(program: Command): void {
  const runs = program.command('runs').description('list, remove or rename training runs');
  const runsDirFlag = [
    '--runs-dir <dir>',
    'where runs and metrics.sqlite live (default: <repo root>/runs)',
  ] as const;
  runs
    .command('list')
    .description('runs in the runs directory: status, latest checkpoint step, last loss')
    .option(...runsDirFlag)
    .option('--json', 'print one JSON array')
    .action(
      action((flags: { runsDir?: string; json?: boolean }) => {
        const runsDir = runsDirectory(flags.runsDir);
        const listing = listRuns(runsDir);
        process.stdout.write(
          flags.json ? `${JSON.stringify(listing)}\n` : formatRuns(listing, runsDir),
        );
      }),
    );
  runs
    .command('rm')
    .description('delete a run: its directory (checkpoints) and its metrics')
    .argument('<name>', 'run name')
    .option('--yes', 'really delete (required)')
    .option(...runsDirFlag)
    .action(
      action((name: string, flags: { runsDir?: string; yes?: boolean }) => {
        const runsDir = runsDirectory(flags.runsDir);
        if (!flags.yes) {
          throw new UserError(
            `runs rm deletes ${join(runsDir, name)} and its metrics for good; add --yes to do it`,
          );
        }
        const removed = removeRun(runsDir, name);
        process.stdout.write(
          `removed run '${name}'${removed.directory ? ` (${join(runsDir, name)})` : ''}${removed.database ? ' and its metrics' : ''}\n`,
        );
      }),
    );
  runs
    .command('rename')
    .description('rename a run: its directory, its checkpoints and its metrics')
    .argument('<name>', 'run name')
    .argument('<new-name>', 'new run name')
    .option(...runsDirFlag)
    .action(
      action((name: string, newName: string, flags: { runsDir?: string }) => {
        renameRun(runsDirectory(flags.runsDir), name, newName);
        process.stdout.write(`renamed run '${name}' to '${newName}'\n`);
      }),
    );
}
