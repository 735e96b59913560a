/**
 * Locating values inside JSON text without re-serialising them.
 *
 * `JSON.parse` turns every number into a double, so integers above 2^53 and long decimals come back changed, and
 * `JSON.stringify` of the result would publish (or echo as state) a different value than the source sent. Record data
 * and state objects therefore travel as the exact text the source wrote; these helpers find where a value starts and
 * ends. They assume text that `JSON.parse` has already accepted, so they skip rather than validate.
 */

export interface Span {
  readonly start: number;
  readonly end: number;
}

// Characters that change nesting or start a string; everything else inside a container can be skipped in bulk.
const STRUCTURAL = /["[\]{}]/g;
const SCALAR_END = /[\s,}\]]/g;

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

export function skipWhitespace(text: string, i: number): number {
  while (i < text.length && isWhitespace(text.charCodeAt(i))) i++;
  return i;
}

/** `i` is at the opening quote; returns the index after the closing quote. */
function skipString(text: string, i: number): number {
  let j = i;
  for (;;) {
    j = text.indexOf('"', j + 1);
    if (j < 0) throw new SyntaxError('unterminated string');
    let backslashes = 0;
    while (text.charCodeAt(j - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return j + 1;
  }
}

/** `i` is at the first character of a value; returns the index just after it. */
export function skipValue(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === 0x22) return skipString(text, i);
  if (first !== 0x7b && first !== 0x5b) {
    SCALAR_END.lastIndex = i;
    return SCALAR_END.exec(text) ? SCALAR_END.lastIndex - 1 : text.length;
  }
  let depth = 0;
  STRUCTURAL.lastIndex = i;
  for (;;) {
    const match = STRUCTURAL.exec(text);
    if (!match) throw new SyntaxError('unbalanced container');
    const ch = match[0];
    if (ch === '"') {
      STRUCTURAL.lastIndex = skipString(text, match.index);
    } else if (ch === '{' || ch === '[') {
      depth++;
    } else if (--depth === 0) {
      return STRUCTURAL.lastIndex;
    }
  }
}

function decodeKey(text: string, start: number, end: number): string {
  const raw = text.slice(start, end);
  // Keys almost never hold escapes; decoding only when they do keeps the common path allocation-light.
  return raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
}

/**
 * The span of member `key` of the object whose `{` is at `objectStart`. As with `JSON.parse`, the last occurrence of a
 * duplicated key wins.
 */
export function findMember(text: string, objectStart: number, key: string): Span | undefined {
  let found: Span | undefined;
  let i = skipWhitespace(text, objectStart + 1);
  if (text.charCodeAt(i) === 0x7d) return undefined;
  for (;;) {
    const keyEnd = skipString(text, i);
    const name = decodeKey(text, i, keyEnd);
    const valueStart = skipWhitespace(text, skipWhitespace(text, keyEnd) + 1);
    const valueEnd = skipValue(text, valueStart);
    if (name === key) found = { start: valueStart, end: valueEnd };
    i = skipWhitespace(text, valueEnd);
    if (text.charCodeAt(i) !== 0x2c) return found;
    i = skipWhitespace(text, i + 1);
  }
}

/** Follows a path of object keys from the top-level object of `text`. */
export function findPath(text: string, path: readonly string[]): Span | undefined {
  let span: Span = { start: skipWhitespace(text, 0), end: text.length };
  for (const key of path) {
    if (text.charCodeAt(span.start) !== 0x7b) return undefined;
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
  const isEmpty = skipWhitespace(text, objectSpan.start + 1) === close;
  const member = `${isEmpty ? '' : ','}${JSON.stringify(key)}:${valueJson}`;
  return text.slice(0, close) + member + text.slice(close);
}
