/**
 * Topic names: rendering `topic_pattern` for a stream, and checking the result against MQTT's rules before anything
 * is published. A topic the broker rejects makes it close the connection, and MQTT.js would replay the same packet
 * after every reconnect, so an invalid topic must never reach the wire.
 */

const PLACEHOLDER = /\{(namespace|stream)\}/g;
// Wildcards are not allowed in topic names; control characters and lone surrogates (which cannot be encoded as
// UTF-8) are not allowed or not advisable. Only substituted values are cleaned: the pattern is the user's and is
// validated instead, so a mistake there is reported rather than silently changed.
// eslint-disable-next-line no-control-regex -- control characters are exactly what this must find
const UNSAFE_IN_VALUE = /[+#\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export const MAX_TOPIC_BYTES = 65_535;

export function sanitizeTopicValue(value: string): string {
  return value.replace(UNSAFE_IN_VALUE, '_');
}

/**
 * Substitutes `{namespace}` and `{stream}` level by level. A level that becomes empty only because a substituted value
 * was empty (typically a stream without a namespace) is dropped, so `airbyte/{namespace}/{stream}` gives
 * `airbyte/users` rather than `airbyte//users`; an empty level the pattern itself contains is the user's choice and
 * stays.
 */
export function renderTopic(pattern: string, namespace: string | undefined, stream: string): string {
  const values = { namespace: sanitizeTopicValue(namespace ?? ''), stream: sanitizeTopicValue(stream) };
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
  return levels.join('/');
}

/** Why `topic` cannot be published to, or undefined when it can. */
export function topicProblem(topic: string): string | undefined {
  if (topic === '') return 'the topic is empty';
  if (topic.includes('+') || topic.includes('#')) return 'MQTT does not allow the wildcards + and # in a topic name';
  if (topic.includes('\u0000')) return 'MQTT does not allow the character U+0000 in a topic name';
  const bytes = Buffer.byteLength(topic, 'utf8');
  if (bytes > MAX_TOPIC_BYTES) return `the topic is ${bytes} bytes long; MQTT allows at most ${MAX_TOPIC_BYTES}`;
  return undefined;
}

/** Why `pattern` can never give a valid topic, or undefined. Checked on its own so `check` can report it early. */
export function patternProblem(pattern: string): string | undefined {
  const literal = pattern.replace(PLACEHOLDER, '');
  if (literal.includes('+') || literal.includes('#')) {
    return 'it contains the wildcard + or #, which MQTT does not allow in a topic name (use it only in subscriptions)';
  }
  if (literal.includes('\u0000')) return 'it contains the character U+0000, which MQTT does not allow';
  return undefined;
}
