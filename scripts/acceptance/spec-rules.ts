/**
 * The rules the connector acceptance tests' spec suite applies to a connection specification, as problems in words.
 */

type Schema = Record<string, unknown>;

const SECRET_NAME =
  /password|passphrase|secret|token|credentials|api_?key|private_?key|client_key|_key$|^key$|certificate/i;
const FORBIDDEN = ['anyOf', 'allOf', 'not', 'if', 'patternProperties'];

/**
 * Whether a property whose name sounds secret can hold a secret: not a flag, a choice among fixed values, a URL or a
 * duration (`token_url`, `token_ttl_seconds`, `send_token_as`). The acceptance tests themselves only look at names
 * equal to one of theirs (`token`, `password`, `client_secret`, ...); this rule casts a wider net.
 */
function canHoldSecret(name: string, property: Schema): boolean {
  if (property.type === 'boolean' || 'enum' in property || 'const' in property) return false;
  return !/_url$|_seconds$/.test(name);
}

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every sub-schema with its path, the root included. */
function walk(schema: Schema, path: string, visit: (schema: Schema, path: string) => void): void {
  visit(schema, path);
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties' && isSchema(value)) {
      for (const [name, property] of Object.entries(value))
        if (isSchema(property)) walk(property, `${path}.${name}`, visit);
    } else if ((key === 'items' || key === 'additionalProperties') && isSchema(value)) {
      walk(value, `${path}.${key}`, visit);
    } else if (key === 'oneOf' && Array.isArray(value)) {
      value.forEach((variant, i) => isSchema(variant) && walk(variant, `${path}.oneOf[${i}]`, visit));
    }
  }
}

export function specProblems(connectionSpecification: Schema): string[] {
  const problems: string[] = [];
  walk(connectionSpecification, '$', (schema, path) => {
    for (const keyword of FORBIDDEN) if (keyword in schema) problems.push(`${path} uses ${keyword}`);
    const type = schema.type;
    if (Array.isArray(type) && !(type.length === 1 || (type.length === 2 && type.includes('null')))) {
      problems.push(`${path} has type ${JSON.stringify(type)}; only [X] or [X, "null"] are allowed`);
    }
    if (
      'additionalProperties' in schema &&
      schema.additionalProperties !== true &&
      !isSchema(schema.additionalProperties)
    ) {
      problems.push(
        `${path} sets additionalProperties to ${JSON.stringify(schema.additionalProperties)}; ` +
          'it must be true where set',
      );
    }
    if (Array.isArray(schema.enum) && new Set(schema.enum.map((v) => JSON.stringify(v))).size !== schema.enum.length) {
      problems.push(`${path} has duplicate enum values`);
    }
    if (Array.isArray(schema.oneOf)) {
      const constKeys = schema.oneOf.map(
        (variant) =>
          new Set(
            Object.entries(isSchema(variant) && isSchema(variant.properties) ? variant.properties : {}).flatMap(
              ([k, p]) => (isSchema(p) && 'const' in p ? [k] : []),
            ),
          ),
      );
      const shared = [...(constKeys[0] ?? [])].filter((k) => constKeys.every((keys) => keys.has(k)));
      if (shared.length === 0) problems.push(`${path}.oneOf variants share no property with a const`);
    }
    const properties = isSchema(schema.properties) ? schema.properties : {};
    for (const [name, property] of Object.entries(properties)) {
      if (!isSchema(property)) continue;
      if (SECRET_NAME.test(name) && canHoldSecret(name, property) && property.airbyte_secret !== true)
        problems.push(`${path}.${name} looks secret but lacks airbyte_secret: true`);
      if (path !== '$' && 'group' in property)
        problems.push(`${path}.${name} has a group, but only top-level properties may`);
    }
  });

  const properties = isSchema(connectionSpecification.properties) ? connectionSpecification.properties : {};
  const groups = new Set(
    (Array.isArray(connectionSpecification.groups) ? connectionSpecification.groups : []).map((g) =>
      isSchema(g) ? g.id : undefined,
    ),
  );
  const orders = new Map<string, Set<number>>();
  for (const [name, property] of Object.entries(properties)) {
    if (!isSchema(property)) continue;
    const group = typeof property.group === 'string' ? property.group : '';
    if (group && !groups.has(group)) problems.push(`$.${name} names group "${group}", which groups does not declare`);
    if (typeof property.order !== 'number') continue;
    const seen = orders.get(group) ?? new Set<number>();
    if (seen.has(property.order))
      problems.push(`$.${name} repeats order ${property.order} in group "${group || '(none)'}"`);
    seen.add(property.order);
    orders.set(group, seen);
  }
  return problems;
}
