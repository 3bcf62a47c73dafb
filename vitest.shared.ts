import { fileURLToPath } from 'node:url';
import type { ViteUserConfig } from 'vitest/config';

const repoRoot = fileURLToPath(new URL('.', import.meta.url));

/**
 * The one vitest configuration every package extends.
 * - Workspace siblings resolve from source through the `@baka/source` export condition,
 *   so tests never need a prior build.
 * - `test/setup-backend.ts` picks the TensorFlow.js backend once per worker (native when it loads).
 * - A JSON report per package feeds `scripts/test-summary.mjs`, which prints CI's counts line.
 */
export function sharedTestConfig(overrides: ViteUserConfig['test'] = {}): ViteUserConfig {
  const conditions = ['@baka/source', 'module', 'node', 'import', 'default'];
  return {
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@baka/source'] } },
    test: {
      setupFiles: [`${repoRoot}test/setup-backend.ts`],
      testTimeout: 60_000,
      hookTimeout: 120_000,
      pool: 'forks',
      reporters: ['default', ['json', { outputFile: '.vitest-report.json' }]],
      ...overrides,
    },
  };
}
