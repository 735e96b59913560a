import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AWAITING_ACK,
  AWAITING_COMPLETE,
  FREE,
  InflightStore,
  MAX_PACKET_IDS,
} from '../../../src/mqtt/inflight-store.js';
import { publishTarget } from '../../../src/mqtt/packets.js';

const TARGET = publishTarget('t/users', { mqtt5: false, emittedAtProperty: false });

/** Adds a message of `bytes` payload bytes whose token is `token`; returns its id. */
function add(store: InflightStore, token: number, bytes = 1): number {
  return store.add(TARGET, 'x'.repeat(bytes), bytes, ['1700000000000'], token, 100 + token);
}

/** Adds and frees messages until the next id to allocate is `next`. */
function advanceTo(store: InflightStore, next: number): void {
  while (store.nextId !== next) store.free(add(store, -1));
}

describe('InflightStore', () => {
  it('allocates ids in sequence from 1, wraps from 65,535 to 1, and never gives out 0', () => {
    const store = new InflightStore();
    assert.equal(store.lastId, MAX_PACKET_IDS, 'before any message: the id before 1');
    const seen = new Set<number>();
    for (let n = 0; n < MAX_PACKET_IDS + 10; n++) {
      const id = add(store, n);
      assert.equal(id, (n % MAX_PACKET_IDS) + 1);
      assert.equal(store.lastId, id);
      seen.add(id);
      store.free(id);
    }
    assert.equal(seen.size, MAX_PACKET_IDS);
    assert.ok(!seen.has(0));
    assert.equal(store.count, 0);
  });

  it('refuses to give out an id still in flight, naming it and its stage', () => {
    const store = new InflightStore();
    const first = add(store, 0);
    for (let n = 1; n < MAX_PACKET_IDS; n++) store.free(add(store, n));
    assert.equal(store.nextId, first, 'round again to the message still in flight');
    assert.throws(() => add(store, 99), /^Error: packet id 1 is AWAITING_ACK, expected FREE$/);
    assert.equal(store.count, 1, 'nothing was added');
  });

  it('lists the ids in flight oldest first, across the wrap', () => {
    const store = new InflightStore();
    advanceTo(store, MAX_PACKET_IDS - 2);
    const ids = [0, 1, 2, 3, 4, 5].map((token) => add(store, token));
    assert.deepEqual(ids, [65_533, 65_534, 65_535, 1, 2, 3]);
    store.free(65_534);
    store.free(2);
    assert.deepEqual(store.oldestFirst(), [65_533, 65_535, 1, 3]);
    store.free(65_533);
    assert.deepEqual(store.oldestFirst(), [65_535, 1, 3]);
  });

  it('queues every message in flight for a new connection, oldest first, then what is sent meanwhile', () => {
    const store = new InflightStore();
    advanceTo(store, MAX_PACKET_IDS - 1);
    const ids = [0, 1, 2, 3].map((token) => add(store, token));
    assert.equal(store.waiting, false);
    store.requeueAll(true);
    const later = add(store, 4);
    store.enqueue(later);
    const order: number[] = [];
    while (store.waiting) order.push(store.dequeue());
    assert.deepEqual(order, [...ids, later]);
    assert.throws(() => store.dequeue(), /the resend queue is empty/);
    store.enqueue(ids[0] as number);
    assert.deepEqual([store.waiting, store.dequeue()], [true, ids[0]], 'the queue is used again once emptied');
  });

  it('replaces what was queued when a new connection requeues, and restarts QoS 2 releases without the session', () => {
    const store = new InflightStore();
    const [a, b, c] = [0, 1, 2].map((token) => add(store, token)) as [number, number, number];
    store.received(b);
    store.enqueue(c);
    store.requeueAll(true);
    assert.equal(store.stageOf(b), AWAITING_COMPLETE, 'a resumed session still has it: only its PUBREL is due');
    store.requeueAll(false);
    assert.equal(store.stageOf(b), AWAITING_ACK, 'a new session has forgotten it: it is published again');
    const order: number[] = [];
    while (store.waiting) order.push(store.dequeue());
    assert.deepEqual(order, [a, b, c], 'each once, in order');
  });

  it('moves a message FREE -> AWAITING_ACK -> AWAITING_COMPLETE -> FREE, and throws from another stage', () => {
    const store = new InflightStore();
    const id = add(store, 0);
    assert.equal(store.stageOf(id), AWAITING_ACK);
    assert.throws(() => store.restart(id), /^Error: packet id 1 is AWAITING_ACK, expected AWAITING_COMPLETE$/);
    store.received(id);
    assert.equal(store.stageOf(id), AWAITING_COMPLETE);
    assert.throws(() => store.received(id), /^Error: packet id 1 is AWAITING_COMPLETE, expected AWAITING_ACK$/);
    store.restart(id);
    assert.equal(store.stageOf(id), AWAITING_ACK);
    store.free(id);
    assert.equal(store.stageOf(id), FREE);
    assert.throws(() => store.free(id), /^Error: packet id 1 is FREE, expected AWAITING_ACK or AWAITING_COMPLETE$/);
    assert.throws(() => store.received(7), /^Error: packet id 7 is FREE, expected AWAITING_ACK$/);
    assert.equal(store.count, 0, 'a refused transition changes nothing');
    assert.equal(store.stageOf(0), FREE, 'id 0 is never in flight');
    assert.equal(store.stageOf(MAX_PACKET_IDS + 1), undefined, 'no packet id');
  });

  it('counts the messages and payload bytes in flight', () => {
    const store = new InflightStore();
    const a = add(store, 0, 100);
    const b = add(store, 1, 250);
    const c = add(store, 2, 0);
    assert.deepEqual([store.count, store.payloadBytes], [3, 350]);
    store.received(b);
    assert.deepEqual([store.count, store.payloadBytes], [3, 350], 'PUBREC leaves it in flight');
    store.free(b);
    assert.deepEqual([store.count, store.payloadBytes], [2, 100]);
    store.free(a);
    store.free(c);
    assert.deepEqual([store.count, store.payloadBytes], [0, 0]);
  });

  it('keeps what a message is until it is freed, and where it was written since it was added', () => {
    const store = new InflightStore();
    const target = publishTarget('t/orders', { mqtt5: false, emittedAtProperty: false });
    const id = store.add(target, '{"n":1}', 7, ['1'], 42, 9);
    assert.deepEqual(
      [store.targetOf(id), store.payloadOf(id), store.bytesOf(id), store.valuesOf(id), store.tokenOf(id)],
      [target, '{"n":1}', 7, ['1'], 42],
    );
    assert.equal(store.lineOf(id), 9);
    assert.equal(store.writtenOn(id), 0, 'never written');
    store.wrote(id, 3);
    assert.equal(store.writtenOn(id), 3);
    store.free(id);
    assert.equal(store.targetOf(id), undefined, 'a freed message holds on to nothing');
    for (let n = 1; n < MAX_PACKET_IDS; n++) store.free(add(store, n));
    assert.equal(add(store, 0), id);
    assert.equal(store.writtenOn(id), 0, 'the id of a message written before starts unwritten');
  });

  it('calls back once a message is freed, or at once when it is not in flight', () => {
    const store = new InflightStore();
    const calls: string[] = [];
    store.whenFree(5, () => calls.push('not in flight'));
    const id = add(store, 0);
    store.whenFree(id, () => calls.push('freed'));
    assert.deepEqual(calls, ['not in flight']);
    store.free(id);
    assert.deepEqual(calls, ['not in flight', 'freed']);
    store.free(add(store, 1));
    assert.deepEqual(calls, ['not in flight', 'freed'], 'once');
  });
});
