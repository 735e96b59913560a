/**
 * Which connection a record goes over. Messages sent over one connection arrive in the order they were sent; over
 * two, in any order. So every record that must keep its place relative to another goes over the same connection:
 * the records of one primary key when the stream has one (a later row of a key must not overtake an earlier one),
 * otherwise all the records of one topic. Different keys spread over the connections by a hash.
 */
import { findPath } from '../airbyte/raw-json.js';
import type { StreamRoute } from '../airbyte/catalog.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over UTF-16 code units: fast, no allocation, and spreads short similar strings (ids 1, 2, 3 ...) well. */
function hash(text: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return h >>> 0;
}

/**
 * The key of a record as text: each key field's JSON exactly as the source wrote it, so the same key always routes the
 * same way. A missing field counts as an empty value rather than an error: routing must not fail a record that the
 * broker would accept.
 */
export function keyText(route: StreamRoute, dataJson: string): string {
  let text = '';
  for (const path of route.primaryKey) {
    const span = findPath(dataJson, path);
    text += span ? `${dataJson.slice(span.start, span.end)}\u0000` : '\u0000';
  }
  return text;
}

export class Router {
  constructor(readonly connections: number) {}

  /** The index (0 to connections - 1) of the connection for a record of `route` whose data is `dataJson`. */
  connectionFor(route: StreamRoute, dataJson: string): number {
    if (this.connections === 1) return 0;
    let h = hash(route.topic, FNV_OFFSET);
    if (route.primaryKey.length > 0) h = hash(keyText(route, dataJson), Math.imul(h ^ 0xff, FNV_PRIME) >>> 0);
    return h % this.connections;
  }
}
