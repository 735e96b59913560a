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
  readonly airbyte_secret?: boolean;
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

/** Names of the properties whose values must never be shown. */
export function secretProperties(): string[] {
  const { properties } = load().connectionSpecification;
  return Object.keys(properties).filter((key) => properties[key]?.airbyte_secret === true);
}

/**
 * A field's title as the form shows it, quoted: `"Use TLS"`. Messages name fields this way, never by retyped titles.
 */
export function fieldTitle(key: string): string {
  const title = load().connectionSpecification.properties[key]?.title;
  return title ? `"${title}"` : key;
}

/**
 * A field as messages name it: its title and its key, `"Use TLS" (use_tls)`, so both the form and JSON users find it.
 */
export function field(key: string): string {
  const title = load().connectionSpecification.properties[key]?.title;
  return title ? `"${title}" (${key})` : key;
}

function declaredDefault(key: string, type: 'number' | 'boolean' | 'string'): unknown {
  const value = load().connectionSpecification.properties[key]?.default;
  // A unit test normalises a minimal configuration and compares it with every default, so this cannot go unnoticed.
  if (typeof value !== type) throw new Error(`spec.json declares no ${type} default for ${key}`);
  return value;
}

/** The defaults spec.json declares: the form shows them, and the connector applies the same ones. */
export const specDefault = {
  number: (key: string): number => declaredDefault(key, 'number') as number,
  boolean: (key: string): boolean => declaredDefault(key, 'boolean') as boolean,
  string: (key: string): string => declaredDefault(key, 'string') as string,
};

function describe(error: ErrorObject): string {
  const key = error.instancePath.split('/').filter(Boolean).join('.');
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `${field(String(params.missingProperty))} is required`;
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

/** Every violation of the spec's schema, in words that name the field; empty when there is none. */
export function schemaProblems(config: Record<string, unknown>): string[] {
  return validate(config) ? [] : (validate.errors ?? []).map(describe);
}
