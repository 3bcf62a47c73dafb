// TensorFlow's start-up logging never reaches the user: real CLI processes on the native backend,
// their stderr checked. TF_CPP_MIN_LOG_LEVEL=2 (backend.ts) removes cpu_feature_guard and the other
// info/warning lines; the two lines TensorFlow 2.21 prints at any log level when oneDNN's custom
// ops are on (absl's pre-init warning and the oneDNN notice) are dropped by bin/baka.js, which runs
// the CLI with its stderr piped through native-log-filter.js. oneDNN is on by default only on CPUs
// with AVX-512/AMX-class features; TF_ENABLE_ONEDNN_OPTS=1 turns it on here, so the lines are
// printed on any x86 machine, as the raw binding load (the negative control) shows.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ABSL_PRE_INIT_WARNING,
  createNativeLogFilter,
  isNativeStartupLine,
  ONEDNN_NOTICE,
} from '../bin/native-log-filter.js';
import { probeNative } from './backend';

const bin = fileURLToPath(new URL('../bin/baka.js', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const checkpoint = fileURLToPath(
  new URL('../../../packages/model/__fixtures__/tiny-torch', import.meta.url),
);
const evalArgs = [
  'eval',
  '--checkpoint',
  checkpoint,
  '--input-ids',
  `${checkpoint}/input-ids.json`,
  '--backend',
  'tensorflow',
];

/** The environment of a user who set nothing, with oneDNN's custom ops on (or as TF decides). */
function tfEnv(onednn: '1' | undefined): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.TF_CPP_MIN_LOG_LEVEL;
  delete env.TF_ENABLE_ONEDNN_OPTS;
  if (onednn !== undefined) env.TF_ENABLE_ONEDNN_OPTS = onednn;
  return env;
}

const ABSL_LINE = /^WARNING: All log messages before absl::InitializeLog\(\)/;
const ONEDNN_LINE = /^I\d{4} .*\] oneDNN custom operations are on\./;

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

const native = probeNative().available;

describe.runIf(native)('native TensorFlow is quiet', { timeout: 180_000 }, () => {
  it('negative control: loading the binding with oneDNN on prints both lines at log level 2', () => {
    const result = spawnSync(
      process.execPath,
      [
        '-e',
        'require(process.argv[1])',
        createRequire(import.meta.url).resolve('@tensorflow/tfjs-node'),
      ],
      { encoding: 'utf8', timeout: 120_000, env: { ...tfEnv('1'), TF_CPP_MIN_LOG_LEVEL: '2' } },
    );
    expect(result.status, result.stderr).toBe(0);
    const stderr = lines(result.stderr);
    expect(stderr.filter((line) => ABSL_LINE.test(line))).toEqual([ABSL_PRE_INIT_WARNING]);
    expect(stderr.filter((line) => ONEDNN_LINE.test(line))).toHaveLength(1);
    // the filter recognises exactly what TensorFlow printed
    expect(stderr.filter(isNativeStartupLine)).toHaveLength(2);
  });

  for (const onednn of ['1', undefined] as const) {
    it(`bin/baka.js eval prints only its own lines (TF_ENABLE_ONEDNN_OPTS ${onednn ?? 'unset'})`, () => {
      const result = spawnSync(process.execPath, [bin, ...evalArgs], {
        encoding: 'utf8',
        timeout: 120_000,
        env: tfEnv(onednn),
      });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^loss 4\.6030 {2}perplexity/);
      // the backend line and nothing else
      expect(lines(result.stderr)).toHaveLength(1);
      expect(lines(result.stderr)[0]).toMatch(
        /^backend: tensorflow, \d+ threads? \(chosen with --backend tensorflow\)$/,
      );
      expect(result.stderr).not.toMatch(/absl|oneDNN|cpu_feature_guard|^[IWE]\d{4} /m);
    });
  }

  it('`pnpm baka eval` at the root runs through the same filter', () => {
    const result = spawnSync('pnpm', ['--silent', 'baka', ...evalArgs], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 120_000,
      env: tfEnv('1'),
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^loss 4\.6030 /m);
    expect(lines(result.stderr)).toHaveLength(1);
    expect(lines(result.stderr)[0]).toMatch(/^backend: tensorflow, /);
  });

  it('--verbose filters nothing: TensorFlow’s own lines are shown', () => {
    const result = spawnSync(process.execPath, [bin, ...evalArgs, '--verbose'], {
      encoding: 'utf8',
      timeout: 120_000,
      env: tfEnv('1'),
    });
    expect(result.status, result.stderr).toBe(0);
    const stderr = lines(result.stderr);
    expect(stderr.filter((line) => ABSL_LINE.test(line))).toHaveLength(1);
    expect(stderr.filter((line) => ONEDNN_LINE.test(line))).toHaveLength(1);
  });
});

describe('native-log-filter', () => {
  const onednn = `I0000 00:00:1796185036.533427    5248 port.cc:153] ${ONEDNN_NOTICE}`;
  const input = [
    ABSL_PRE_INIT_WARNING,
    onednn,
    'backend: tensorflow, 2 threads (chosen with --backend tensorflow)',
    // near misses are kept: other absl lines, other warnings, the notice not as a whole line
    'I0000 00:00:1796185036.533427    5248 cpu_feature_guard.cc:227] This TensorFlow binary is optimized',
    'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR!',
    `W0000 00:00:1796185036.533427    5248 port.cc:153] ${ONEDNN_NOTICE}`,
    ONEDNN_NOTICE,
    'Invalid input: naïve ✓ bytes',
    '\rtrain [####....] 50.0% 1/2',
    '\rtrain [########] 100.0% 2/2',
    '',
  ].join('\n');
  const expected = input.replace(`${ABSL_PRE_INIT_WARNING}\n${onednn}\n`, '');
  const bytes = Buffer.from(input, 'utf8').toString('latin1');

  it('drops exactly the two start-up lines, whatever the chunking, byte for byte', () => {
    const expectedBytes = Buffer.from(expected, 'utf8').toString('latin1');
    for (let cut = 0; cut <= bytes.length; cut++) {
      const filter = createNativeLogFilter();
      const out = filter.write(bytes.slice(0, cut)) + filter.write(bytes.slice(cut)) + filter.end();
      expect(out, `cut at ${cut}`).toBe(expectedBytes);
    }
    const filter = createNativeLogFilter();
    let out = '';
    for (const char of bytes) out += filter.write(char);
    expect(out + filter.end()).toBe(expectedBytes);
  });

  it('passes a line on as it arrives unless it may still become a start-up line', () => {
    const filter = createNativeLogFilter();
    expect(filter.write('\rtrain [##..] 10%')).toBe('\rtrain [##..] 10%');
    expect(filter.write(' loss 4.1')).toBe(' loss 4.1');
    expect(filter.write('\rtrain [###.] 20%\n')).toBe('\rtrain [###.] 20%\n');
    expect(filter.write('Input ')).toBe('Input ');
    expect(filter.write('ids\nWARNING: All log')).toBe('ids\n');
    expect(filter.write(' messages (not absl)\n')).toBe('WARNING: All log messages (not absl)\n');
    expect(filter.write('I0000 00:00:17.5  52 port.cc:153] oneDNN')).toBe('');
    expect(filter.write(' custom operations are off\n')).toBe(
      'I0000 00:00:17.5  52 port.cc:153] oneDNN custom operations are off\n',
    );
    expect(filter.write('I0000 00:00:17.5  52 port.cc:1')).toBe('');
    expect(filter.end()).toBe('I0000 00:00:17.5  52 port.cc:1');
  });
});
