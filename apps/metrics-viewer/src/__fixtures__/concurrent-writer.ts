// Writes metric rows to a run as fast as the trainer could, in its own process, for the
// concurrent-write test: `node --import tsx concurrent-writer.ts <db> <runId> <fromStep> <ms> [maxRows]`.
// Prints the last step written. Writes 50 rows every 5 ms, about 10,000 rows a second, for <ms>
// or until maxRows rows are written (so a fast machine cannot outgrow the test's full-resolution read).
import { MetricsStore } from '@baka/trainer/metrics';
import { writeMetricRows } from '../fixture-database';

const [path, runIdText, fromText, millisecondsText, maxRowsText] = process.argv.slice(2);
const store = new MetricsStore(path!);
const runId = Number(runIdText);
let step = Number(fromText);
const lastAllowed = Number(fromText) + (maxRowsText ? Number(maxRowsText) : Number.POSITIVE_INFINITY);
const until = Date.now() + Number(millisecondsText);
while (Date.now() < until && step + 50 <= lastAllowed) {
  writeMetricRows(store, runId, step, step + 50, 5);
  step += 50;
  await new Promise((resolve) => setTimeout(resolve, 5));
}
store.close();
process.stdout.write(`${step - 1}\n`);
