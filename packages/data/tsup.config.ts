import { defineConfig } from 'tsup';

export default defineConfig({
  // The encoder pool starts dist/encode-worker.js in worker threads.
  entry: ['src/index.ts', 'src/encode-worker.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  external: [/^@tensorflow\//, /^@baka\//],
});
