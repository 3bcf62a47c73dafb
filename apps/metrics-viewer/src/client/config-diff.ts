// The fields that differ between run configs: configs are flattened to dotted paths
// (`model.dimModel`, `optimizer.betas.0`), and a path is kept when any two runs disagree on it,
// including when it is missing from some.

export type FlatConfig = Map<string, string>;

export function flattenConfig(
  value: unknown,
  prefix = '',
  into: FlatConfig = new Map(),
): FlatConfig {
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value)
      ? value.map((item, index) => [String(index), item] as const)
      : Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) into.set(prefix, Array.isArray(value) ? '[]' : '{}');
    for (const [key, item] of entries) flattenConfig(item, prefix ? `${prefix}.${key}` : key, into);
  } else {
    into.set(prefix, value === undefined ? 'undefined' : JSON.stringify(value));
  }
  return into;
}

export interface ConfigDifference {
  path: string;
  /** One per config, in order; undefined where the field is missing. */
  values: (string | undefined)[];
}

export function diffConfigs(configs: readonly unknown[]): ConfigDifference[] {
  const flat = configs.map((config) => flattenConfig(config));
  const paths = new Set<string>();
  for (const map of flat) for (const path of map.keys()) paths.add(path);
  const differences: ConfigDifference[] = [];
  for (const path of [...paths].sort()) {
    const values = flat.map((map) => map.get(path));
    if (values.some((value) => value !== values[0])) differences.push({ path, values });
  }
  return differences;
}
