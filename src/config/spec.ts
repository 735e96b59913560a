/**
 * The connector specification. `spec.json` at the package root is its single source: `spec` prints it and every
 * configuration is validated against its `connectionSpecification` (compiled into a validator at build time), so the
 * form the user fills in and the rules the connector applies cannot drift apart.
 */
import { readFileSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import { validate } from './validate-config.js';

interface PropertySchema {
  readonly title?: string;
  readonly type?: string;
  readonly enum?: readonly string[];
  readonly default?: unknown;
  readonly const?: unknown;
  readonly airbyte_secret?: boolean;
  /** An object's fields (each `oneOf` variant's too). */
  readonly properties?: Readonly<Record<string, PropertySchema>>;
  /** The variants of an object whose kind the user picks (`auth_method`, `tunnel_method`), each with a const. */
  readonly oneOf?: readonly PropertySchema[];
}

interface ConnectorSpec {
  readonly connectionSpecification: {
    readonly properties: Readonly<Record<string, PropertySchema>>;
    readonly required?: readonly string[];
  };
  readonly [key: string]: unknown;
}

// Compiled output lives in dist/src/config/, so the package root is three levels up (the Docker image keeps that
// layout too).
const SPEC_URL = new URL('../../../spec.json', import.meta.url);

let cached: ConnectorSpec | undefined;

function load(): ConnectorSpec {
  cached ??= JSON.parse(readFileSync(SPEC_URL, 'utf8')) as ConnectorSpec;
  return cached;
}

export function connectorSpec(): ConnectorSpec {
  return load();
}

/** The sync modes the connector declares (`supported_destination_sync_modes`), which a catalog may ask for. */
export function supportedSyncModes(): readonly string[] {
  const modes = load().supported_destination_sync_modes;
  return Array.isArray(modes) ? modes.filter((mode): mode is string => typeof mode === 'string') : [];
}

/**
 * The schema of `key`: a property, or a dotted path to a field of an object property, looked up in each of its
 * variants (`auth_method.client_secret`).
 */
function propertySchema(key: string): PropertySchema | undefined {
  const [head = '', ...rest] = key.split('.');
  let schema = load().connectionSpecification.properties[head];
  for (const part of rest) {
    const here = schema;
    schema = here?.properties?.[part] ?? here?.oneOf?.map((v) => v.properties?.[part]).find((p) => p !== undefined);
  }
  return schema;
}

/** Paths of the fields whose values must never be shown, nested ones as `object.field`. */
export function secretProperties(): string[] {
  const secrets: string[] = [];
  const walk = (properties: Readonly<Record<string, PropertySchema>> | undefined, prefix: string): void => {
    for (const [key, schema] of Object.entries(properties ?? {})) {
      if (schema.airbyte_secret === true) secrets.push(`${prefix}${key}`);
      walk(schema.properties, `${prefix}${key}.`);
      for (const variant of schema.oneOf ?? []) walk(variant.properties, `${prefix}${key}.`);
    }
  };
  walk(load().connectionSpecification.properties, '');
  return [...new Set(secrets)];
}

/**
 * A field's title as the form shows it, quoted: `"Use TLS"`. Messages name fields this way, never by retyped titles.
 */
export function fieldTitle(key: string): string {
  const title = propertySchema(key)?.title;
  return title ? `"${title}"` : key;
}

/**
 * A field as messages name it: its title and its key, `"Use TLS" (use_tls)`, so both the form and JSON users find
 * it; a nested field by its path, `"OAuth2 client secret" (auth_method.client_secret)`.
 */
export function field(key: string): string {
  const title = propertySchema(key)?.title;
  return title ? `"${title}" (${key})` : key;
}

/** The const that names the variant `value` picks of the object property `key` (its selection key's value). */
export function variantNames(key: string): { readonly selector: string; readonly names: readonly string[] } {
  const variants = propertySchema(key)?.oneOf ?? [];
  const selector =
    Object.entries(variants[0]?.properties ?? {}).find(([, schema]) => schema.const !== undefined)?.[0] ?? '';
  const names = variants.map((variant) => String(variant.properties?.[selector]?.const));
  return { selector, names };
}

function declaredDefault(key: string, type: 'number' | 'boolean' | 'string'): unknown {
  const value = load().connectionSpecification.properties[key]?.default;
  // A unit test normalises a minimal configuration and compares it with every default, so this cannot go unnoticed.
  if (typeof value !== type) throw new Error(`spec.json declares no ${type} default for ${key}`);
  return value;
}

/** The number default of field `key` in the variant `variant` (its const) of the object property `property`. */
function nestedDefault(property: string, variant: string, key: string): number {
  const { selector } = variantNames(property);
  const chosen = propertySchema(property)?.oneOf?.find((v) => v.properties?.[selector]?.const === variant);
  const value = chosen?.properties?.[key]?.default;
  if (typeof value !== 'number') throw new Error(`spec.json declares no number default for ${property}.${key}`);
  return value;
}

/** The defaults spec.json declares: the form shows them, and the connector applies the same ones. */
export const specDefault = {
  number: (key: string): number => declaredDefault(key, 'number') as number,
  boolean: (key: string): boolean => declaredDefault(key, 'boolean') as boolean,
  string: (key: string): string => declaredDefault(key, 'string') as string,
  nested: nestedDefault,
};

function describe(error: ErrorObject): string {
  const key = error.instancePath.split('/').filter(Boolean).join('.');
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `${field(key ? `${key}.${String(params.missingProperty)}` : String(params.missingProperty))} is required`;
    case 'type':
      return `${field(key)} must be ${params.type === 'integer' ? 'a whole number' : `of type ${String(params.type)}`}`;
    case 'enum':
      return `${field(key)} must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
    case 'minimum':
      return `${field(key)} must be at least ${String(params.limit)}`;
    case 'maximum':
      return `${field(key)} must be at most ${String(params.limit)}`;
    case 'minLength':
      return `${field(key)} must not be empty`;
    default:
      // ajv's own messages describe the rule, never the value, so they cannot leak a secret.
      return `${key ? field(key) : 'the configuration'} ${error.message ?? 'is invalid'}`;
  }
}

/**
 * The errors worth telling about an object with variants (`oneOf`): those of the variant its selection key names, or,
 * when it names none, that the key must name one. ajv reports every variant's complaints, which for a user who picked
 * one are noise.
 */
function variantErrors(config: Record<string, unknown>, errors: readonly ErrorObject[]): ErrorObject[] {
  const kept: ErrorObject[] = [];
  const replaced = new Set<string>();
  for (const error of errors) {
    const match = /^#\/properties\/([^/]+)\/oneOf(?:\/(\d+))?/.exec(error.schemaPath);
    if (!match) {
      kept.push(error);
      continue;
    }
    const property = match[1] as string;
    const { selector, names } = variantNames(property);
    const value = config[property];
    const chosen =
      typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[selector] : undefined;
    const index = names.indexOf(String(chosen));
    if (index >= 0) {
      if (match[2] === String(index)) kept.push(error);
    } else if (!replaced.has(property)) {
      replaced.add(property);
      kept.push({
        ...error,
        keyword: 'variant',
        instancePath: `/${property}`,
        message: `must have ${selector} set to one of ${names.join(', ')}`,
      });
    }
  }
  return kept;
}

/** Every violation of the spec's schema, in words that name the field; empty when there is none. */
export function schemaProblems(config: Record<string, unknown>): string[] {
  if (validate(config)) return [];
  const described = variantErrors(config, validate.errors ?? []).map(describe);
  return [...new Set(described)];
}
