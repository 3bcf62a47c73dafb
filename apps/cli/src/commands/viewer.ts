// `baka viewer`: the metrics viewer (apps/metrics-viewer) on the runs database, read-only.
import { DEFAULT_HOST, DEFAULT_PORT, startViewer } from '@baka/metrics-viewer';
import type { Command } from 'commander';
import { action, defaultRunsDir } from '../cli-kit';

export function register(program: Command): void {
  program
    .command('viewer')
    .description('open a local web page of training runs and loss curves (read-only)')
    .option('--db <path>', 'metrics database', `${defaultRunsDir()}/metrics.sqlite`)
    .option('--port <port>', 'port; a free one is used if it is taken', String(DEFAULT_PORT))
    .option(
      '--host <host>',
      'address to listen on (other machines can connect unless loopback)',
      DEFAULT_HOST,
    )
    .action(
      action(async (options: { db: string; port: string; host: string }) => {
        await startViewer(options);
      }),
    );
}
