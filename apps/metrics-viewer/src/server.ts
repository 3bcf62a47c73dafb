// Starts the viewer: builds the page, opens the database read-only and listens on 127.0.0.1 (or
// the given host). A port that is taken falls back to a free one chosen by the OS.
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import { createViewerApp } from './app';
import { buildViewerAssets } from './assets';
import { MetricsReader } from './metrics-reader';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 5177;

export interface ViewerServerOptions {
  databasePath: string;
  /** 0 picks a free port; a taken port falls back to a free one. */
  port?: number;
  host?: string;
  /** Load the newest runs into memory right after starting (default true). */
  warm?: boolean;
}

export interface ViewerServer {
  url: string;
  port: number;
  host: string;
  /** True when the requested port was taken and another one was chosen. */
  portChanged: boolean;
  reader: MetricsReader;
  /** Settles when the start-up warm-up (see MetricsReader.warm) is done. */
  warmed: Promise<void>;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host);
}

function listen(
  fetch: Parameters<typeof serve>[0]['fetch'],
  host: string,
  port: number,
): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname: host, port }, () => resolve(server));
    server.once('error', reject);
  });
}

export async function startViewerServer(options: ViewerServerOptions): Promise<ViewerServer> {
  const host = options.host ?? DEFAULT_HOST;
  const requestedPort = options.port ?? DEFAULT_PORT;
  const reader = new MetricsReader(options.databasePath);
  const assets = await buildViewerAssets();
  const loopback = isLoopback(host);
  const app = createViewerApp({
    reader,
    assets,
    allowedHosts: loopback ? ['127.0.0.1', 'localhost', '[::1]', '::1'] : undefined,
  });
  let server: ServerType;
  try {
    server = await listen(app.fetch, host, requestedPort);
  } catch (error) {
    if ((error as { code?: string }).code !== 'EADDRINUSE') {
      reader.close();
      throw error;
    }
    server = await listen(app.fetch, host, 0);
  }
  const port = (server.address() as AddressInfo).port;
  const warmed = new Promise<void>((resolve) => {
    if (options.warm === false) return resolve();
    setTimeout(() => {
      try {
        reader.warm();
      } catch (error) {
        // Only a head start: a request that needs the data will report a real problem.
        console.error(`metrics-viewer: warm-up failed: ${(error as Error).message}`);
      }
      resolve();
    }, 0);
  });
  const urlHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/`,
    port,
    host,
    portChanged: requestedPort !== 0 && port !== requestedPort,
    reader,
    warmed,
    close: () =>
      new Promise<void>((resolve, reject) => {
        reader.close();
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
