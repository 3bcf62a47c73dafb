// Typed calls to the viewer's JSON API.
import type {
  DatabaseState,
  EvalPoint,
  ResultEntry,
  RunSummary,
  SeriesRequest,
  SeriesResponse,
} from '../metrics-reader';
import type { MetricColumn, XColumn } from '../run-columns';
import type { CurveX } from '../experiment-report';
import type { ExperimentView } from '../metrics-reader';

export type {
  CurveX,
  EvalPoint,
  ExperimentView,
  ResultEntry,
  RunSummary,
  SeriesResponse,
  MetricColumn,
  XColumn,
};

export interface RunsResponse {
  database: { path: string; state: DatabaseState };
  startCommand: string;
  runs: RunSummary[];
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: string };
    throw new Error(`${path}: ${response.status} ${body.error ?? response.statusText}`);
  }
  return (await response.json()) as T;
}

export function fetchRuns(): Promise<RunsResponse> {
  return getJson('/api/runs');
}

/** The query is the server's own request type, sent as URL parameters. */
export function fetchSeries(runId: number, query: SeriesRequest): Promise<SeriesResponse> {
  const parameters = new URLSearchParams({
    metric: query.metric,
    x: query.x,
    points: String(query.points),
  });
  if (query.from !== undefined) parameters.set('from', String(query.from));
  if (query.to !== undefined) parameters.set('to', String(query.to));
  if (query.afterStep !== undefined) parameters.set('afterStep', String(query.afterStep));
  return getJson(`/api/runs/${runId}/series?${parameters}`);
}

export async function fetchEvals(runId: number, afterStep = -1): Promise<EvalPoint[]> {
  const query = afterStep >= 0 ? `?afterStep=${afterStep}` : '';
  return (await getJson<{ evals: EvalPoint[] }>(`/api/runs/${runId}/evals${query}`)).evals;
}

export async function fetchResults(): Promise<ResultEntry[]> {
  return (await getJson<{ results: ResultEntry[] }>('/api/results')).results;
}

export async function fetchExperiments(): Promise<string[]> {
  return (await getJson<{ experiments: string[] }>('/api/experiments')).experiments;
}

export function fetchExperiment(name: string, x: CurveX): Promise<ExperimentView> {
  return getJson(`/api/experiments/${encodeURIComponent(name)}?x=${x}`);
}
