/**
 * Topic names: rendering `topic_pattern` for a stream, and checking the result against MQTT's rules before anything
 * is published. A topic the broker rejects makes it close the connection, and MQTT.js would replay the same packet
 * after every reconnect, so an invalid topic must never reach the wire.
 */

import type { KeyPath } from './key-values.js';

const PLACEHOLDER = /\{(namespace|stream)\}/g;
const KEY = '{key}';
/** Stands in for the key's levels while the rest of the pattern is rendered: no substituted value can contain it. */
const KEY_MARK = '\u0000';
// Wildcards are not allowed in topic names; control characters and lone surrogates (which cannot be encoded as
// UTF-8) are not allowed or not advisable. Only substituted values are cleaned: the pattern is the user's and is
// validated instead, so a mistake there is reported rather than silently changed.
const UNSAFE_IN_VALUE =
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this must find
  /[+#\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

// Brokers that map topics to their own subjects refuse more: NATS turns `/` into `.` and closes the connection on a
// topic with `.`, a space, `*` or `>`; RabbitMQ swaps `/` and `.`. `topic_value_escaping` strict avoids them too.
const UNSAFE_IN_VALUE_STRICT =
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this must find
  /[+#.\s*>\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

// Unicode non-characters (U+FDD0 to U+FDEF, and the last two code points of every plane): MQTT says a topic should
// not hold them, and Mosquitto 2.0 closes the connection ("malformed packet") on a PUBLISH whose topic does.
const NON_CHARACTER_CLASS =
  '\\u{FDD0}-\\u{FDEF}' +
  Array.from({ length: 17 }, (_, plane) => `\\u{${plane.toString(16)}FFFE}\\u{${plane.toString(16)}FFFF}`).join('');
const NON_CHARACTER = new RegExp(`[${NON_CHARACTER_CLASS}]`, 'u');
const NON_CHARACTERS = new RegExp(`[${NON_CHARACTER_CLASS}]`, 'gu');

export const MAX_TOPIC_BYTES = 65_535;

/** `standard` escapes what MQTT forbids; `strict` also what brokers that map topics to subjects (NATS) refuse. */
export type TopicEscaping = 'standard' | 'strict';

export function sanitizeTopicValue(value: string, escaping: TopicEscaping = 'standard'): string {
  const cleaned = value.replace(escaping === 'strict' ? UNSAFE_IN_VALUE_STRICT : UNSAFE_IN_VALUE, '_');
  return NON_CHARACTER.test(cleaned) ? cleaned.replace(NON_CHARACTERS, '_') : cleaned;
}

/**
 * What a record fills into its stream's topic: its key (one level per key field) or one of its fields (one level).
 * `field` indexes the pattern's fields (`patternFields`).
 */
export type TopicSlot = { readonly kind: 'key' } | { readonly kind: 'field'; readonly field: number };

/**
 * A stream's topic as a template: literal text around the levels each record fills in. A topic without slots is the
 * same for every record (`texts[0]`); otherwise `texts[i]` comes before `slots[i]`, and the last text ends the topic.
 */
export interface StreamTopic {
  readonly texts: readonly string[];
  readonly slots: readonly TopicSlot[];
}

/**
 * A field a pattern names (`{field:device.id}`): its path into `data`, and the placeholder as written, for messages.
 */
export interface PatternField {
  readonly path: KeyPath;
  readonly placeholder: string;
}

/**
 * Substitutes `{namespace}` and `{stream}` level by level. A level that becomes empty only because a substituted value
 * was empty (typically a stream without a namespace) is dropped, so `airbyte/{namespace}/{stream}` gives
 * `airbyte/users` rather than `airbyte//users`; an empty level the pattern itself contains is the user's choice and
 * stays. A substituted value never makes the topic start with `$`: brokers keep such topics for themselves (Mosquitto
 * drops client messages under `$SYS`, and no `#` subscription ever sees them), so it becomes `_` there. A `$` the
 * pattern itself starts with is the user's choice (AWS IoT shadow topics, for one).
 */
export function renderTopic(
  pattern: string,
  namespace: string | undefined,
  stream: string,
  escaping: TopicEscaping = 'standard',
): string {
  return renderLevels(pattern, namespace, stream, escaping).join('/');
}

function renderLevels(
  pattern: string,
  namespace: string | undefined,
  stream: string,
  escaping: TopicEscaping,
): string[] {
  const values = {
    namespace: sanitizeTopicValue(namespace ?? '', escaping),
    stream: sanitizeTopicValue(stream, escaping),
  };
  const levels: string[] = [];
  for (const level of pattern.split('/')) {
    PLACEHOLDER.lastIndex = 0;
    if (!PLACEHOLDER.test(level)) {
      levels.push(level);
      continue;
    }
    const rendered = level.replace(PLACEHOLDER, (_match, name: 'namespace' | 'stream') => values[name]);
    if (rendered !== '') levels.push(rendered);
  }
  const first = levels[0];
  if (first?.startsWith('$') && !pattern.startsWith('$')) levels[0] = `_${first.slice(1)}`;
  return levels;
}

/**
 * The pattern's levels: split at every `/` outside a placeholder, so that `{field:/a.b/c}` (a JSON Pointer) is one
 * level. An unclosed `{` takes the rest of the pattern (patternProblem refuses it).
 */
export function patternLevels(pattern: string): string[] {
  const levels: string[] = [];
  let from = 0;
  let inside = false;
  for (let at = 0; at < pattern.length; at++) {
    const char = pattern[at];
    if (char === '{') inside = true;
    else if (char === '}') inside = false;
    else if (char === '/' && !inside) {
      levels.push(pattern.slice(from, at));
      from = at + 1;
    }
  }
  levels.push(pattern.slice(from));
  return levels;
}

// Each slot's level stands in the pattern as a mark no substituted value can contain (they lose control characters):
// the key as KEY_MARK, field i as FIELD_MARK, i, FIELD_MARK.
const FIELD_MARK = '\u0001';

/**
 * The stream's topic. `keyed` asks for a place for the record's key even when the pattern has no `{key}`: the key's
 * levels then follow the stream's topic (after any field levels).
 */
export function streamTopic(
  pattern: string,
  namespace: string | undefined,
  stream: string,
  keyed: boolean,
  escaping: TopicEscaping = 'standard',
): StreamTopic {
  let field = 0;
  const levels = patternLevels(pattern).map((level) => {
    if (level === KEY) return KEY_MARK;
    return FIELD_LEVEL.test(level) ? `${FIELD_MARK}${field++}${FIELD_MARK}` : level;
  });
  if (keyed && !levels.includes(KEY_MARK)) levels.push(KEY_MARK);
  const rendered = renderLevels(levels.join('/'), namespace, stream, escaping).join('/');
  const texts: string[] = [];
  const slots: TopicSlot[] = [];
  let from = 0;
  for (let at = 0; at < rendered.length; at++) {
    const char = rendered[at];
    if (char !== KEY_MARK && char !== FIELD_MARK) continue;
    texts.push(rendered.slice(from, at));
    if (char === KEY_MARK) {
      slots.push({ kind: 'key' });
      from = at + 1;
    } else {
      const close = rendered.indexOf(FIELD_MARK, at + 1);
      slots.push({ kind: 'field', field: Number(rendered.slice(at + 1, close)) });
      from = close + 1;
      at = close;
    }
  }
  texts.push(rendered.slice(from));
  return { texts, slots };
}

/** Whether the pattern puts the record's key in the topic. */
export function patternHasKey(pattern: string): boolean {
  return patternLevels(pattern).includes(KEY);
}

const FIELD_LEVEL = /^\{field:.+\}$/s;

/** The fields the pattern's `{field:PATH}` levels name, in order (the pattern has passed `patternProblem`). */
export function patternFields(pattern: string): PatternField[] {
  return patternLevels(pattern)
    .filter((level) => FIELD_LEVEL.test(level))
    .map((placeholder) => ({ path: fieldPath(placeholder.slice('{field:'.length, -1)) as KeyPath, placeholder }));
}

/**
 * A field's path from a placeholder's PATH: a JSON Pointer when it starts with `/` (`/a.b/c` is `["a.b", "c"]`, `~1`
 * a `/` and `~0` a `~` in a name), else names separated by dots (`device.id`). Returns a description of the problem
 * when it names no field.
 */
export function fieldPath(text: string): KeyPath | string {
  if (text === '') return 'it names no field';
  if (text.startsWith('/')) {
    const names = text.slice(1).split('/');
    if (names.some((name) => /~[^01]|~$/.test(name))) return 'a ~ in a JSON Pointer must be ~0 (for ~) or ~1 (for /)';
    return names.map((name) => name.replaceAll('~1', '/').replaceAll('~0', '~'));
  }
  const names = text.split('.');
  if (names.some((name) => name === '')) {
    return 'a dot path needs a name between its dots (for names with dots, use a JSON Pointer: {field:/a.b/c})';
  }
  return names;
}

/**
 * The topic of a record: the template with its slots filled, each level already encoded (`encodeKeyLevel`). `key` is
 * the key's levels, `fields` the field levels by field index; either may be empty when no slot asks for it.
 */
export function fillTopic(topic: StreamTopic, key: readonly string[], fields: readonly string[]): string {
  const { texts, slots } = topic;
  let filled = texts[0] as string;
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i] as TopicSlot;
    filled += slot.kind === 'key' ? (key.length === 1 ? (key[0] as string) : key.join('/')) : fields[slot.field];
    filled += texts[i + 1] as string;
  }
  return filled;
}

/**
 * The filter that matches the topic of every record of a stream whose key has `keyFields` fields: `+` per slot level.
 */
export function topicFilter(topic: StreamTopic, keyFields: number): string {
  const key = new Array<string>(keyFields).fill('+');
  return fillTopic(topic, key, new Array<string>(topic.slots.length).fill('+'));
}

// What a key level must not contain as itself: the level separator, wildcards, `%` (the escape itself), `$` (a topic
// starting with it is the broker's), and characters MQTT forbids or that cannot be UTF-8 (controls, lone surrogates).
// eslint-disable-next-line no-control-regex -- control characters are exactly what this must find
const KEY_UNSAFE = /[%/+#$\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex -- as above
const KEY_UNSAFE_ALL = /[%/+#$\u0000-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex -- as above
const KEY_UNSAFE_STRICT = /[%/+#$.\s*>\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex -- as above
const KEY_UNSAFE_STRICT_ALL = /[%/+#$.\s*>\u0000-\u001f\u007f-\u009f]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function percentEncode(char: string): string {
  let encoded = '';
  for (const byte of Buffer.from(char, 'utf8')) encoded += `%${byte < 16 ? '0' : ''}${byte.toString(16).toUpperCase()}`;
  return encoded;
}

/**
 * One key value as a topic level: strings as their text, numbers exactly as the source wrote them, booleans as
 * `true`/`false`, with `%`, `/`, `+`, `#`, `$` and control characters percent-encoded (UTF-8 bytes, upper-case hex), so
 * that distinct keys give distinct levels and a level decodes back to its value with any URI decoder. An empty string
 * stays an empty level. Unicode non-characters are percent-encoded too. `strict` also encodes `.`, white space, `*` and
 * `>` (see `TopicEscaping`). Returns undefined for a value that cannot be a level: a string with a lone surrogate,
 * which has no UTF-8 form.
 */
export function encodeKeyLevel(text: string, escaping: TopicEscaping = 'standard'): string | undefined {
  if (LONE_SURROGATE.test(text)) return undefined;
  const encoded =
    escaping === 'strict'
      ? KEY_UNSAFE_STRICT.test(text)
        ? text.replace(KEY_UNSAFE_STRICT_ALL, percentEncode)
        : text
      : KEY_UNSAFE.test(text)
        ? text.replace(KEY_UNSAFE_ALL, percentEncode)
        : text;
  return NON_CHARACTER.test(encoded) ? encoded.replace(NON_CHARACTERS, percentEncode) : encoded;
}

/** Why `topic` cannot be published to, or undefined when it can. */
export function topicProblem(topic: string): string | undefined {
  if (topic === '') return 'the topic is empty';
  if (topic.includes('+') || topic.includes('#')) return 'MQTT does not allow the wildcards + and # in a topic name';
  if (topic.includes('\u0000')) return 'MQTT does not allow the character U+0000 in a topic name';
  if (NON_CHARACTER.test(topic))
    return 'it holds a Unicode non-character (such as U+FFFE), which brokers refuse in topic names';
  const bytes = Buffer.byteLength(topic, 'utf8');
  if (bytes > MAX_TOPIC_BYTES) return `the topic is ${bytes} bytes long; MQTT allows at most ${MAX_TOPIC_BYTES}`;
  return undefined;
}

/** The placeholders a pattern may hold, as the error for an unknown one lists them. */
const KNOWN_PLACEHOLDERS = '{namespace}, {stream}, {key} and {field:PATH}';
const ANY_PLACEHOLDER = /\{[^{}]*\}?/g;

/**
 * Why `pattern` can never give a valid topic, or undefined. Checked on its own so `check` can report it early.
 * `key` says whether `{key}` is allowed (the dead letter topic has no key of its own).
 */
export function patternProblem(pattern: string, key = true): string | undefined {
  const levels = patternLevels(pattern);
  for (const [placeholder] of pattern.matchAll(ANY_PLACEHOLDER)) {
    const problem = placeholderProblem(placeholder, levels, key);
    if (problem) return problem;
  }
  const keys = levels.filter((level) => level === KEY).length;
  if (keys > 1) return 'it contains {key} more than once';
  const literal = levels
    .filter((level) => level !== KEY && !FIELD_LEVEL.test(level))
    .join('/')
    .replace(PLACEHOLDER, '');
  if (literal.includes('+') || literal.includes('#')) {
    return 'it contains the wildcard + or #, which MQTT does not allow in a topic name (use it only in subscriptions)';
  }
  if (literal.includes('\u0000')) return 'it contains the character U+0000, which MQTT does not allow';
  return undefined;
}

function placeholderProblem(placeholder: string, levels: readonly string[], key: boolean): string | undefined {
  if (placeholder === '{namespace}' || placeholder === '{stream}') return undefined;
  // Each {key} and {field:PATH} is a level of its own: as many levels as the pattern holds such placeholders.
  const ownLevel = (): boolean =>
    levels.filter((level) => level === placeholder).length === levels.join('/').split(placeholder).length - 1;
  if (placeholder === KEY && key) {
    return ownLevel()
      ? undefined
      : '{key} must be a topic level of its own (between slashes), as in devices/{key}/config';
  }
  if (placeholder.startsWith('{field:') && placeholder.endsWith('}')) {
    const path = fieldPath(placeholder.slice('{field:'.length, -1));
    if (typeof path === 'string') return `its placeholder ${placeholder} is invalid: ${path}`;
    return ownLevel()
      ? undefined
      : `${placeholder} must be a topic level of its own (between slashes), as in site/{field:site}/data`;
  }
  const known = key ? KNOWN_PLACEHOLDERS : KNOWN_PLACEHOLDERS.replace(', {key}', '');
  return `it contains ${placeholder}, which is not a placeholder the connector knows (it knows ${known})`;
}
