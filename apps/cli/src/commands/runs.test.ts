// Run names and run directories wherever a checkpoint is asked for, and `baka runs`: real CLI
// processes on a run that `baka train` really wrote.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MetricsStore } from '@baka/trainer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/baka.js', import.meta.url));
const fixtures = fileURLToPath(
  new URL('../../../../packages/model/__fixtures__/', import.meta.url),
);
const inputIds = join(fixtures, 'tiny-torch', 'input-ids.json');
const scratch = mkdtempSync(join(tmpdir(), 'baka-runs-'));
const runs = join(scratch, 'runs');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function baka(args: string[], cwd = scratch) {
  // INIT_CWD is where pnpm was started; the CLI resolves paths against it when set.
  return spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    cwd,
    env: { ...process.env, INIT_CWD: cwd },
  });
}

function train(run: string): void {
  const result = baka([
    'train',
    '--init',
    join(fixtures, 'train-4-steps', 'init'),
    '--input-ids',
    join(fixtures, 'train-4-steps', 'batch.json'),
    '--window',
    '16',
    '--runs-dir',
    runs,
    '--run',
    run,
    '--backend',
    'cpu',
  ]);
  expect(result.status, result.stderr).toBe(0);
}

function runNames(): { name: string; status: string | null; latestStep: number | null }[] {
  const result = baka(['runs', 'list', '--runs-dir', runs, '--json']);
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

beforeAll(() => {
  train('alpha');
  train('gamma');
}, 120_000);

describe('a run name or run directory where a checkpoint is asked for', () => {
  const checkpoint = () => join(runs, 'alpha', 'checkpoints', 'step-00000004');

  it('info resolves a run name, a run directory and a checkpoint, and shows the training state', () => {
    for (const value of ['alpha', join(runs, 'alpha'), join(runs, 'alpha', 'checkpoints')]) {
      const result = baka(['info', '--checkpoint', value, '--runs-dir', runs, '--json']);
      expect(result.status, result.stderr).toBe(0);
      const info = JSON.parse(result.stdout);
      expect(info.training).toMatchObject({ run: 'alpha', step: 4, tokens: 76, skippedSteps: 0 });
      expect(info.training.lastLoss).toBeGreaterThan(0);
      expect(info.training.bestLoss).toBeLessThanOrEqual(info.training.firstLoss);
    }
    // A run directory relative to where the command is typed.
    const relative = baka(['info', '--checkpoint', 'runs/alpha']);
    expect(relative.status, relative.stderr).toBe(0);
    expect(relative.stdout).toContain(`checkpoint ${checkpoint()}`);
    expect(relative.stdout).toMatch(/training:\n {2}run +alpha\n {2}step +4\n {2}tokens +76\n/);
    expect(relative.stdout).toMatch(/loss +first \d\.\d{4}, last \d\.\d{4}, best \d\.\d{4}/);
    // A model-only checkpoint has no training section.
    const model = baka(['info', '--checkpoint', join(fixtures, 'tiny-torch'), '--json']);
    expect(JSON.parse(model.stdout).training).toBeNull();
  });

  it('eval and generate take a run name or run directory', () => {
    const evaluated = baka([
      'eval',
      '--checkpoint',
      'alpha',
      '--runs-dir',
      runs,
      '--input-ids',
      inputIds,
      '--backend',
      'cpu',
      '--json',
    ]);
    expect(evaluated.status, evaluated.stderr).toBe(0);
    expect(JSON.parse(evaluated.stdout).checkpoint).toBe(checkpoint());
    const generated = baka([
      'generate',
      '--checkpoint',
      join(runs, 'alpha'),
      '--prompt',
      '#$%',
      '--max-new-tokens',
      '3',
      '--temperature',
      '0',
      '--backend',
      'cpu',
    ]);
    expect(generated.status, generated.stderr).toBe(0);
    expect(generated.stdout.startsWith('#$%')).toBe(true);
  });

  it('says what it looked for when nothing matches', () => {
    const missing = baka(['info', '--checkpoint', 'nope', '--runs-dir', runs]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe(
      `baka: --checkpoint: directory not found: nope (nor a run of that name in ${runs})\n`,
    );
    const notRun = baka(['eval', '--checkpoint', scratch, '--input-ids', inputIds]);
    expect(notRun.status).toBe(2);
    expect(notRun.stderr).toContain('is neither a checkpoint (no config.json) nor a run directory');
  });
});

describe('baka runs', () => {
  it('lists the runs with their status and latest step', () => {
    expect(runNames()).toEqual([
      expect.objectContaining({ name: 'alpha', status: 'finished', latestStep: 4 }),
      expect.objectContaining({ name: 'gamma', status: 'finished', latestStep: 4 }),
    ]);
    const text = baka(['runs', 'list', '--runs-dir', runs]);
    expect(text.stdout).toMatch(
      /^name +status +step +checkpoints +last loss +started\nalpha +finished +4 +1 +\d\.\d{4} /,
    );
  });

  it('rm and rename refuse a run whose lock holds a live process, and take a stale lock', async () => {
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(join(runs, 'gamma', '.lock'), `${holder.pid}\n`);
      for (const args of [
        ['runs', 'rm', 'gamma', '--yes'],
        ['runs', 'rename', 'gamma', 'delta'],
      ]) {
        const refused = baka([...args, '--runs-dir', runs]);
        expect(refused.status).toBe(2);
        expect(refused.stderr).toContain(`run 'gamma' is being trained by process ${holder.pid}`);
      }
      expect(existsSync(join(runs, 'gamma', 'checkpoints', 'step-00000004'))).toBe(true);
      expect(runNames().map((run) => run.name)).toEqual(['alpha', 'gamma']);
    } finally {
      holder.kill('SIGKILL');
    }
    await new Promise((resolve) => holder.once('exit', resolve));
    // The holder is gone: the lock is stale.
    const renamed = baka(['runs', 'rename', 'gamma', 'delta', '--runs-dir', runs]);
    expect(renamed.status, renamed.stderr).toBe(0);
    expect(runNames().map((run) => run.name)).toEqual(['alpha', 'delta']);
  });

  it('a running run with a fresh heartbeat is busy too', () => {
    const store = new MetricsStore(join(runs, 'metrics.sqlite'));
    store.startRun({ name: 'delta', config: {} }, { resume: true });
    store.close();
    const refused = baka(['runs', 'rm', 'delta', '--yes', '--runs-dir', runs]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/run 'delta' is running \(its last metrics are \d+ s old\)/);
    const stale = new MetricsStore(join(runs, 'metrics.sqlite'));
    stale.db
      .prepare("UPDATE runs SET heartbeat_at = heartbeat_at - 3600000 WHERE name = 'delta'")
      .run();
    stale.close();
    expect(baka(['runs', 'rm', 'delta', '--yes', '--runs-dir', runs]).status).toBe(0);
  });

  it('rename moves the directory, the database row and the checkpoints; the new name resolves', () => {
    const refused = baka(['runs', 'rename', 'alpha', '../evil', '--runs-dir', runs]);
    expect(refused.status).toBe(2);
    expect(baka(['runs', 'rename', 'missing', 'x', '--runs-dir', runs]).stderr).toBe(
      `baka: runs rename: no run named 'missing' in ${runs}\n`,
    );
    const result = baka(['runs', 'rename', 'alpha', 'beta', '--runs-dir', runs]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe("renamed run 'alpha' to 'beta'\n");
    expect(existsSync(join(runs, 'alpha'))).toBe(false);
    const state = JSON.parse(
      readFileSync(
        join(runs, 'beta', 'checkpoints', 'step-00000004', 'trainer_state.json'),
        'utf8',
      ),
    );
    expect(state.runName).toBe('beta');
    const store = new MetricsStore(join(runs, 'metrics.sqlite'), { readonly: true });
    const row = store.listRuns().find((run) => run.name === 'beta');
    store.close();
    expect(row?.lastStep).toBe(4);
    expect(row?.checkpointDir).toBe(join(runs, 'beta', 'checkpoints', 'step-00000004'));
    const info = baka(['info', '--checkpoint', 'beta', '--runs-dir', runs, '--json']);
    expect(JSON.parse(info.stdout).training.run).toBe('beta');
  });

  it('rm needs --yes, then deletes the directory and the metrics', () => {
    const refused = baka(['runs', 'rm', 'beta', '--runs-dir', runs]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('add --yes');
    expect(existsSync(join(runs, 'beta'))).toBe(true);
    const removed = baka(['runs', 'rm', 'beta', '--yes', '--runs-dir', runs]);
    expect(removed.status, removed.stderr).toBe(0);
    expect(existsSync(join(runs, 'beta'))).toBe(false);
    expect(runNames()).toEqual([]);
    expect(existsSync(join(runs, 'metrics.sqlite'))).toBe(true);
  });
});
