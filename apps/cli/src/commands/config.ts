// `baka config`: the model config a preset, a config file and --set settings resolve to, as the
// config.json a checkpoint would hold.
//   baka config [--preset NAME] [--config FILE] [--set key=value ...] [--keys]
import { existsSync, readFileSync } from 'node:fs';
import {
  type BakaConfig,
  configFields,
  configJson,
  DEFAULT_PRESET,
  makeConfig,
  parseConfigSettings,
  PRESETS,
  presetConfig,
} from '@baka/model';
import type { Command } from 'commander';
import {
  action,
  asUserError,
  collect,
  formatDefault,
  resolveUserPath,
  UserError,
} from '../cli-kit';

export interface ConfigFlags {
  preset?: string;
  config?: string;
  set?: string[];
}

/** The preset (default: DEFAULT_PRESET unless --config is given), then the file, then --set. */
export function resolveConfig(flags: ConfigFlags): BakaConfig {
  const preset = flags.preset ?? (flags.config ? undefined : DEFAULT_PRESET);
  const base = preset === undefined ? {} : asUserError('', () => presetConfig(preset));
  let fromFile: object = {};
  if (flags.config !== undefined) {
    const path = resolveUserPath(flags.config);
    if (!existsSync(path)) throw new UserError(`--config: file not found: ${path}`);
    try {
      fromFile = JSON.parse(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new UserError(`--config: ${path} is not valid JSON (${(error as Error).message})`);
    }
  }
  const settings = asUserError('', () => parseConfigSettings(flags.set ?? []));
  const source = flags.config ? `--config ${flags.config}` : `--preset ${preset}`;
  return asUserError('', () => makeConfig({ ...base, ...fromFile, ...settings }, source));
}

export function register(program: Command): void {
  program
    .command('config')
    .description('print the resolved model config (config.json) of a preset, a file and --set keys')
    .option(
      '--preset <name>',
      `model preset: ${Object.keys(PRESETS).join(', ')} (default ${DEFAULT_PRESET})`,
    )
    .option('--config <file>', 'model config JSON (fields override the preset)')
    .option(
      '--set <key=value>',
      'set a model config key (n_layers=2, memory=none); repeatable',
      collect,
    )
    .option('--keys', 'list the config keys with their defaults and descriptions instead')
    .action(
      action((flags: ConfigFlags & { keys?: boolean }) => {
        if (flags.keys) {
          const fields = configFields();
          // a column two wider than the longest key, so every key is followed by spaces
          const width = Math.max(16, ...fields.map((field) => field.key.length + 2));
          const lines = fields.map(
            (field) =>
              `${field.key.padEnd(width)}${(field.default === undefined ? '(required)' : formatDefault(field.default)).padEnd(16)}${field.description} Expects ${field.expected}.`,
          );
          process.stdout.write(`${lines.join('\n')}\n`);
          return;
        }
        process.stdout.write(configJson(resolveConfig(flags)));
      }),
    );
}
