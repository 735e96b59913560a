/**
 * The connector form as the Airbyte web app builds it from `spec.json`, so tests can see what a newcomer sees and
 * what the platform saves, instead of trusting our reading of the spec. The rules are the platform's own
 * (airbytehq/airbyte-platform, web app `views/Connector/ConnectorForm`: `useBuildForm.tsx` for the values a new
 * destination starts with, `components/Sections/useGroupsAndSections.tsx` and `utils.ts` for cards and sections),
 * restated here:
 *
 * - Saved values: every property with a `const` or a `default` gets it; an object gets `{}` with its own defaults;
 *   a `oneOf` gets the variant whose const the property's `default` names, else the first, with that variant's const
 *   and defaults. Then the user's input goes over them. Picking another variant in the form replaces the value with
 *   that variant's const and defaults (`components/Sections/ConditionSection.tsx`, with `useBuildForm.tsx`'s
 *   defaults), and the user's input for its fields goes over them.
 * - Cards: top-level properties by `group`, in the order of `groups`, ungrouped ones last; `airbyte_hidden` ones are
 *   not rendered. Inside a card, required fields (and `always_show`, `oneOf` and object fields, which count as
 *   required) come first, then by `order`, then by name.
 * - Sections: a required (or `always_show`, `oneOf`, object) field is shown open; an optional field with an `order`
 *   goes into a closed "Optional fields" section, one without an order into a closed footer section; neighbours of
 *   one kind share a section. A card whose only section is closed renders closed under its title. On a new
 *   destination every closed section starts closed (they open by themselves only when a value differs from its
 *   default).
 */

type Schema = Record<string, unknown>;

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function propertiesOf(schema: Schema): Record<string, Schema> {
  return isSchema(schema.properties) ? (schema.properties as Record<string, Schema>) : {};
}

/** The const each `oneOf` variant carries in the property they all share (the selection key). */
function selection(variants: readonly Schema[]): { key: string | undefined; values: unknown[] } {
  const first = variants[0] ? Object.entries(propertiesOf(variants[0])).find(([, p]) => 'const' in p)?.[0] : undefined;
  return {
    key: first,
    values: variants.map((variant) => (first === undefined ? undefined : propertiesOf(variant)[first]?.const)),
  };
}

function fillDefaults(schema: Schema, values: Record<string, unknown>): void {
  for (const [key, property] of Object.entries(propertiesOf(schema))) {
    if ('const' in property) values[key] = property.const;
    if ('default' in property) values[key] = property.default;
    if (Array.isArray(property.oneOf)) {
      const variants = property.oneOf.filter(isSchema);
      const { values: constants } = selection(variants);
      const index = 'default' in property ? constants.indexOf(property.default) : -1;
      const chosen = variants[index >= 0 ? index : 0];
      const nested: Record<string, unknown> = {};
      if (chosen) fillDefaults(chosen, nested);
      values[key] = nested;
    } else if (property.type === 'object' && isSchema(property.properties)) {
      const nested: Record<string, unknown> = {};
      fillDefaults(property, nested);
      values[key] = nested;
    }
  }
}

/** The configuration the platform saves for a new destination whose form the user filled with `input`. */
export function savedConfiguration(
  spec: { connectionSpecification: Schema },
  input: Record<string, unknown>,
): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  fillDefaults(spec.connectionSpecification, values);
  return { ...values, ...input };
}

/**
 * The value the platform saves for the `oneOf` property `key` when the user picks its variant whose const is `chosen`
 * (`SSH_KEY_AUTH` of `tunnel_method`) and fills in `input`: for `savedConfiguration`'s input.
 */
export function savedVariant(
  spec: { connectionSpecification: Schema },
  key: string,
  chosen: string,
  input: Record<string, unknown>,
): Record<string, unknown> {
  const property = propertiesOf(spec.connectionSpecification)[key];
  const variants = Array.isArray(property?.oneOf) ? property.oneOf.filter(isSchema) : [];
  const variant = variants[selection(variants).values.indexOf(chosen)];
  if (!variant) throw new Error(`spec.json has no variant ${chosen} of ${key}`);
  const values: Record<string, unknown> = {};
  fillDefaults(variant, values);
  return { ...values, ...input };
}

export interface Section {
  readonly open: boolean;
  readonly fields: readonly string[];
}

export interface Card {
  readonly title: string | undefined;
  /** The card shows its fields without a click: it has an open section. */
  readonly open: boolean;
  readonly sections: readonly Section[];
}

type DisplayType = 'expanded' | 'collapsed-inline' | 'collapsed-footer';

interface Block {
  readonly key: string;
  readonly schema: Schema;
  readonly countsAsRequired: boolean;
}

function compareBlocks(a: Block, b: Block): number {
  if (a.countsAsRequired !== b.countsAsRequired) return a.countsAsRequired ? -1 : 1;
  const ao = Number.isInteger(a.schema.order) ? (a.schema.order as number) : undefined;
  const bo = Number.isInteger(b.schema.order) ? (b.schema.order as number) : undefined;
  if (ao !== undefined && bo !== undefined) return ao - bo;
  if (ao !== undefined) return -1;
  if (bo !== undefined) return 1;
  return a.key.localeCompare(b.key, undefined, { numeric: true });
}

/** The cards of a new destination's form, in order, each with its sections as rendered before any click. */
export function formCards(spec: { connectionSpecification: Schema }): Card[] {
  const root = spec.connectionSpecification;
  const required = new Set(Array.isArray(root.required) ? (root.required as string[]) : []);
  const groupOrder = (Array.isArray(root.groups) ? root.groups.filter(isSchema) : []).map((g) => ({
    id: String(g.id),
    title: g.title as string | undefined,
  }));
  const byGroup = new Map<string | undefined, Block[]>();
  for (const [key, schema] of Object.entries(propertiesOf(root))) {
    if (schema.airbyte_hidden === true) continue;
    const structured = Array.isArray(schema.oneOf) || (schema.type === 'object' && isSchema(schema.properties));
    const countsAsRequired = required.has(key) || schema.always_show === true || structured || 'const' in schema;
    const group = typeof schema.group === 'string' ? schema.group : undefined;
    byGroup.set(group, [...(byGroup.get(group) ?? []), { key, schema, countsAsRequired }]);
  }
  const rank = (id: string | undefined): number => {
    if (id === undefined) return Number.POSITIVE_INFINITY;
    const index = groupOrder.findIndex((g) => g.id === id);
    return index < 0 ? groupOrder.length : index;
  };
  const groups = [...byGroup.keys()].sort((a, b) => rank(a) - rank(b) || String(a).localeCompare(String(b)));
  return groups.map((id) => {
    const blocks = [...(byGroup.get(id) ?? [])].sort(compareBlocks);
    const sections: { type: DisplayType; fields: string[] }[] = [];
    for (const block of blocks) {
      const type: DisplayType = block.countsAsRequired
        ? 'expanded'
        : block.schema.order !== undefined
          ? 'collapsed-inline'
          : 'collapsed-footer';
      const last = sections.at(-1);
      if (last && (last.type === type || (last.type === 'collapsed-inline' && type === 'collapsed-footer')))
        last.fields.push(block.key);
      else sections.push({ type, fields: [block.key] });
    }
    const rendered = sections.map((section) => ({ open: section.type === 'expanded', fields: section.fields }));
    return {
      title: groupOrder.find((g) => g.id === id)?.title,
      open: rendered.some((s) => s.open),
      sections: rendered,
    };
  });
}

/** The fields a newcomer sees on a new destination's form without a click, card by card, in order. */
export function visibleFields(spec: { connectionSpecification: Schema }): string[] {
  return formCards(spec).flatMap((card) =>
    card.sections.filter((section) => section.open).flatMap((section) => section.fields),
  );
}
