/**
 * The retained keys of a truncated stream that may have to be cleared: those the broker held before the sync (of an
 * older generation), each marked once the sync writes it again. Only what is left unmarked at the end is stale.
 *
 * A stream can have tens of millions of keys, so a key is kept as a 64-bit hash of its topic, not as a string: an
 * open-addressing table of two 32-bit words per slot plus one byte for the mark, at most three quarters full, so
 * 12 to 24 bytes per key. Measured (`npm run bench`, keyspace line): 10,000,000 keys in 151 MB, 15.1 bytes per key,
 * added and half of them marked in 8.4 s, none lost to a collision. Two different topics with the same 64-bit hash
 * (about one chance in 3.7 million among 10 million keys) can only make the connector keep a stale key, never clear a
 * live one: every key the sync writes is marked (added if it was not there), a topic is cleared only if its hash is
 * held and not marked, and a marked hash never is. Keys the sync writes are held too, so a truncated stream's table
 * holds its old keys and its new ones.
 */

const EMPTY_HIGH = 0;
const MAX_LOAD = 0.75;

/** FNV-1a over UTF-16 code units, with two different offsets and a final mix, for two independent 32-bit halves. */
function hashHalves(text: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x9e3779b9;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  // Final avalanche, so that topics differing only in their last character spread over the whole table.
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  b ^= b >>> 16;
  b = Math.imul(b, 0xc2b2ae35);
  b ^= b >>> 16;
  // A zero high word marks an empty slot: never produce one.
  return [a >>> 0 || 1, b >>> 0];
}

export class Keyspace {
  private words: Uint32Array;
  private marks: Uint8Array;
  private capacity: number;
  private count = 0;
  private marked = 0;

  constructor(initialCapacity = 1024) {
    this.capacity = 1 << Math.ceil(Math.log2(Math.max(16, initialCapacity)));
    this.words = new Uint32Array(this.capacity * 2);
    this.marks = new Uint8Array(this.capacity);
  }

  /** Keys held. */
  get size(): number {
    return this.count;
  }

  /** Keys held and not marked: the stale ones, once the sync has written everything. */
  get unmarked(): number {
    return this.count - this.marked;
  }

  /** Bytes the table takes now. */
  get bytes(): number {
    return this.words.byteLength + this.marks.byteLength;
  }

  /** Adds a key (a topic); adding one that is held already changes nothing. */
  add(topic: string): void {
    this.hold(topic);
  }

  /**
   * Marks a key as written by this sync, adding it when it is not held: a key the sync wrote is then never stale, even
   * if its hash equals that of an old key the sync did not write (which is then kept, not cleared).
   */
  mark(topic: string): void {
    const slot = this.hold(topic);
    if (this.marks[slot] === 0) {
      this.marks[slot] = 1;
      this.marked++;
    }
  }

  /** Whether the key is held at all (found before the sync, or written by it). */
  has(topic: string): boolean {
    if (this.count === 0) return false;
    const [high, low] = hashHalves(topic);
    return this.words[this.find(high, low) * 2] !== EMPTY_HIGH;
  }

  /** Whether the key is held and not marked: a stale key to clear. */
  isStale(topic: string): boolean {
    if (this.count === 0) return false;
    const [high, low] = hashHalves(topic);
    const slot = this.find(high, low);
    return this.words[slot * 2] !== EMPTY_HIGH && this.marks[slot] === 0;
  }

  /** The slot of `topic`, added first when it is not held. */
  private hold(topic: string): number {
    if ((this.count + 1) / this.capacity > MAX_LOAD) this.grow();
    const [high, low] = hashHalves(topic);
    const slot = this.find(high, low);
    if (this.words[slot * 2] === EMPTY_HIGH) {
      this.words[slot * 2] = high;
      this.words[slot * 2 + 1] = low;
      this.count++;
    }
    return slot;
  }

  /** The slot holding (high, low), or the empty slot where it would go. */
  private find(high: number, low: number): number {
    const mask = this.capacity - 1;
    let slot = (low ^ Math.imul(high, 0x9e3779b1)) & mask;
    for (;;) {
      const h = this.words[slot * 2] as number;
      if (h === EMPTY_HIGH || (h === high && this.words[slot * 2 + 1] === low)) return slot;
      slot = (slot + 1) & mask;
    }
  }

  private grow(): void {
    const { words, marks, capacity } = this;
    this.capacity = capacity * 2;
    this.words = new Uint32Array(this.capacity * 2);
    this.marks = new Uint8Array(this.capacity);
    for (let slot = 0; slot < capacity; slot++) {
      const high = words[slot * 2] as number;
      if (high === EMPTY_HIGH) continue;
      const low = words[slot * 2 + 1] as number;
      const to = this.find(high, low);
      this.words[to * 2] = high;
      this.words[to * 2 + 1] = low;
      this.marks[to] = marks[slot] as number;
    }
  }
}
