// The HTTP surface: a JSON API over the read-only metrics reader and the page's own assets.
// Nothing is served from disk by URL, so no path can escape the asset list.
import { Hono } from 'hono';
import type { z } from 'zod';
import {
  describeIssues,
  emptyQuerySchema,
  evalsQuerySchema,
  experimentNameSchema,
  experimentQuerySchema,
  runIdSchema,
  seriesQuerySchema,
} from './api-schemas';
import type { ViewerAssets } from './assets';
import { DatabaseBusyError, type MetricsReader, START_COMMAND } from './metrics-reader';

export interface ViewerAppOptions {
  reader: MetricsReader;
  assets: ViewerAssets;
  /**
   * Host names the server answers to (checked against the Host header, against DNS rebinding).
   * Undefined: any host (when the user bound to a non-loopback address on purpose).
   */
  allowedHosts?: readonly string[] | undefined;
}

class BadRequest extends Error {}

function parse<Schema extends z.ZodType>(
  schema: Schema,
  value: unknown,
  label = 'query',
): z.output<Schema> {
  const result = schema.safeParse(value);
  if (!result.success) throw new BadRequest(describeIssues(result.error, label));
  return result.data;
}

export function createViewerApp({ reader, assets, allowedHosts }: ViewerAppOptions): Hono {
  const app = new Hono();

  app.onError((error, context) => {
    if (error instanceof BadRequest) return context.json({ error: error.message }, 400);
    if (error instanceof DatabaseBusyError) return context.json({ error: error.message }, 503);
    console.error(error);
    return context.json({ error: 'internal error reading the metrics database' }, 500);
  });

  app.use('*', async (context, next) => {
    if (allowedHosts) {
      const host = (context.req.header('host') ?? '').replace(/:\d+$/, '').toLowerCase();
      if (!allowedHosts.includes(host)) return context.text(`host '${host}' not allowed`, 403);
    }
    await next();
    context.header('X-Content-Type-Options', 'nosniff');
    context.header('Referrer-Policy', 'no-referrer');
    context.header(
      'Content-Security-Policy',
      "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    );
  });

  app.get('/', (context) => {
    context.header('Cache-Control', 'no-store');
    return context.html(assets.html);
  });
  app.get('/assets/:name', (context) => {
    const asset = assets.files.get(context.req.param('name'));
    if (!asset) return context.text('not found', 404);
    context.header('Content-Type', asset.contentType);
    context.header('Cache-Control', 'no-cache');
    return context.body(asset.body);
  });

  app.get('/api/runs', (context) => {
    parse(emptyQuerySchema, context.req.query());
    const state = reader.state();
    return context.json({
      database: { path: reader.path, state },
      startCommand: START_COMMAND,
      runs: state === 'ready' ? reader.listRuns() : [],
    });
  });

  app.get('/api/runs/:id/series', (context) => {
    const runId = parse(runIdSchema, context.req.param('id'), 'run id');
    const query = parse(seriesQuerySchema, context.req.query());
    const series = reader.series(runId, query);
    if (!series) return context.json({ error: `run ${runId} not found` }, 404);
    return context.json(series);
  });

  app.get('/api/runs/:id/evals', (context) => {
    const runId = parse(runIdSchema, context.req.param('id'), 'run id');
    const query = parse(evalsQuerySchema, context.req.query());
    const evals = reader.evals(runId, query.afterStep ?? -1);
    if (!evals) return context.json({ error: `run ${runId} not found` }, 404);
    return context.json({ runId, evals });
  });

  app.get('/api/experiments', (context) => {
    parse(emptyQuerySchema, context.req.query());
    return context.json({ experiments: reader.experiments() });
  });

  app.get('/api/experiments/:name', (context) => {
    const name = parse(experimentNameSchema, context.req.param('name'), 'experiment name');
    const query = parse(experimentQuerySchema, context.req.query());
    const view = reader.experiment(name, query.x, query.points);
    if (!view) return context.json({ error: `experiment '${name}' not found` }, 404);
    return context.json(view);
  });

  app.get('/api/results', (context) => {
    parse(emptyQuerySchema, context.req.query());
    return context.json({ results: reader.results() });
  });

  app.all('/api/*', (context) => context.json({ error: 'no such API endpoint' }, 404));
  app.all('*', (context) => context.text('not found', 404));
  return app;
}
