export { createViewerApp, type ViewerAppOptions } from './app';
export { buildViewerAssets, type ViewerAsset, type ViewerAssets } from './assets';
export { defaultDatabasePath, resolveDatabasePath } from './default-database-path';
export { largestTriangleThreeBuckets } from './lttb';
export {
  DatabaseBusyError,
  type DatabaseState,
  type EvalPoint,
  HEARTBEAT_TIMEOUT_MS,
  MetricsReader,
  type ResultEntry,
  type RunSummary,
  START_COMMAND,
  type SeriesRequest,
  type SeriesResponse,
} from './metrics-reader';
export { METRIC_COLUMNS, type MetricColumn, X_COLUMNS, type XColumn } from './run-columns';
export {
  DEFAULT_HOST,
  DEFAULT_PORT,
  startViewerServer,
  type ViewerServer,
  type ViewerServerOptions,
} from './server';
export {
  parseHost,
  parsePort,
  startViewer,
  ViewerOptionError,
  type ViewerFlags,
} from './start-viewer';
