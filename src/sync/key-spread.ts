/**
 * Which connection a record goes over. Messages sent over one connection arrive in the order they were sent; over
 * two, in any order. So every record that must keep its place relative to another goes over the same connection:
 * the records of one primary key when the stream has one (a later row of a key must not overtake an earlier one),
 * otherwise all the records of one topic. Different keys spread over the connections by a hash.
 */
import type { StreamRoute } from './routes.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over UTF-16 code units: fast, no allocation, and spreads short similar strings (ids 1, 2, 3 ...) well. */
function hash(text: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME);
  return h >>> 0;
}

export class KeySpread {
  constructor(readonly connections: number) {}

  /**
   * The index (0 to connections - 1) of the connection for a record of `route` whose key field values (raw JSON text,
   * as the source wrote them) are `key`; undefined when the stream has no key or the record's key is unusable, which
   * keeps such records in order on their topic's connection.
   */
  indexFor(route: StreamRoute, key: readonly string[] | undefined): number {
    if (this.connections === 1) return 0;
    let h = hash(route.topicName, FNV_OFFSET);
    if (key !== undefined) {
      h = Math.imul(h ^ 0xff, FNV_PRIME) >>> 0;
      // Each value followed by a separator that JSON text cannot contain unescaped, so [1, 23] and [12, 3] differ.
      for (const value of key) h = Math.imul(hash(value, h) ^ 0, FNV_PRIME) >>> 0;
    }
    return h % this.connections;
  }
}
