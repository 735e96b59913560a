/**
 * The evidence collector on its own, over a real in-flight store: which messages of a closed connection count as
 * unacknowledged (written on it, still awaiting their first acknowledgement), which is the suspect at QoS 1 and 2 (the
 * oldest of them) and at QoS 0 (the last written on it), and what the broker is known to accept (any message, the
 * largest payload, the topics). The publisher's tests drive it through the publisher; here each rule is set up alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InflightStore } from '../../../src/mqtt/inflight-store.js';
import { type PublishTarget, publishTarget } from '../../../src/mqtt/packets.js';
import { EvidenceCollector } from '../../../src/mqtt/send-evidence.js';

const USERS = publishTarget('t/users', { mqtt5: false, emittedAtProperty: false });
const ORDERS = publishTarget('t/orders', { mqtt5: false, emittedAtProperty: false, retain: true });
const EVENTS = publishTarget('t/events', { mqtt5: false, emittedAtProperty: false });

/** Keeps a message of `bytes` payload bytes to `target`, written on `connection` unless that is 0; returns its id. */
function add(store: InflightStore, target: PublishTarget, bytes: number, connection: number): number {
  const id = store.add(target, 'x'.repeat(bytes), bytes, ['1700000000000'], 0, 1);
  if (connection > 0) store.wrote(id, connection);
  return id;
}

describe('EvidenceCollector', () => {
  it('has nothing to report before any message', () => {
    assert.deepEqual(new EvidenceCollector(1, false).collect(new InflightStore(), 1), {
      qos: 1,
      retain: false,
      unacknowledged: 0,
      suspect: undefined,
      acknowledgedAny: false,
      largestAcknowledged: 0,
    });
  });

  it('counts the messages written on the closed connection still awaiting PUBACK or PUBREC, the oldest the suspect', () => {
    const evidence = new EvidenceCollector(2, false);
    const store = new InflightStore();
    add(store, USERS, 10, 1); // written on the connection before
    const received = add(store, EVENTS, 20, 2);
    store.received(received); // PUBREC came: awaiting PUBCOMP only
    add(store, ORDERS, 30, 2);
    add(store, USERS, 40, 2);
    add(store, USERS, 50, 0); // not yet written on it
    evidence.written(EVENTS, 999, 2);
    assert.deepEqual(evidence.collect(store, 2), {
      qos: 2,
      retain: true,
      unacknowledged: 2,
      suspect: { topic: 't/orders', payloadBytes: 30, topicAcknowledged: false },
      acknowledgedAny: false,
      largestAcknowledged: 0,
    });
  });

  it('names nothing in flight when no connection is up', () => {
    const evidence = new EvidenceCollector(1, false);
    const store = new InflightStore();
    add(store, USERS, 10, 1);
    add(store, USERS, 20, 0); // queued, never written: not on "connection 0" either
    const collected = evidence.collect(store, 0);
    assert.equal(collected.unacknowledged, 0);
    assert.equal(collected.suspect, undefined);
  });

  it('knows every topic the broker accepted a message on, and the largest payload it accepted', () => {
    const evidence = new EvidenceCollector(1, false);
    evidence.accepted(USERS, 300);
    evidence.accepted(USERS, 20);
    evidence.accepted(ORDERS, 50);
    evidence.accepted(USERS, 10);
    const suspectOn = (target: PublishTarget): boolean | undefined => {
      const store = new InflightStore();
      add(store, target, 5, 1);
      return evidence.collect(store, 1).suspect?.topicAcknowledged;
    };
    assert.equal(suspectOn(USERS), true);
    assert.equal(suspectOn(ORDERS), true);
    assert.equal(suspectOn(EVENTS), false);
    const collected = evidence.collect(new InflightStore(), 1);
    assert.equal(collected.acknowledgedAny, true);
    assert.equal(collected.largestAcknowledged, 300, 'the largest, not the last');
  });

  it('at QoS 0 names the last message written on the closed connection, and none written on another', () => {
    const evidence = new EvidenceCollector(0, false);
    const store = new InflightStore();
    evidence.written(USERS, 42, 3);
    evidence.written(ORDERS, 7, 3);
    assert.deepEqual(evidence.collect(store, 3), {
      qos: 0,
      retain: true,
      unacknowledged: 0,
      suspect: { topic: 't/orders', payloadBytes: 7, topicAcknowledged: false },
      acknowledgedAny: false,
      largestAcknowledged: 0,
    });
    assert.equal(evidence.collect(store, 4).suspect, undefined, 'nothing was written on connection 4');
    assert.equal(evidence.collect(store, 0).suspect, undefined);
    assert.equal(evidence.collect(store, 4).retain, false, "without a suspect, only the encoder's retain counts");
  });

  it("reports retain when the encoder retains every message, whatever the suspect's target says", () => {
    const evidence = new EvidenceCollector(1, true);
    const store = new InflightStore();
    assert.equal(evidence.collect(store, 1).retain, true);
    add(store, USERS, 5, 1);
    assert.equal(evidence.collect(store, 1).retain, true);
  });
});
