/**
 * The backward-compatibility test of the connector acceptance tests' spec suite: whether configurations saved with the
 * previous version of a connector are still accepted by the current one. Two kinds of check, as the acceptance tests
 * make them:
 *
 * - on the schemas themselves: `required` declared where there was none or grown, a type changed or narrowed (a type
 *   added to a list, or a single type turned into a list that still holds it, is a widening and allowed), a nullable
 *   type made non-nullable, an enum narrowed or declared on an existing property, a property removed;
 * - on configurations: ones valid under the previous schema, generated here deterministically from each of its
 *   top-level properties (boundary and typical values of its type, the ends of its own range, each enum value), are
 *   validated against the current schema, which catches narrowed ranges, lengths and patterns the first kind cannot
 *   see.
 *
 * Each problem is a sentence that starts with the path of the property it is about.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

type Schema = Record<string, unknown>;
type Config = Record<string, unknown>;

export interface BackwardCompatibilityOptions {
  /** How the problems name the previous version, e.g. "0.1.3". */
  readonly previousVersion?: string;
  /** Configurations known to have been used with the previous version, validated along with the generated ones. */
  readonly typicalConfigs?: readonly { readonly name: string; readonly config: Config }[];
}

const INTEGERS = [0, -1, 1, 65536, 2 ** 31];
const NUMBERS = [...INTEGERS, 0.5];
const STRINGS = ['', 'x'];
const BOOLEANS = [true, false];

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const json = (value: unknown): string => JSON.stringify(value);
const child = (path: string, name: string): string => (path ? `${path}.${name}` : name);
const where = (path: string): string => path || 'connectionSpecification';

/** A schema's `type` as a list of names; undefined when the schema allows any type. */
function typeList(schema: Schema): string[] | undefined {
  if (!('type' in schema)) return undefined;
  return (Array.isArray(schema.type) ? schema.type : [schema.type]).map((t) => (typeof t === 'string' ? t : json(t)));
}

function fitsType(value: unknown, type: string): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'string':
      return typeof value === 'string';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isSchema(value);
    default:
      return false;
  }
}

function typeProblems(previous: Schema, current: Schema, path: string): string[] {
  const before = typeList(previous);
  const after = typeList(current);
  if (after === undefined) return []; // any type now: nothing is refused
  if (before === undefined) {
    // Any type was allowed, unless an enum already kept every value within the new type.
    const values = Array.isArray(previous.enum) ? previous.enum : undefined;
    if (values && values.every((value) => after.some((type) => fitsType(value, type)))) return [];
    return [`${where(path)}: type ${json(current.type)} declared where any type was allowed`];
  }
  const problems: string[] = [];
  if (before.includes('null') && !after.includes('null')) {
    problems.push(`${where(path)}: made non-nullable (type ${json(previous.type)} is now ${json(current.type)})`);
  }
  const lost = before.filter((type) => type !== 'null' && !after.includes(type));
  if (lost.length > 0) {
    const how = lost.length === before.filter((type) => type !== 'null').length ? 'changed' : 'narrowed';
    problems.push(`${where(path)}: type ${how} from ${json(previous.type)} to ${json(current.type)}`);
  }
  return problems;
}

function enumProblems(previous: Schema, current: Schema, path: string): string[] {
  if (!Array.isArray(current.enum)) return [];
  if (!Array.isArray(previous.enum))
    return [`${where(path)}: enum ${json(current.enum)} declared on an existing property`];
  const now = new Set(current.enum.map(json));
  return previous.enum
    .filter((value) => !now.has(json(value)))
    .map((value) => `${where(path)}: enum value ${json(value)} removed`);
}

function requiredProblems(previous: Schema, current: Schema, path: string): string[] {
  if (!Array.isArray(current.required)) return [];
  if (!Array.isArray(previous.required))
    return [`${where(path)}: required ${json(current.required)} declared where there was none`];
  const before = new Set(previous.required);
  return current.required
    .filter((name) => !before.has(name))
    .map((name) => `${child(path, String(name))}: added to required`);
}

/** The checks on the schemas themselves, for a schema present in both versions and everything below it. */
function schemaProblems(previous: Schema, current: Schema, path: string): string[] {
  const problems = [
    ...requiredProblems(previous, current, path),
    ...typeProblems(previous, current, path),
    ...enumProblems(previous, current, path),
  ];
  const before = isSchema(previous.properties) ? previous.properties : {};
  const after = isSchema(current.properties) ? current.properties : {};
  for (const [name, schema] of Object.entries(before)) {
    const now = after[name];
    if (now === undefined) problems.push(`${child(path, name)}: property removed`);
    else if (isSchema(schema) && isSchema(now)) problems.push(...schemaProblems(schema, now, child(path, name)));
  }
  if (isSchema(previous.items) && isSchema(current.items))
    problems.push(...schemaProblems(previous.items, current.items, `${path}[]`));
  for (const keyword of ['oneOf', 'anyOf']) {
    // Alternatives are paired by position, the order in which a UI lists them.
    const [was, is] = [previous[keyword], current[keyword]];
    if (!Array.isArray(was) || !Array.isArray(is)) continue;
    was.forEach((variant: unknown, i) => {
      const now: unknown = is[i];
      if (isSchema(variant) && isSchema(now))
        problems.push(...schemaProblems(variant, now, `${where(path)}.${keyword}[${i}]`));
    });
  }
  return problems;
}

/**
 * A value the schema accepts, as a user would enter it: its default, its first example or enum value, or a plain one.
 */
function typicalValue(schema: Schema): unknown {
  if ('default' in schema) return schema.default;
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  if ('const' in schema) return schema.const;
  switch (typeList(schema)?.find((type) => type !== 'null')) {
    case 'integer':
    case 'number':
      return [1, ...ownBounds(schema)].find((value) => inRange(schema, value)) ?? 1;
    case 'boolean':
      return false;
    case 'array':
      return [];
    case 'object':
      return requiredOnly(schema);
    case 'string':
    case undefined:
    default:
      return 'x'.repeat(Math.max(1, typeof schema.minLength === 'number' ? schema.minLength : 1));
  }
}

const numberKeyword = (schema: Schema, keyword: string): number | undefined =>
  typeof schema[keyword] === 'number' ? schema[keyword] : undefined;

/** The ends of the range the schema itself declares, for integers (the nearest integers inside exclusive bounds). */
function ownBounds(schema: Schema): number[] {
  const bounds = [numberKeyword(schema, 'minimum'), numberKeyword(schema, 'maximum')];
  const [above, below] = [numberKeyword(schema, 'exclusiveMinimum'), numberKeyword(schema, 'exclusiveMaximum')];
  if (above !== undefined) bounds.push(Math.floor(above) + 1);
  if (below !== undefined) bounds.push(Math.ceil(below) - 1);
  return bounds.filter((value): value is number => value !== undefined);
}

function inRange(schema: Schema, value: number): boolean {
  const [min, max, above, below] = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'].map((keyword) =>
    numberKeyword(schema, keyword),
  );
  return (
    (min === undefined || value >= min) &&
    (max === undefined || value <= max) &&
    (above === undefined || value > above) &&
    (below === undefined || value < below)
  );
}

/** Strings at the lengths the schema itself allows at either end. */
function ownLengths(schema: Schema): string[] {
  return [numberKeyword(schema, 'minLength'), numberKeyword(schema, 'maxLength')]
    .filter((n): n is number => n !== undefined)
    .map((n) => 'x'.repeat(n));
}

function requiredOnly(schema: Schema): Config {
  const properties = isSchema(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required)
    ? schema.required.filter((name): name is string => typeof name === 'string')
    : [];
  return Object.fromEntries(
    required.map((name) => [name, isSchema(properties[name]) ? typicalValue(properties[name]) : 'x']),
  );
}

/**
 * The values tried for one property: boundary and typical values of its type and the ends of the range or lengths it
 * declares itself, or each value of its enum. Those the previous schema refuses are dropped later.
 */
function candidateValues(schema: Schema): unknown[] {
  if (Array.isArray(schema.enum)) return schema.enum;
  if ('const' in schema) return [schema.const];
  const examples: unknown[] = Array.isArray(schema.examples) ? (schema.examples as unknown[]) : [];
  const values: unknown[] = [typicalValue(schema), ...examples];
  for (const type of typeList(schema) ?? ['string', 'integer', 'boolean']) {
    if (type === 'integer') values.push(...INTEGERS, ...ownBounds(schema));
    else if (type === 'number') values.push(...NUMBERS, ...ownBounds(schema));
    else if (type === 'string') values.push(...STRINGS, ...ownLengths(schema));
    else if (type === 'boolean') values.push(...BOOLEANS);
    else if (type === 'null') values.push(null);
    else if (type === 'array') values.push([], isSchema(schema.items) ? [typicalValue(schema.items)] : ['x']);
    else if (type === 'object') values.push({}, requiredOnly(schema));
  }
  return [...new Map(values.map((value) => [json(value), value])).values()];
}

function valueAt(config: Config, instancePath: string): unknown {
  let value: unknown = config;
  for (const part of instancePath.split('/').slice(1)) {
    const key = part.replaceAll('~1', '/').replaceAll('~0', '~');
    value = isSchema(value) || Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
  }
  return value;
}

/** What a refusal is about: where, what it says, and the value refused unless that is a whole object. */
function refusalKey(config: Config, error: ErrorObject): string {
  const value = valueAt(config, error.instancePath);
  return `${error.instancePath} ${error.message ?? error.keyword}${isSchema(value) ? '' : ` ${json(value)}`}`;
}

const describeError = (error: ErrorObject): string =>
  `${error.instancePath ? `${error.instancePath.slice(1).replaceAll('/', '.')} ` : ''}` +
  `${error.message ?? `fails ${error.keyword}`}`;

function compile(connectionSpecification: Schema): ValidateFunction {
  // Airbyte's UI annotations (order, group, airbyte_secret...) are not JSON Schema: strict mode off lets them pass.
  const ajv = new Ajv({ allErrors: true, strict: false, logger: false });
  return ajv.compile(connectionSpecification);
}

/**
 * The configurations valid under the previous schema that the current one refuses. Each refusal (where, why, and the
 * value) is said once, by the first configuration that shows it: the one with only the required properties, then each
 * property's values on top of it, then the one with every property and the typical configurations given.
 */
function configProblems(previous: Schema, current: Schema, options: BackwardCompatibilityOptions): string[] {
  const version = options.previousVersion ?? 'the previous version';
  const validBefore = compile(previous);
  const validNow = compile(current);
  const problems: string[] = [];
  const said = new Set<string>();
  /** The refusals of a configuration valid before that have not been said yet. */
  const newRefusals = (config: Config): ErrorObject[] => {
    if (!validBefore(config) || validNow(config)) return [];
    const errors = (validNow.errors ?? []).filter((error) => !said.has(refusalKey(config, error)));
    for (const error of errors) said.add(refusalKey(config, error));
    return errors;
  };
  const wholeConfig = (name: string, config: Config): void => {
    const errors = newRefusals(config);
    if (errors.length > 0)
      problems.push(`${name} was valid in ${version} and is refused now (${errors.map(describeError).join('; ')})`);
  };

  const properties = isSchema(previous.properties) ? previous.properties : {};
  const minimal = requiredOnly(previous);
  wholeConfig('a configuration with only the required properties', minimal);
  for (const [name, schema] of Object.entries(properties)) {
    if (!isSchema(schema)) continue;
    for (const value of candidateValues(schema)) {
      const errors = newRefusals({ ...minimal, [name]: value });
      if (errors.length === 0) continue;
      // An error about the property itself reads best without repeating its path.
      const reasons = errors.map((error) =>
        error.instancePath === `/${name}` ? (error.message ?? `fails ${error.keyword}`) : describeError(error),
      );
      problems.push(`${name}: ${json(value)} was valid in ${version} and is refused now (${reasons.join('; ')})`);
    }
  }
  const full = {
    ...minimal,
    ...Object.fromEntries(
      Object.entries(properties).map(([name, schema]) => [name, isSchema(schema) ? typicalValue(schema) : 'x']),
    ),
  };
  wholeConfig('a configuration with every property at its typical value', full);
  for (const { name, config } of options.typicalConfigs ?? []) wholeConfig(name, config);
  return problems;
}

/**
 * What makes `currentSpec` (a ConnectorSpecification) refuse what `previousSpec` accepted, in words; empty when the
 * current spec is backward compatible. Pure: the same specs always give the same problems, in the same order.
 */
export function backwardCompatibilityProblems(
  previousSpec: Schema,
  currentSpec: Schema,
  options: BackwardCompatibilityOptions = {},
): string[] {
  const previous = isSchema(previousSpec.connectionSpecification) ? previousSpec.connectionSpecification : {};
  const current = isSchema(currentSpec.connectionSpecification) ? currentSpec.connectionSpecification : {};
  const problems = [...schemaProblems(previous, current, ''), ...configProblems(previous, current, options)];
  return [...new Set(problems)];
}
