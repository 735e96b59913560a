/**
 * Locating values inside JSON text without re-serialising them.
 *
 * `JSON.parse` turns every number into a double, so integers above 2^53 and long decimals come back changed, and
 * `JSON.stringify` of the result would publish (or echo as state) a different value than the source sent. State
 * objects therefore travel as the exact text the source wrote; these helpers find where a member's value starts and
 * ends, with the same scanner that takes RECORD lines apart (json-scanner.ts).
 */
import { C, INVALID, JsonScanner, code } from './json-scanner.js';

export interface Span {
  readonly start: number;
  readonly end: number;
}

/**
 * The span of member `key` of the object whose `{` is at `objectStart`. As with `JSON.parse`, the last occurrence of a
 * duplicated key wins. Undefined when there is no such member, or the text there is not a valid JSON object.
 */
function findMember(text: string, objectStart: number, key: string): Span | undefined {
  const scanner = new JsonScanner(text);
  scanner.pos = objectStart;
  let found: Span | undefined;
  try {
    scanner.object((name) => {
      const start = scanner.pos;
      scanner.value();
      if (name === key) found = { start, end: scanner.pos };
      return true;
    });
  } catch (err) {
    if (err === INVALID) return undefined;
    throw err;
  }
  return found;
}

/** Follows a path of object keys from the top-level object of `text`. */
export function findPath(text: string, path: readonly string[]): Span | undefined {
  const scanner = new JsonScanner(text);
  scanner.ws();
  let span: Span = { start: scanner.pos, end: text.length };
  for (const key of path) {
    if (code(text, span.start) !== C.OpenBrace) return undefined;
    const next = findMember(text, span.start, key);
    if (!next) return undefined;
    span = next;
  }
  return span;
}

/**
 * `text` with member `key` of the object at `objectSpan` set to `valueJson`: the value replaced where the key exists,
 * otherwise the member appended. Everything else stays byte for byte.
 */
export function setMember(text: string, objectSpan: Span, key: string, valueJson: string): string {
  const existing = findMember(text, objectSpan.start, key);
  if (existing) return text.slice(0, existing.start) + valueJson + text.slice(existing.end);
  const close = objectSpan.end - 1;
  const scanner = new JsonScanner(text);
  scanner.pos = objectSpan.start + 1;
  scanner.ws();
  const isEmpty = scanner.pos === close;
  const member = `${isEmpty ? '' : ','}${JSON.stringify(key)}:${valueJson}`;
  return text.slice(0, close) + member + text.slice(close);
}
