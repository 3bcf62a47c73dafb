import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/metrics-store.ts', 'src/storage-errors.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  external: [/^@tensorflow\//, /^@baka\//],
});
