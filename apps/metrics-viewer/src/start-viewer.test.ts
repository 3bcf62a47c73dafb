import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultDatabasePath, resolveDatabasePath } from './default-database-path';
import { parseHost, parsePort, startViewer } from './start-viewer';

const repositoryRoot = fileURLToPath(new URL('../../../', import.meta.url));
const savedInitCwd = process.env.INIT_CWD;
afterEach(() => {
  if (savedInitCwd === undefined) delete process.env.INIT_CWD;
  else process.env.INIT_CWD = savedInitCwd;
});

describe('viewer flags', () => {
  it('parses ports and names the flag in errors', () => {
    expect(parsePort(undefined)).toBe(5177);
    expect(parsePort('8080')).toBe(8080);
    expect(parsePort('0')).toBe(0);
    expect(() => parsePort('http')).toThrow(
      "--port expects an integer from 0 to 65535, got 'http'",
    );
    expect(() => parsePort('70000')).toThrow('--port');
  });

  it('defaults the host to 127.0.0.1 and rejects garbage', () => {
    expect(parseHost(undefined)).toBe('127.0.0.1');
    expect(parseHost('0.0.0.0')).toBe('0.0.0.0');
    expect(parseHost('[::1]')).toBe('::1');
    expect(() => parseHost('evil host/')).toThrow(
      "--host expects a host name or IP address, got 'evil host/'",
    );
  });

  it('finds runs/metrics.sqlite at the repository root from inside a package (pnpm --filter)', () => {
    process.env.INIT_CWD = join(repositoryRoot, 'apps', 'cli');
    expect(defaultDatabasePath()).toBe(join(repositoryRoot, 'runs', 'metrics.sqlite'));
    expect(resolveDatabasePath(undefined)).toBe(join(repositoryRoot, 'runs', 'metrics.sqlite'));
  });

  it('resolves a relative --db against the directory the user typed the command in', () => {
    process.env.INIT_CWD = join(repositoryRoot, 'apps');
    expect(resolveDatabasePath('other/metrics.sqlite')).toBe(
      join(repositoryRoot, 'apps', 'other', 'metrics.sqlite'),
    );
    expect(resolveDatabasePath('/tmp/x.sqlite')).toBe('/tmp/x.sqlite');
  });

  it('starts the server and prints its URL and database', async () => {
    const lines: string[] = [];
    const server = await startViewer({ db: '/nonexistent/metrics.sqlite', port: '0' }, (line) =>
      lines.push(line),
    );
    try {
      expect(lines[0]).toBe(`metrics viewer: ${server.url}`);
      expect(lines[1]).toBe(
        'database: /nonexistent/metrics.sqlite (not there yet; start a run: pnpm --filter cli train)',
      );
      expect((await fetch(new URL('/api/runs', server.url))).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('--host ::1 is loopback: no warning; 0.0.0.0 warns', async () => {
    for (const [host, warns] of [
      ['::1', false],
      ['localhost', false],
      ['0.0.0.0', true],
    ] as const) {
      const lines: string[] = [];
      const server = await startViewer(
        { db: '/nonexistent/metrics.sqlite', port: '0', host },
        (line) => lines.push(line),
      );
      await server.close();
      expect(
        lines.some((line) => line.startsWith('warning:')),
        host,
      ).toBe(warns);
    }
  });
});
