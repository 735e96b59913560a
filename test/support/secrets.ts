/**
 * Secrets drawn from the connector's own output, and the checks that every output line stays an Airbyte message
 * whatever the secret: it parses, keeps the structure it has without the secret (keys, enum values, which fields are
 * numbers), and none of its texts for people contains the secret. SPEC and STATE lines must be byte for byte the same.
 */
import assert from 'node:assert/strict';
import { protocolProblems, shortened } from './airbyte-protocol.js';
import type { Random } from './random.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The fields that carry text for people, by message type; every other string is the connector's own vocabulary. */
const TEXT_FIELDS: Readonly<Record<string, readonly string[]>> = {
  LOG: ['log.message'],
  CONNECTION_STATUS: ['connectionStatus.message'],
  TRACE: ['trace.error.message', 'trace.error.internal_message', 'trace.error.stack_trace'],
};

function isObject(value: Json): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The message with its texts replaced by `<text>` and its numbers by `<number>`: what must not change. */
function skeleton(value: Json, path: string, texts: readonly string[]): Json {
  if (typeof value === 'number') return '<number>';
  if (typeof value === 'string') return texts.includes(path) ? '<text>' : value;
  if (Array.isArray(value)) return value.map((item) => skeleton(item, path, texts));
  if (isObject(value)) {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, skeleton(item, path === '' ? key : `${path}.${key}`, texts)]),
    );
  }
  return value;
}

function textsOf(message: { [key: string]: Json }): string[] {
  const texts: string[] = [];
  for (const path of TEXT_FIELDS[typeof message.type === 'string' ? message.type : ''] ?? []) {
    let value: Json | undefined = message;
    for (const key of path.split('.')) value = value !== undefined && isObject(value) ? value[key] : undefined;
    if (typeof value === 'string') texts.push(value);
  }
  return texts;
}

function parse(line: string, context: string): { [key: string]: Json } {
  let message: Json;
  try {
    message = JSON.parse(line) as Json;
  } catch (err) {
    assert.fail(`${context}: a line is not JSON (${(err as Error).message}): ${shortened(line)}`);
  }
  const problems = protocolProblems(message);
  if (problems.length > 0)
    assert.fail(
      `${context}: not an Airbyte message a destination may print: ${shortened(line)}\n${problems.join('\n')}`,
    );
  assert.ok(isObject(message), 'a valid message is an object');
  return message;
}

/**
 * Checks `lines` (printed with `secret` configured) against `baseline` (the same run with a harmless secret): same
 * number of lines, each parsing to the same skeleton, SPEC and STATE lines identical, and no text holding the secret.
 */
export function assertSameMessages(
  lines: readonly string[],
  baseline: readonly string[],
  secret: string,
  context: string,
): void {
  const label = `${context} with secret ${JSON.stringify(secret)}`;
  assert.equal(
    lines.length,
    baseline.length,
    `${label}: ${lines.length} lines instead of ${baseline.length}:\n${lines.join('\n')}`,
  );
  lines.forEach((line, index) => {
    const expected = baseline[index] as string;
    const message = parse(line, label);
    const expectedMessage = parse(expected, `${context} baseline`);
    if (message.type === 'SPEC' || message.type === 'STATE') {
      assert.equal(line, expected, `${label}: a ${message.type} line changed`);
      return;
    }
    const texts = TEXT_FIELDS[typeof message.type === 'string' ? message.type : ''] ?? [];
    assert.deepEqual(
      skeleton(message, '', texts),
      skeleton(expectedMessage, '', texts),
      `${label}: line ${index + 1} changed its structure: ${line}`,
    );
    for (const text of textsOf(message))
      assert.ok(!text.includes(secret), `${label}: line ${index + 1} shows the secret: ${line}`);
  });
}

const EXTRA = [
  '**********',
  '***',
  '*',
  'é',
  '東京',
  '😀',
  '\ud800',
  '\udfff',
  '\u2028',
  '\\',
  '\\"',
  '"',
  '\\u0000',
  '\n',
  '\t',
];

/**
 * Everything a secret could collide with in these lines: keys, enum values, words of the texts, every run of three or
 * more digits (times included) and its parts, JSON punctuation as printed, stretches of the raw lines, and unicode.
 */
export function vocabularyOf(lines: readonly string[]): string[] {
  const words = new Set<string>(EXTRA);
  const visit = (value: Json): void => {
    if (typeof value === 'string') {
      words.add(value);
      for (const word of value.split(/[^\p{L}\p{N}_]+/u)) if (word) words.add(word);
    } else if (Array.isArray(value)) value.forEach(visit);
    else if (isObject(value)) {
      for (const [key, item] of Object.entries(value)) {
        words.add(key);
        visit(item);
      }
    }
  };
  for (const line of lines) {
    visit(parse(line, 'vocabulary'));
    for (const run of line.match(/\d{3,}/g) ?? []) {
      for (let start = 0; start + 3 <= run.length; start++)
        for (let end = start + 3; end <= run.length; end++) words.add(run.slice(start, end));
    }
    for (const run of line.match(/[{}[\]":,\\]{2,}/g) ?? []) {
      for (let start = 0; start < run.length; start++)
        for (let end = start + 1; end <= Math.min(run.length, start + 5); end++) words.add(run.slice(start, end));
    }
  }
  return [...words];
}

/** A secret from `vocabulary`: a word, two joined, or a stretch of a raw line; at least `minLength` UTF-16 units. */
export function drawSecret(
  random: Random,
  vocabulary: readonly string[],
  lines: readonly string[],
  minLength = 3,
): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  for (;;) {
    const r = random();
    let secret: string;
    if (r < 0.5) secret = pick(vocabulary);
    else if (r < 0.75) secret = pick(vocabulary) + pick(vocabulary);
    else {
      const line = pick(lines);
      const start = Math.floor(random() * line.length);
      secret = line.slice(start, start + 3 + Math.floor(random() * 10));
    }
    if (secret.length >= minLength) return secret;
  }
}
