/**
 * Reading one value of a configuration as the platform saved it: a key the form left empty may be absent, `""` or of
 * another type where the schema already complained, so each reader gives undefined (or the fallback) for anything
 * but a usable value, and the validation in spec.ts says what was wrong.
 */

export type Config = Record<string, unknown>;

export function isConfig(value: unknown): value is Config {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function stringOf(config: Config, key: string): string | undefined {
  const value = config[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The value at a dotted path (`auth_method.client_secret`), when every object on the way is there. */
export function valueAt(config: Config, path: string): unknown {
  let value: unknown = config;
  for (const part of path.split('.')) value = isConfig(value) ? value[part] : undefined;
  return value;
}

export function booleanOf(config: Config, key: string, fallback: boolean): boolean {
  const value = config[key];
  return typeof value === 'boolean' ? value : fallback;
}

export function integerOf(config: Config, key: string): number | undefined {
  const value = config[key];
  return typeof value === 'number' ? value : undefined;
}

export function stringsOf(config: Config, key: string): string[] | undefined {
  const value = config[key];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string' && v !== '') : undefined;
}

/** A documented key and the key the Java connector's code read by mistake: either works, both must agree. */
export function aliased(config: Config, key: string, legacyKey: string, problems: string[]): string | undefined {
  const value = stringOf(config, key);
  const legacy = stringOf(config, legacyKey);
  if (value !== undefined && legacy !== undefined && value !== legacy) {
    problems.push(
      `${key} and ${legacyKey} are both set, to different values ` +
        `(${legacyKey} is an older name of ${key}; keep only ${key})`,
    );
  }
  return value ?? legacy;
}
