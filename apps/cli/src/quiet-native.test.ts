// TensorFlow's start-up logging is quieted: a real CLI process on the native backend, its stderr
// checked. cpu_feature_guard and other info/warning lines are gone; the two lines TensorFlow 2.21
// prints at any log level (absl's pre-init warning and the oneDNN notice) are the only others
// left, because turning oneDNN off to hide them costs 20-30% of training speed (backend.ts).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { probeNative } from './backend';

const bin = fileURLToPath(new URL('../bin/baka.js', import.meta.url));
const checkpoint = fileURLToPath(
  new URL('../../../packages/model/__fixtures__/tiny-torch', import.meta.url),
);

describe('native TensorFlow is quiet', () => {
  it.runIf(probeNative().available)(
    'eval on --backend tensorflow prints only its own lines',
    () => {
      const env = { ...process.env };
      delete env.TF_CPP_MIN_LOG_LEVEL;
      delete env.TF_ENABLE_ONEDNN_OPTS;
      const result = spawnSync(
        process.execPath,
        [
          bin,
          'eval',
          '--checkpoint',
          checkpoint,
          '--input-ids',
          `${checkpoint}/input-ids.json`,
          '--backend',
          'tensorflow',
        ],
        { encoding: 'utf8', timeout: 120_000, env },
      );
      expect(result.status, result.stderr).toBe(0);
      expect(result.stderr).not.toMatch(/cpu_feature_guard|To enable the following instructions/);
      const lines = result.stderr.trimEnd().split('\n');
      const tensorflow = lines.filter((line) => !line.startsWith('backend: '));
      expect(lines.filter((line) => line.startsWith('backend: '))).toHaveLength(1);
      for (const line of tensorflow) {
        expect(line).toMatch(
          /^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR|I0000 .*\] oneDNN custom operations are on\..*)$/,
        );
      }
      expect(tensorflow.length).toBeLessThanOrEqual(2);
    },
  );
});
