export * from './metrics-store';
