/**
 * The keyspace of a truncated stream: keys are held as 64-bit hashes, so the properties that matter are checked on
 * many generated topics (seeded; PROPERTY_SEED replays one case): a marked key is never stale, an unmarked held key
 * always is, and a key never added is not stale (a false positive would clear a live retained message).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Keyspace } from '../../../src/sync/keyspace.js';
import { type Random, mulberry32 } from '../../support/random.js';

const ONLY_SEED = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED);
/**
 * The key counts below are multiplied by PROPERTY_SCALE (1 by default). Mutation testing runs these tests once per
 * mutant of the keyspace, on instrumented code: it sets 0.1, which still grows the table through several doublings.
 */
const SCALE = Number(process.env.PROPERTY_SCALE ?? 1);
const scaled = (count: number): number => Math.max(2_000, Math.round(count * SCALE));

function seeds(count: number): number[] {
  return ONLY_SEED === undefined ? Array.from({ length: count }, (_, i) => i + 1) : [ONLY_SEED];
}

function forEachSeed(count: number, check: (random: Random) => void): void {
  for (const seed of seeds(count)) {
    try {
      check(mulberry32(seed));
    } catch (err) {
      throw new Error(`case with seed ${seed} failed (replay with PROPERTY_SEED=${seed}): ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

const ALPHABET = ['a', 'b', 'z', '0', '9', '/', '%2F', '_', '-', 'é', '東', '😀', '$', ' '];

/** A topic as key topics look: a stream prefix, then one to three key levels of numbers or short text. */
function randomTopic(random: Random): string {
  const levels = ['airbyte', random() < 0.5 ? 'users' : 'orders'];
  const fields = 1 + Math.floor(random() * 3);
  for (let i = 0; i < fields; i++) {
    if (random() < 0.5) {
      levels.push(String(Math.floor(random() * 1e9)));
    } else {
      let text = '';
      const length = Math.floor(random() * 8);
      for (let j = 0; j < length; j++) text += ALPHABET[Math.floor(random() * ALPHABET.length)] as string;
      levels.push(text);
    }
  }
  return levels.join('/');
}

/** `count` distinct topics. */
function distinctTopics(random: Random, count: number, exclude: ReadonlySet<string> = new Set()): string[] {
  const topics = new Set<string>();
  while (topics.size < count) {
    const topic = randomTopic(random);
    if (!exclude.has(topic)) topics.add(topic);
  }
  return [...topics];
}

function bytesPerKey(keyspace: Keyspace): number {
  return keyspace.bytes / keyspace.size;
}

describe('Keyspace', () => {
  it('holds nothing when new: nothing is stale, marking changes nothing', () => {
    const keyspace = new Keyspace();
    assert.equal(keyspace.size, 0);
    assert.equal(keyspace.unmarked, 0);
    assert.equal(keyspace.isStale('a/1'), false);
    keyspace.mark('a/1');
    assert.equal(keyspace.unmarked, 0);
    assert.equal(keyspace.isStale('a/1'), false);
  });

  it('holds an added key as stale until it is marked', () => {
    const keyspace = new Keyspace();
    keyspace.add('users/1');
    keyspace.add('users/2');
    assert.equal(keyspace.size, 2);
    assert.equal(keyspace.unmarked, 2);
    assert.equal(keyspace.isStale('users/1'), true);
    assert.equal(keyspace.isStale('users/2'), true);
    assert.equal(keyspace.isStale('users/3'), false);
    keyspace.mark('users/1');
    assert.equal(keyspace.isStale('users/1'), false);
    assert.equal(keyspace.isStale('users/2'), true);
    assert.equal(keyspace.unmarked, 1);
    assert.equal(keyspace.size, 2, 'marking keeps the key');
  });

  it('counts a key added twice once, and a key marked twice once', () => {
    const keyspace = new Keyspace();
    keyspace.add('k');
    keyspace.add('k');
    assert.equal(keyspace.size, 1);
    keyspace.mark('k');
    keyspace.mark('k');
    assert.equal(keyspace.unmarked, 0);
    keyspace.add('k');
    assert.equal(keyspace.size, 1);
    assert.equal(keyspace.isStale('k'), false, 'adding a marked key again does not unmark it');
  });

  it('holds a key it is told the sync wrote, marked, so that it is never stale, then or later', () => {
    const keyspace = new Keyspace();
    keyspace.add('held');
    keyspace.mark('written');
    assert.equal(keyspace.size, 2);
    assert.equal(keyspace.unmarked, 1);
    assert.equal(keyspace.has('written'), true);
    assert.equal(keyspace.isStale('written'), false);
    keyspace.add('written');
    assert.equal(keyspace.isStale('written'), false, 'found on the broker after the sync wrote it: still written');
    assert.equal(keyspace.unmarked, 1);
    assert.equal(keyspace.has('never'), false);
  });

  it('tells apart keys that differ by one character, its position, or a surrogate half', () => {
    const keys = [
      '',
      'a',
      'b',
      'ab',
      'ba',
      'a/b',
      'a%2Fb',
      'users/1',
      'users/10',
      'users/01',
      'users/1 ',
      '😀',
      '\ud83d\ude01',
      'é',
      'e\u0301',
    ];
    const keyspace = new Keyspace();
    for (const key of keys) keyspace.add(key);
    assert.equal(keyspace.size, keys.length);
    for (const [i, key] of keys.entries()) {
      keyspace.mark(key);
      for (const [j, other] of keys.entries())
        assert.equal(keyspace.isStale(other), j > i, `after marking ${JSON.stringify(key)}: ${JSON.stringify(other)}`);
    }
  });

  it('never calls a marked key stale, always calls an unmarked held key stale, and not a key never added (100,000 random topics)', () => {
    forEachSeed(3, (random) => {
      const keyspace = new Keyspace();
      const held = distinctTopics(random, scaled(100_000));
      const marked = held.filter(() => random() < 0.5);
      for (const topic of held) keyspace.add(topic);
      for (const topic of marked) keyspace.mark(topic);
      // Marks of keys not held before, as a sync writes new keys too: held from then on, never stale.
      const others = distinctTopics(random, scaled(100_000), new Set(held));
      const written = others.slice(0, scaled(50_000));
      for (const topic of written) keyspace.mark(topic);
      assert.equal(keyspace.size, held.length + written.length);
      assert.equal(keyspace.unmarked, held.length - marked.length);
      const markedSet = new Set(marked);
      for (const topic of held) assert.equal(keyspace.isStale(topic), !markedSet.has(topic), topic);
      const falsePositives = others.filter((topic) => keyspace.isStale(topic));
      assert.deepEqual(falsePositives, [], 'keys written or never seen are never stale');
    });
  });

  it('has no false positive among 300,000 sequential keys next to 100,000 held ones', () => {
    const keyspace = new Keyspace();
    const held = scaled(100_000);
    for (let id = 0; id < held; id++) keyspace.add(`crm/users/${id}`);
    assert.equal(keyspace.size, held);
    for (let id = held; id < 4 * held; id++)
      assert.equal(keyspace.isStale(`crm/users/${id}`), false, `crm/users/${id}`);
    for (let id = 0; id < held; id += 7) {
      assert.equal(keyspace.isStale(`crm/users/${id}/`), false);
      assert.equal(keyspace.isStale(`crm/user/${id}`), false);
      assert.equal(keyspace.isStale(`crm/users/${id}`), true);
    }
  });

  it('keeps every key and every mark as it grows', () => {
    for (const initial of [0, 1, 16, 17, 1000]) {
      const keyspace = new Keyspace(initial);
      const random = mulberry32(initial + 1);
      const topics = distinctTopics(random, scaled(20_000));
      const marked = new Set<string>();
      // Marks made between additions must survive every later growth of the table.
      for (const [i, topic] of topics.entries()) {
        keyspace.add(topic);
        if (random() < 0.3) {
          const earlier = topics[Math.floor(random() * (i + 1))] as string;
          keyspace.mark(earlier);
          marked.add(earlier);
        }
      }
      assert.equal(keyspace.size, topics.length, `initial capacity ${initial}`);
      assert.equal(keyspace.unmarked, topics.length - marked.size, `initial capacity ${initial}`);
      for (const topic of topics)
        assert.equal(keyspace.isStale(topic), !marked.has(topic), `initial capacity ${initial}: ${topic}`);
    }
  });

  it('takes 12 to 24 bytes per key at every size above 1,000', () => {
    const keyspace = new Keyspace();
    let smallest = Infinity;
    let largest = 0;
    const keys = scaled(300_000);
    for (let id = 0; id < keys; id++) {
      keyspace.add(`t/${id}`);
      // Adding a key held already must not push the table past the bound either.
      if (id % 5 === 0) keyspace.add(`t/${id >> 1}`);
      if (keyspace.size <= 1000) continue;
      const perKey = bytesPerKey(keyspace);
      smallest = Math.min(smallest, perKey);
      largest = Math.max(largest, perKey);
      assert.ok(perKey >= 12 && perKey <= 24, `${keyspace.size} keys: ${perKey.toFixed(2)} bytes per key`);
    }
    assert.equal(keyspace.size, keys);
    assert.ok(
      smallest < 13 && largest > 23,
      `the whole range is visited: ${smallest.toFixed(2)} to ${largest.toFixed(2)}`,
    );
  });

  it('holds 1,000,000 keys at under 24 bytes each (figure in the diagnostic)', (t) => {
    const keyspace = new Keyspace();
    const count = 1_000_000;
    for (let id = 0; id < count; id++) keyspace.add(`airbyte/crm/users/${id}`);
    assert.equal(keyspace.size, count, 'no two of the keys share a hash');
    const perKey = bytesPerKey(keyspace);
    t.diagnostic(`1,000,000 keys: ${keyspace.bytes} bytes, ${perKey.toFixed(2)} bytes per key`);
    assert.ok(perKey >= 12 && perKey <= 24, `${perKey} bytes per key`);
    for (let id = 0; id < count; id += 2) keyspace.mark(`airbyte/crm/users/${id}`);
    assert.equal(keyspace.unmarked, count / 2);
    for (let id = 0; id < count; id += 1009) assert.equal(keyspace.isStale(`airbyte/crm/users/${id}`), id % 2 === 1);
  });
  it('holds no key at all when new', () => {
    const keyspace = new Keyspace();
    assert.equal(keyspace.has('a/1'), false);
    assert.equal(keyspace.has(''), false);
  });

  it('sizes a new table for the capacity asked, a power of two of at least 16 slots (8 bytes and a mark each)', () => {
    assert.equal(new Keyspace().bytes, 1024 * 9);
    assert.equal(new Keyspace(0).bytes, 16 * 9);
    assert.equal(new Keyspace(1).bytes, 16 * 9);
    assert.equal(new Keyspace(1000).bytes, 1024 * 9);
    assert.equal(new Keyspace(1025).bytes, 2048 * 9);
  });

  it('tells apart two keys whose hashes share one 32-bit half and start probing at the same slot', () => {
    // Found by search: the first pair shares the high word of its hash, the second the low word; in a 16-slot table
    // each pair starts at the same slot, so the second key of a pair meets the first before an empty slot.
    for (const [first, second] of [
      ['k/479192', 'k/662789'],
      ['k/797039', 'k/805442'],
    ] as const) {
      const keyspace = new Keyspace(16);
      keyspace.add(first);
      assert.equal(keyspace.has(second), false, second);
      keyspace.mark(second);
      assert.equal(keyspace.size, 2);
      assert.equal(keyspace.isStale(first), true, `${first} is still stale after ${second} was written`);
      assert.equal(keyspace.isStale(second), false);
      assert.equal(keyspace.unmarked, 1);
    }
  });
});
