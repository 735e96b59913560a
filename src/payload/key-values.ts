/**
 * The values of a record's key fields (primary key, cursor), cut out of `record.data` as the source wrote them.
 *
 * They are needed for every record when topics carry the key or record ids are derived from it, so the data is not
 * parsed: one pass of the shared scanner (json-scanner.ts) over the top-level object finds every wanted member at once,
 * and only paths that go deeper look inside the member they start with. Each value comes back as its exact JSON text,
 * so `12345678901234567890` stays those digits and `1` and `"1"` stay different, together with what kind of value it
 * is: a key needs a string, number or boolean, and a missing field, a null, an object or an array each get their own
 * answer so an error can say which it was.
 */
import { C, INVALID, JsonScanner, code } from '../text/json-scanner.js';
import { findPath, type Span } from '../text/raw-json.js';

/** The path of one field inside `data`: `["id"]`, `["org", "id"]`. */
export type KeyPath = readonly string[];

export type KeyValueKind = 'string' | 'number' | 'boolean' | 'null' | 'object' | 'array' | 'missing';

export interface KeyValue {
  readonly kind: KeyValueKind;
  /** The value exactly as written in `data` (a string with its quotes and escapes); empty when missing. */
  readonly json: string;
}

const MISSING: KeyValue = { kind: 'missing', json: '' };

function kindAt(text: string, at: number): KeyValueKind {
  switch (code(text, at)) {
    case C.Quote:
      return 'string';
    case C.OpenBrace:
      return 'object';
    case C.OpenBracket:
      return 'array';
    case C.LowerN:
      return 'null';
    case C.LowerT:
    case C.LowerF:
      return 'boolean';
    default:
      return 'number';
  }
}

function valueAt(text: string, span: Span): KeyValue {
  return { kind: kindAt(text, span.start), json: text.slice(span.start, span.end) };
}

/**
 * The value at each of `paths` in `dataJson` (a JSON object, as the input's record scanner accepted it), in the order
 * of `paths`. As with `JSON.parse`, the last of duplicated members wins. A path through something that is not an
 * object (`["org", "id"]` where `org` is null) finds nothing: the value is missing.
 */
export function keyValues(dataJson: string, paths: readonly KeyPath[]): KeyValue[] {
  const wanted = new Map<string, Span | undefined>();
  for (const path of paths) if (path.length > 0) wanted.set(path[0] as string, undefined);
  const scanner = new JsonScanner(dataJson);
  scanner.ws();
  const objectStart = scanner.pos;
  if (code(dataJson, objectStart) !== C.OpenBrace) throw new TypeError('record data must be a JSON object');
  try {
    scanner.object((name) => {
      if (!wanted.has(name)) return false;
      const start = scanner.pos;
      scanner.value();
      wanted.set(name, { start, end: scanner.pos });
      return true;
    });
  } catch (err) {
    if (err === INVALID) throw new TypeError('record data is not valid JSON', { cause: err });
    throw err;
  }
  return paths.map((path) => {
    if (path.length === 0) return valueAt(dataJson, { start: objectStart, end: scanner.pos });
    const member = wanted.get(path[0] as string);
    if (!member) return MISSING;
    if (path.length === 1) return valueAt(dataJson, member);
    const inner = findPath(dataJson.slice(member.start, member.end), path.slice(1));
    return inner ? valueAt(dataJson, { start: member.start + inner.start, end: member.start + inner.end }) : MISSING;
  });
}

/** A key value as text: a string's characters (its escapes decoded), a number or boolean exactly as written. */
export function keyValueText(value: KeyValue): string {
  if (value.kind !== 'string') return value.json;
  // Most keys have no escapes: slicing off the quotes is then the whole decoding.
  return value.json.includes('\\') ? (JSON.parse(value.json) as string) : value.json.slice(1, -1);
}

/** Whether `value` can identify a record: a string, a number or a boolean. */
export function isScalar(value: KeyValue): boolean {
  return value.kind === 'string' || value.kind === 'number' || value.kind === 'boolean';
}

/** Why `value` cannot be part of a key, to finish a sentence about the field ("... is null"), or undefined. */
export function unusableKeyReason(value: KeyValue): string | undefined {
  switch (value.kind) {
    case 'missing':
      return 'is missing';
    case 'null':
      return 'is null';
    case 'object':
      return 'is an object';
    case 'array':
      return 'is an array';
    case 'string':
    case 'number':
    case 'boolean':
      return undefined;
  }
}
