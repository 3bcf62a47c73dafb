// What `pnpm --filter metrics-viewer start` and `baka viewer` both do: validate the flags, start
// the server, print where it listens, and close cleanly on Ctrl-C.
import { existsSync } from 'node:fs';
import { BakaError } from '@baka/common';
import { resolveDatabasePath } from './default-database-path';
import { START_COMMAND } from './metrics-reader';
import {
  DEFAULT_HOST,
  DEFAULT_PORT,
  isLoopback,
  startViewerServer,
  type ViewerServer,
} from './server';

/** A mistake in the flags: printed as one line without a stack. */
export class ViewerOptionError extends BakaError {
  override name = 'ViewerOptionError';
}

export interface ViewerFlags {
  db?: string | undefined;
  port?: string | number | undefined;
  host?: string | undefined;
}

export function parsePort(value: string | number | undefined): number {
  if (value === undefined) return DEFAULT_PORT;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ViewerOptionError(`--port expects an integer from 0 to 65535, got '${value}'`);
  }
  return port;
}

export function parseHost(value: string | undefined): string {
  if (value === undefined) return DEFAULT_HOST;
  if (!/^(\[?[0-9a-fA-F:.]+\]?|[A-Za-z0-9.-]+)$/.test(value)) {
    throw new ViewerOptionError(`--host expects a host name or IP address, got '${value}'`);
  }
  return value.replace(/^\[(.*)\]$/, '$1');
}

export async function startViewer(
  flags: ViewerFlags,
  log: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<ViewerServer> {
  const databasePath = resolveDatabasePath(flags.db);
  const port = parsePort(flags.port);
  const host = parseHost(flags.host);
  const server = await startViewerServer({ databasePath, port, host });
  if (server.portChanged) log(`port ${port} is taken; using ${server.port}`);
  log(`metrics viewer: ${server.url}`);
  log(
    `database: ${databasePath}${existsSync(databasePath) ? '' : ` (not there yet; start a run: ${START_COMMAND})`}`,
  );
  if (!isLoopback(host)) {
    log(`warning: listening on ${host}, reachable from other machines (read-only)`);
  }
  const stop = () => {
    void server.close().finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return server;
}
