// `pnpm --filter metrics-viewer start [--db path] [--port n] [--host addr]`
import { parseArgs } from 'node:util';
import { isUserError } from '@baka/common';
import { startViewer } from './start-viewer';

const usage = `usage: pnpm --filter metrics-viewer start [--db runs/metrics.sqlite] [--port 5177] [--host 127.0.0.1]`;

try {
  const { values } = parseArgs({
    options: {
      db: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
  } else {
    await startViewer(values);
  }
} catch (error) {
  const known =
    isUserError(error) || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  if (!known) throw error;
  process.stderr.write(`metrics-viewer: ${(error as Error).message}\n${usage}\n`);
  process.exit(2);
}
