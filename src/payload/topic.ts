/**
 * Topic names: rendering `topic_pattern` for a stream, and checking the result against MQTT's rules before anything
 * is published. A topic the broker rejects makes it close the connection, and MQTT.js would replay the same packet
 * after every reconnect, so an invalid topic must never reach the wire.
 */

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
const NON_CHARACTER_CLASS = `\\u{FDD0}-\\u{FDEF}${Array.from({ length: 17 }, (_, plane) => `\\u{${plane.toString(16)}FFFE}\\u{${plane.toString(16)}FFFF}`).join('')}`;
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
 * A stream's topic, with the place where each record's key goes when the pattern has `{key}` (or the sync mode keys
 * its messages): the record's topic is then `before` + the key's levels + `after`.
 */
export interface StreamTopic {
  /** The topic of every message, or for keyed topics the text before the key's levels. */
  readonly before: string;
  /** For keyed topics, the text after the key's levels; undefined when messages are not keyed. */
  readonly after: string | undefined;
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
 * The stream's topic. `keyed` asks for a place for the record's key even when the pattern has no `{key}`: the key's
 * levels then follow the stream's topic.
 */
export function streamTopic(
  pattern: string,
  namespace: string | undefined,
  stream: string,
  keyed: boolean,
  escaping: TopicEscaping = 'standard',
): StreamTopic {
  const hasKey = pattern.split('/').includes(KEY);
  if (!hasKey && !keyed) return { before: renderTopic(pattern, namespace, stream, escaping), after: undefined };
  const template = hasKey
    ? pattern
        .split('/')
        .map((level) => (level === KEY ? KEY_MARK : level))
        .join('/')
    : `${pattern}/${KEY_MARK}`;
  const rendered = renderLevels(template, namespace, stream, escaping).join('/');
  const at = rendered.indexOf(KEY_MARK);
  return { before: rendered.slice(0, at), after: rendered.slice(at + 1) };
}

/** Whether the pattern puts the record's key in the topic. */
export function patternHasKey(pattern: string): boolean {
  return pattern.split('/').includes(KEY);
}

/** The topic of a record whose key levels are `levels` (each already encoded by `encodeKeyLevel`). */
export function keyTopic(topic: StreamTopic, levels: readonly string[]): string {
  return levels.length === 1
    ? topic.before + (levels[0] as string) + (topic.after ?? '')
    : topic.before + levels.join('/') + (topic.after ?? '');
}

/** The filter that matches the topic of every key of a stream with `keyFields` key fields. */
export function keyFilter(topic: StreamTopic, keyFields: number): string {
  return topic.before + new Array<string>(keyFields).fill('+').join('/') + (topic.after ?? '');
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
 * stays an empty level. Unicode non-characters are percent-encoded too. `strict` also encodes `.`, white space, `*` and `>` (see `TopicEscaping`). Returns undefined for a value that cannot be a level: a string with a lone surrogate, which
 * has no UTF-8 form.
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

/** Why `pattern` can never give a valid topic, or undefined. Checked on its own so `check` can report it early. */
export function patternProblem(pattern: string): string | undefined {
  const levels = pattern.split('/');
  const keys = levels.filter((level) => level === KEY).length;
  if (keys > 1) return 'it contains {key} more than once';
  if (pattern.split(KEY).length - 1 > keys)
    return '{key} must be a topic level of its own (between slashes), as in devices/{key}/config';
  const literal = levels
    .filter((level) => level !== KEY)
    .join('/')
    .replace(PLACEHOLDER, '');
  if (literal.includes('+') || literal.includes('#')) {
    return 'it contains the wildcard + or #, which MQTT does not allow in a topic name (use it only in subscriptions)';
  }
  if (literal.includes('\u0000')) return 'it contains the character U+0000, which MQTT does not allow';
  return undefined;
}
