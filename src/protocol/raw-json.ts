/**
 * Locating values inside JSON text without re-serialising them.
 *
 * `JSON.parse` turns every number into a double, so integers above 2^53 and long decimals come back changed, and
 * `JSON.stringify` of the result would publish (or echo as state) a different value than the source sent. Record data
 * and state objects therefore travel as the exact text the source wrote; these helpers find where a value starts and
 * ends. They assume text that `JSON.parse` has already accepted, so they skip rather than validate, and they visit each
 * character once: this runs for every record.
 */

export interface Span {
  readonly start: number;
  readonly end: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

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
    while (text.charCodeAt(j - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return j + 1;
  }
}

/** `i` is at the first character of a value; returns the index just after it. */
export function skipValue(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === QUOTE) return skipString(text, i);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    let j = i + 1;
    for (; j < text.length; j++) {
      const c = text.charCodeAt(j);
      if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || isWhitespace(c)) break;
    }
    return j;
  }
  let depth = 0;
  let j = i;
  while (j < text.length) {
    const c = text.charCodeAt(j);
    if (c === QUOTE) {
      j = skipString(text, j);
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && --depth === 0) return j + 1;
    j++;
  }
  throw new SyntaxError('unbalanced container');
}

/** Whether the key string spanning [start, end) (quotes included) is `key`, decoding escapes only when present. */
function keyIs(text: string, start: number, end: number, key: string): boolean {
  for (let j = start + 1; j < end - 1; j++) {
    if (text.charCodeAt(j) === BACKSLASH) return (JSON.parse(text.slice(start, end)) as string) === key;
  }
  return end - start - 2 === key.length && text.startsWith(key, start + 1);
}

/**
 * Calls `visit` for each member of the object whose `{` is at `objectStart`, with the member's key span and the start
 * of its value; `visit` returns where that value ends (it may skip it or descend into it). Returns the index after the
 * object's closing brace.
 */
export function eachMember(text: string, objectStart: number, visit: (keyStart: number, keyEnd: number, valueStart: number) => number): number {
  let i = skipWhitespace(text, objectStart + 1);
  if (text.charCodeAt(i) === CLOSE_BRACE) return i + 1;
  for (;;) {
    const keyEnd = skipString(text, i);
    const valueStart = skipWhitespace(text, skipWhitespace(text, keyEnd) + 1);
    i = skipWhitespace(text, visit(i, keyEnd, valueStart));
    if (text.charCodeAt(i) !== COMMA) return i + 1;
    i = skipWhitespace(text, i + 1);
  }
}

/**
 * The span of member `key` of the object whose `{` is at `objectStart`. As with `JSON.parse`, the last occurrence of a
 * duplicated key wins.
 */
export function findMember(text: string, objectStart: number, key: string): Span | undefined {
  let found: Span | undefined;
  eachMember(text, objectStart, (keyStart, keyEnd, valueStart) => {
    const valueEnd = skipValue(text, valueStart);
    if (keyIs(text, keyStart, keyEnd, key)) found = { start: valueStart, end: valueEnd };
    return valueEnd;
  });
  return found;
}

/** Follows a path of object keys from the top-level object of `text`. */
export function findPath(text: string, path: readonly string[]): Span | undefined {
  let span: Span = { start: skipWhitespace(text, 0), end: text.length };
  for (const key of path) {
    if (text.charCodeAt(span.start) !== OPEN_BRACE) return undefined;
    const next = findMember(text, span.start, key);
    if (!next) return undefined;
    span = next;
  }
  return span;
}

export interface RecordSpans {
  data: Span | undefined;
  emittedAt: Span | undefined;
}

/**
 * `record.data` and `record.emitted_at` of a RECORD line in a single pass: the top-level object is walked once,
 * descending into `record` instead of skipping it. Last occurrences win, as in `JSON.parse`.
 */
export function recordSpans(line: string): RecordSpans {
  const spans: RecordSpans = { data: undefined, emittedAt: undefined };
  const visitRecord = (keyStart: number, keyEnd: number, valueStart: number): number => {
    const valueEnd = skipValue(line, valueStart);
    if (keyIs(line, keyStart, keyEnd, 'data')) spans.data = { start: valueStart, end: valueEnd };
    else if (keyIs(line, keyStart, keyEnd, 'emitted_at')) spans.emittedAt = { start: valueStart, end: valueEnd };
    return valueEnd;
  };
  eachMember(line, skipWhitespace(line, 0), (keyStart, keyEnd, valueStart) => {
    if (keyIs(line, keyStart, keyEnd, 'record') && line.charCodeAt(valueStart) === OPEN_BRACE) {
      spans.data = undefined;
      spans.emittedAt = undefined;
      return eachMember(line, valueStart, visitRecord);
    }
    return skipValue(line, valueStart);
  });
  return spans;
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
