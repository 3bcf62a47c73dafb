#!/usr/bin/env node
// Sums the per-package vitest JSON reports (written by vitest.shared.ts) into the one line CI
// reads: `N passed, M failed`. A package whose tests ran but left no report counts as one failure,
// so a crashed test process can never look green. Exit code 1 when anything failed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
let passed = 0;
let failed = 0;
let skipped = 0;
for (const group of ['packages', 'apps']) {
  for (const name of readdirSync(join(root, group))) {
    const dir = join(root, group, name);
    if (!existsSync(join(dir, 'package.json'))) continue;
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    if (!pkg.scripts?.test) continue;
    const reportPath = join(dir, '.vitest-report.json');
    if (!existsSync(reportPath)) {
      console.error(
        `test-summary: ${group}/${name} left no .vitest-report.json (its test run crashed or did not run)`,
      );
      failed += 1;
      continue;
    }
    const report = JSON.parse(readFileSync(reportPath, 'utf8'));
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    skipped += report.numPendingTests + report.numTodoTests;
    // A test file that failed to load has no tests in it but still fails the suite.
    for (const file of report.testResults ?? []) {
      if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) {
        console.error(
          `test-summary: ${file.name} failed to load: ${String(file.message).split('\n')[0]}`,
        );
        failed += 1;
      }
    }
  }
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
