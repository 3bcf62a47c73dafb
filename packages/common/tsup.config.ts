import { defineConfig } from 'tsup';

// ESM and CommonJS, like @baka/rope (the lowest package that depends on this one).
export default defineConfig({
  entry: ['src/index.ts', 'src/user-paths.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
