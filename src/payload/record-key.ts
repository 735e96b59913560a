/**
 * A record's primary key, read from its `data` as the source wrote it: each key field's value as raw JSON text, so
 * that numbers keep every digit. Used for key topics and keyed sync modes, and for deterministic record ids.
 */
import { findPath } from '../airbyte/raw-json.js';
import { C } from '../airbyte/json-scanner.js';

/** Why a key field's value cannot identify the record. */
export type KeyValueProblem = 'missing' | 'null' | 'an object' | 'an array';

export type KeyValues = { readonly values: readonly string[] } | { readonly field: number; readonly problem: KeyValueProblem };

/**
 * The raw JSON text of each key field, in key order, or the first field whose value is missing, null, an object or an
 * array. `paths` are the key fields' paths into `data`.
 */
export function keyValues(dataJson: string, paths: readonly (readonly string[])[]): KeyValues {
  const values: string[] = [];
  for (const [field, path] of paths.entries()) {
    const span = findPath(dataJson, path);
    if (!span) return { field, problem: 'missing' };
    const first = dataJson.charCodeAt(span.start);
    if (first === C.OpenBrace) return { field, problem: 'an object' };
    if (first === C.OpenBracket) return { field, problem: 'an array' };
    if (first === 0x6e /* n */) return { field, problem: 'null' };
    values.push(dataJson.slice(span.start, span.end));
  }
  return { values };
}

/** A key value's text for a topic level: a string's characters, or a number or boolean exactly as written. */
export function keyText(valueJson: string): string {
  if (valueJson.charCodeAt(0) !== C.Quote) return valueJson;
  // Most keys have no escapes: slicing off the quotes is then the whole decoding.
  return valueJson.includes('\\') ? (JSON.parse(valueJson) as string) : valueJson.slice(1, -1);
}
