// TensorFlow's start-up lines (absl pre-init warning, oneDNN, cpu_feature_guard) never reach the
// user's terminal: a real CLI process on the native backend, its stderr checked.
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
      expect(result.stderr).not.toMatch(/absl::InitializeLog|oneDNN|cpu_feature_guard|^I0000/m);
      expect(result.stderr).toBe(
        `${result.stderr
          .split('\n')
          .filter((line) => line.startsWith('backend: '))
          .join('\n')}\n`,
      );
    },
  );
});
