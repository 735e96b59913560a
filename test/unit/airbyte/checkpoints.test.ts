import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { streamKey } from '../../../src/airbyte/catalog.js';
import { Checkpoints, withDestinationStats } from '../../../src/airbyte/checkpoints.js';
import { parseLine, type StateMessage } from '../../../src/airbyte/input.js';
import { parseProtocolLine } from '../../support/airbyte-protocol.js';
import { globalStateLine, legacyStateLine, streamStateLine } from '../../support/messages.js';

function state(line: string): StateMessage {
  const message = parseLine(line, 1);
  assert.ok(message.kind === 'state');
  return message;
}

function recordCount(line: string): unknown {
  return (parseProtocolLine(line).state as { destinationStats: { recordCount: unknown } }).destinationStats.recordCount;
}

/** The `destinationStats` a released state line carries. */
function stats(line: string | undefined): unknown {
  return (parseProtocolLine(line ?? '').state as { destinationStats: unknown }).destinationStats;
}

/**
 * The ledger as the tests read it: each call returns the state lines it emitted, in order, as the output would
 * receive them.
 */
class Ledger {
  private readonly out: string[] = [];
  readonly ledger = new Checkpoints((line) => this.out.push(line));

  recordReceived(key: string): number {
    return this.ledger.recordReceived(key);
  }

  recordRefused(recordNumber: number, key: string): void {
    this.ledger.recordRefused(recordNumber, key);
  }

  acknowledged(recordNumber: number): string[] {
    this.ledger.acknowledged(recordNumber);
    return this.out.splice(0);
  }

  stateReceived(message: StateMessage): string[] {
    this.ledger.stateReceived(message);
    return this.out.splice(0);
  }

  get statesHeld(): number {
    return this.ledger.statesHeld;
  }

  get recordsReceived(): number {
    return this.ledger.recordsReceived;
  }

  get recordsAcknowledged(): number {
    return this.ledger.recordsAcknowledged;
  }

  get unacknowledged(): number {
    return this.ledger.unacknowledged;
  }

  get statesEmitted(): number {
    return this.ledger.statesEmitted;
  }
}

const USERS = { name: 'users', namespace: 'crm' };
const ORDERS = { name: 'orders' };
const usersKey = streamKey('crm', 'users');
const ordersKey = streamKey(undefined, 'orders');

describe('Checkpoints', () => {
  it('holds a state until every record before it is acknowledged', () => {
    const cp = new Ledger();
    const a = cp.recordReceived(usersKey);
    const b = cp.recordReceived(usersKey);
    assert.deepEqual(cp.stateReceived(state(streamStateLine(USERS, 1))), []);
    assert.deepEqual(cp.acknowledged(a), []);
    const released = cp.acknowledged(b);
    assert.equal(released.length, 1);
    assert.equal(recordCount(released[0] ?? ''), 2);
    assert.equal(cp.statesHeld, 0);
  });

  it('releases a state at once when nothing before it is outstanding', () => {
    const cp = new Ledger();
    assert.equal(cp.stateReceived(state(streamStateLine(USERS, 'c0'))).length, 1);
    cp.acknowledged(cp.recordReceived(usersKey));
    assert.equal(cp.stateReceived(state(streamStateLine(USERS, 'c1'))).length, 1);
  });

  it('releases states in input order even when acknowledgements arrive out of order', () => {
    const cp = new Ledger();
    const r0 = cp.recordReceived(usersKey);
    cp.stateReceived(state(streamStateLine(USERS, 's1')));
    const r1 = cp.recordReceived(usersKey);
    cp.stateReceived(state(streamStateLine(USERS, 's2')));
    const r2 = cp.recordReceived(usersKey);
    cp.stateReceived(state(streamStateLine(USERS, 's3')));
    assert.deepEqual(cp.acknowledged(r2), []);
    assert.deepEqual(cp.acknowledged(r1), []);
    assert.equal(cp.unacknowledged, 1);
    const released = cp
      .acknowledged(r0)
      .map(
        (line) =>
          (parseProtocolLine(line).state as { stream: { stream_state: { cursor: string } } }).stream.stream_state
            .cursor,
      );
    assert.deepEqual(released, ['s1', 's2', 's3']);
    assert.equal(cp.unacknowledged, 0);
  });

  it('holds a state while an earlier record on a slower connection is unacknowledged, however many later ones are', () => {
    // Record 0 went over a slow connection, the others over a fast one whose acknowledgements all come first.
    const cp = new Ledger();
    const slow = cp.recordReceived(usersKey);
    const fast = [cp.recordReceived(usersKey), cp.recordReceived(usersKey)];
    assert.deepEqual(cp.stateReceived(state(streamStateLine(USERS, 'after-2'))), []);
    fast.push(cp.recordReceived(usersKey));
    for (const record of fast) assert.deepEqual(cp.acknowledged(record), []);
    // As many records acknowledged as the first state covers, and more: still not the one before it.
    assert.equal(cp.recordsAcknowledged, 3);
    assert.deepEqual(cp.stateReceived(state(streamStateLine(USERS, 'after-3'))), []);
    assert.equal(cp.statesHeld, 2);
    assert.equal(cp.acknowledged(slow).length, 2);
    assert.equal(cp.statesEmitted, 2);
  });

  it('counts records per stream for STREAM states', () => {
    const cp = new Ledger();
    for (let i = 0; i < 3; i++) cp.acknowledged(cp.recordReceived(usersKey));
    for (let i = 0; i < 2; i++) cp.acknowledged(cp.recordReceived(ordersKey));
    assert.equal(recordCount(cp.stateReceived(state(streamStateLine(ORDERS, 1)))[0] ?? ''), 2);
    cp.acknowledged(cp.recordReceived(usersKey));
    assert.equal(recordCount(cp.stateReceived(state(streamStateLine(USERS, 1)))[0] ?? ''), 4);
    assert.equal(recordCount(cp.stateReceived(state(streamStateLine(USERS, 2)))[0] ?? ''), 0);
  });

  it('counts all records since the previous GLOBAL or LEGACY state', () => {
    const cp = new Ledger();
    cp.acknowledged(cp.recordReceived(usersKey));
    cp.acknowledged(cp.recordReceived(ordersKey));
    assert.equal(recordCount(cp.stateReceived(state(globalStateLine(1)))[0] ?? ''), 2);
    cp.acknowledged(cp.recordReceived(ordersKey));
    assert.equal(recordCount(cp.stateReceived(state(legacyStateLine(2)))[0] ?? ''), 1);
  });

  it('keeps every other field of the state, big numbers and unknown fields included', () => {
    const cp = new Ledger();
    const line = streamStateLine(
      USERS,
      'c',
      ',"sourceStats":{"recordCount":1.0},"id":12345678901234567890,"future_field":[1.50]',
    );
    const out = cp.stateReceived(state(`${line.slice(0, -1)},"top_level_unknown":true}`))[0] ?? '';
    assert.equal(out, `${line.slice(0, -2)},"destinationStats":{"recordCount":0.0}},"top_level_unknown":true}`);
  });

  it('writes counts with a decimal point, as the protocol asks of a double', () => {
    const cp = new Ledger();
    for (let i = 0; i < 2; i++) cp.acknowledged(cp.recordReceived(usersKey));
    const out = cp.stateReceived(state(streamStateLine(USERS, 'c')))[0] ?? '';
    assert.match(out, /"destinationStats":\{"recordCount":2\.0\}/);
    assert.equal(recordCount(out), 2);
  });

  it('sets only its own count in a destinationStats the input already carried, keeping every other field', () => {
    const cp = new Ledger();
    cp.acknowledged(cp.recordReceived(usersKey));
    const carried =
      ' "destinationStats" : { "recordCount" : 99, "stagedBytes": 12345678901234567890, "note": {"a":[1.50]} }';
    const line = streamStateLine(USERS, 'c', `,${carried}`);
    const out = cp.stateReceived(state(line))[0] ?? '';
    assert.equal(out, line.replace('"recordCount" : 99', '"recordCount" : 1.0'));
    const added =
      cp.stateReceived(state(streamStateLine(USERS, 'c', ',"destinationStats":{"futureCount":3.0}')))[0] ?? '';
    assert.match(added, /"destinationStats":\{"futureCount":3\.0,"recordCount":0\.0\}/);
    const empty = cp.stateReceived(state(streamStateLine(USERS, 'c', ',"destinationStats":{ }')))[0] ?? '';
    assert.match(empty, /"destinationStats":\{ "recordCount":0\.0\}/);
    // Something that is not an object has no fields to keep: it is replaced.
    const odd = cp.stateReceived(state(streamStateLine(USERS, 'c', ',"destinationStats":null')))[0] ?? '';
    assert.match(odd, /"destinationStats":\{"recordCount":0\.0\}/);
    assert.equal(odd.match(/destinationStats/g)?.length, 1);
  });

  it('sets every count it owns, each once, leaving the rest of the object alone', () => {
    const line = streamStateLine(USERS, 'c', ',"destinationStats":{"recordCount":7,"kept":true}');
    const message = state(line);
    const counts = { recordCount: 4, rejectedRecordCount: 2 };
    assert.match(
      withDestinationStats(message, counts),
      /"destinationStats":\{"recordCount":4\.0,"kept":true,"rejectedRecordCount":2\.0\}/,
    );
    const fresh = withDestinationStats(state(streamStateLine(USERS, 'c')), counts);
    assert.match(fresh, /"destinationStats":\{"recordCount":4\.0,"rejectedRecordCount":2\.0\}/);
  });

  it('refuses an acknowledgement for a record never sent or already acknowledged', () => {
    const cp = new Ledger();
    const r = cp.recordReceived(usersKey);
    cp.acknowledged(r);
    assert.throws(() => cp.acknowledged(r), RangeError);
    assert.throws(() => cp.acknowledged(5), RangeError);
  });

  it('never releases a state whose records stay unacknowledged', () => {
    const cp = new Ledger();
    cp.recordReceived(usersKey);
    const r1 = cp.recordReceived(usersKey);
    cp.stateReceived(state(streamStateLine(USERS, 1)));
    assert.deepEqual(cp.acknowledged(r1), []);
    assert.equal(cp.statesHeld, 1);
    assert.equal(cp.recordsAcknowledged, 1);
  });

  it('stays correct over many states (the held queue is compacted)', () => {
    const cp = new Ledger();
    let released = 0;
    for (let i = 0; i < 5000; i++) {
      const r = cp.recordReceived(usersKey);
      cp.stateReceived(state(streamStateLine(USERS, i)));
      released += cp.acknowledged(r).length;
    }
    assert.equal(released, 5000);
    assert.equal(cp.statesHeld, 0);
  });

  it('refuses an acknowledgement of a record not yet received, even the very next one', () => {
    const cp = new Ledger();
    const r0 = cp.recordReceived(usersKey);
    assert.throws(() => cp.acknowledged(r0 + 1), RangeError);
    assert.deepEqual(cp.acknowledged(r0), []);
    assert.throws(() => cp.acknowledged(r0), RangeError, 'twice');
  });

  it('releases states in order while later ones stay held, across the compaction of the held queue', () => {
    const cp = new Ledger();
    const records: number[] = [];
    for (let i = 0; i < 100; i++) {
      records.push(cp.recordReceived(usersKey));
      cp.stateReceived(state(streamStateLine(USERS, i)));
    }
    const released: string[] = [];
    for (const r of records.slice(0, 70)) released.push(...cp.acknowledged(r));
    assert.equal(released.length, 70);
    assert.equal(cp.statesHeld, 30, 'counted after some states went out and others wait');
    assert.equal(cp.recordsReceived, 100);
    for (const r of records.slice(70).reverse()) released.push(...cp.acknowledged(r));
    assert.equal(cp.statesHeld, 0);
    assert.deepEqual(
      released.map(
        (line) =>
          (parseProtocolLine(line).state as { stream: { stream_state: { cursor: number } } }).stream.stream_state
            .cursor,
      ),
      Array.from({ length: 100 }, (_, i) => i),
    );
  });
  it('writes no count the caller left undefined', () => {
    const out = withDestinationStats(state(streamStateLine(USERS, 'c')), {
      recordCount: 1,
      rejectedRecordCount: undefined,
    });
    assert.match(out, /"destinationStats":\{"recordCount":1\.0\}/);
    const carried = state(streamStateLine(USERS, 'c', ',"destinationStats":{"kept":1}'));
    assert.match(
      withDestinationStats(carried, { recordCount: 1, rejectedRecordCount: undefined }),
      /"destinationStats":\{"kept":1,"recordCount":1\.0\}/,
    );
  });

  it('names the record in the error for an acknowledgement it cannot take', () => {
    const cp = new Ledger();
    cp.acknowledged(cp.recordReceived(usersKey));
    assert.throws(() => cp.acknowledged(0), {
      name: 'RangeError',
      message: 'record 0 acknowledged twice or never sent',
    });
    assert.throws(() => cp.acknowledged(7), { message: 'record 7 acknowledged twice or never sent' });
  });
});

describe('Checkpoints, refused records', () => {
  it('counts a refusal before any state in the next state of its stream and the next global state', () => {
    const cp = new Ledger();
    const r = cp.recordReceived(usersKey);
    cp.recordRefused(r, usersKey);
    cp.acknowledged(r);
    assert.deepEqual(stats(cp.stateReceived(state(streamStateLine(USERS, 1)))[0]), {
      recordCount: 1,
      rejectedRecordCount: 1,
    });
    assert.deepEqual(stats(cp.stateReceived(state(streamStateLine(USERS, 2)))[0]), { recordCount: 0 });
    assert.deepEqual(stats(cp.stateReceived(state(globalStateLine(1)))[0]), { recordCount: 1, rejectedRecordCount: 1 });
    assert.deepEqual(stats(cp.stateReceived(state(globalStateLine(2)))[0]), { recordCount: 0 });
  });

  it('counts a refusal arriving after its stream state in that held state, not in the next one', () => {
    const cp = new Ledger();
    const r = cp.recordReceived(usersKey);
    cp.stateReceived(state(streamStateLine(USERS, 1)));
    cp.recordRefused(r, usersKey);
    const first = cp.acknowledged(r);
    assert.deepEqual(stats(first[0]), { recordCount: 1, rejectedRecordCount: 1 });
    assert.deepEqual(stats(cp.stateReceived(state(streamStateLine(USERS, 2)))[0]), { recordCount: 0 });
  });

  it('counts a refusal arriving after a global state in that held state, not in the next one', () => {
    const cp = new Ledger();
    const r = cp.recordReceived(usersKey);
    cp.stateReceived(state(globalStateLine(1)));
    cp.recordRefused(r, usersKey);
    assert.deepEqual(stats(cp.acknowledged(r)[0]), { recordCount: 1, rejectedRecordCount: 1 });
    assert.deepEqual(stats(cp.stateReceived(state(legacyStateLine(2)))[0]), { recordCount: 0 });
    assert.deepEqual(stats(cp.stateReceived(state(streamStateLine(USERS, 2)))[0]), {
      recordCount: 1,
      rejectedRecordCount: 1,
    });
  });

  it('counts a late refusal once in the first held state of its stream and once in the first held global state', () => {
    const cp = new Ledger();
    const r = cp.recordReceived(usersKey);
    cp.stateReceived(state(streamStateLine(USERS, 1)));
    cp.stateReceived(state(globalStateLine(1)));
    cp.stateReceived(state(streamStateLine(USERS, 2)));
    cp.stateReceived(state(globalStateLine(2)));
    cp.recordRefused(r, usersKey);
    assert.deepEqual(cp.acknowledged(r).map(stats), [
      { recordCount: 1, rejectedRecordCount: 1 },
      { recordCount: 1, rejectedRecordCount: 1 },
      { recordCount: 0 },
      { recordCount: 0 },
    ]);
    assert.deepEqual(stats(cp.stateReceived(state(streamStateLine(USERS, 3)))[0]), { recordCount: 0 });
    assert.deepEqual(stats(cp.stateReceived(state(globalStateLine(3)))[0]), { recordCount: 0 });
  });

  it('counts a late refusal in the global state held first, even behind a state of its stream', () => {
    const cp = new Ledger();
    const r = cp.recordReceived(usersKey);
    cp.stateReceived(state(globalStateLine(1)));
    cp.stateReceived(state(streamStateLine(USERS, 1)));
    cp.stateReceived(state(globalStateLine(2)));
    cp.recordRefused(r, usersKey);
    assert.deepEqual(cp.acknowledged(r).map(stats), [
      { recordCount: 1, rejectedRecordCount: 1 },
      { recordCount: 1, rejectedRecordCount: 1 },
      { recordCount: 0 },
    ]);
  });

  it('never counts a refusal in a held state of another stream', () => {
    const cp = new Ledger();
    const r = cp.recordReceived(usersKey);
    cp.stateReceived(state(streamStateLine(ORDERS, 1)));
    cp.recordRefused(r, usersKey);
    assert.deepEqual(stats(cp.acknowledged(r)[0]), { recordCount: 0 });
    assert.deepEqual(stats(cp.stateReceived(state(streamStateLine(USERS, 1)))[0]), {
      recordCount: 1,
      rejectedRecordCount: 1,
    });
  });

  it('never counts a refusal in a held state that came before the record', () => {
    const cp = new Ledger();
    const first = cp.recordReceived(usersKey);
    cp.stateReceived(state(streamStateLine(USERS, 1)));
    cp.stateReceived(state(globalStateLine(1)));
    const r = cp.recordReceived(usersKey);
    cp.recordRefused(r, usersKey);
    cp.acknowledged(r);
    assert.deepEqual(cp.acknowledged(first).map(stats), [{ recordCount: 1 }, { recordCount: 1 }]);
    assert.deepEqual(stats(cp.stateReceived(state(streamStateLine(USERS, 2)))[0]), {
      recordCount: 1,
      rejectedRecordCount: 1,
    });
    assert.deepEqual(stats(cp.stateReceived(state(globalStateLine(2)))[0]), { recordCount: 1, rejectedRecordCount: 1 });
  });
});
