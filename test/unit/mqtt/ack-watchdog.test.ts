/**
 * The acknowledgement watch on its own, over an in-flight store the test fills, with node:test's mocked timers: time
 * moves only when the test ticks it.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { QoS } from '../../../src/config/settings.js';
import { type ConnectorError, TransientError } from '../../../src/errors.js';
import { AckWatchdog, WATCH_TICKS } from '../../../src/mqtt/ack-watchdog.js';
import { InflightStore } from '../../../src/mqtt/inflight-store.js';
import { type PublishTarget, publishTarget } from '../../../src/mqtt/packets.js';

const USERS = publishTarget('t/users', { mqtt5: false, emittedAtProperty: false });
const ORDERS = publishTarget('t/orders', { mqtt5: false, emittedAtProperty: false });

interface Watch {
  readonly store: InflightStore;
  readonly watchdog: AckWatchdog;
  readonly silences: string[];
  readonly failures: ConnectorError[];
  /** Adds a message and writes it on `connection` now; returns its id. */
  readonly write: (connection: number, target?: PublishTarget) => number;
  /** Writes message `id` again on `connection` now. */
  readonly rewrite: (id: number, connection: number) => void;
}

/** `ackTimeoutMs` null: no timeout. */
function watch(qos: QoS = 1, ackTimeoutMs: number | null = 1000): Watch {
  const store = new InflightStore();
  let token = 0;
  const silences: string[] = [];
  const failures: ConnectorError[] = [];
  const watchdog = new AckWatchdog(
    store,
    { qos, ackTimeoutMs: ackTimeoutMs ?? undefined },
    { silent: (description) => silences.push(description), failed: (error) => failures.push(error) },
  );
  const rewrite = (id: number, connection: number): void => {
    store.wrote(id, connection);
    watchdog.wrote(id);
  };
  const write = (connection: number, target = USERS): number => {
    const id = store.add(target, '{}', 2, [], token++, 0);
    rewrite(id, connection);
    return id;
  };
  return { store, watchdog, silences, failures, write, rewrite };
}

describe('AckWatchdog', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setInterval'] }));
  afterEach(() => mock.timers.reset());

  it('reports messages silent for the timeout, at most a quarter more, once per connection', () => {
    const { watchdog, silences, write } = watch(1, 1000);
    watchdog.start();
    watchdog.watch(1);
    write(1, ORDERS);
    mock.timers.tick(500);
    write(1);
    mock.timers.tick(500);
    assert.deepEqual(silences, [], 'at the timeout: not yet, a message may have been written just after a tick');
    mock.timers.tick(250);
    assert.deepEqual(silences, [
      '1 message(s) at QoS 1 without PUBACK for 1 s ' +
        '("Acknowledgement timeout (seconds)" (ack_timeout_seconds)), the oldest on topic "t/orders"',
    ]);
    mock.timers.tick(5000);
    assert.equal(silences.length, 1, 'the second message went silent too, but the connection was reported already');
  });

  it('fails when a message reported silent is silent again after being sent again, on the next connection', () => {
    const { watchdog, silences, failures, write, rewrite } = watch(2, 2000);
    watchdog.start();
    watchdog.watch(1);
    const id = write(1);
    mock.timers.tick(2500);
    assert.match(silences[0] ?? '', /^1 message\(s\) at QoS 2 without PUBREC and PUBCOMP for 2 s/);
    watchdog.watch(0);
    mock.timers.tick(10_000);
    assert.equal(failures.length, 0, 'nothing is watched while reconnecting');
    watchdog.watch(2);
    rewrite(id, 2);
    mock.timers.tick(2000);
    assert.equal(failures.length, 0);
    mock.timers.tick(500);
    assert.equal(failures.length, 1);
    assert.ok(failures[0] instanceof TransientError);
    assert.match(
      failures[0]?.message ?? '',
      /^The broker left 1 message\(s\) at QoS 2 without PUBREC and PUBCOMP .*again after the connector reconnected/,
    );
    assert.equal(silences.length, 1, 'a second silence is not reported as a first');
  });

  it('watches only the messages written on the watched connection', () => {
    const { watchdog, silences, write } = watch();
    watchdog.start();
    watchdog.watch(2);
    write(1);
    mock.timers.tick(5000);
    assert.deepEqual(silences, [], 'written on an earlier connection, not yet again on this one');
    write(2);
    mock.timers.tick(1250);
    assert.match(silences[0] ?? '', /^1 message\(s\)/);
  });

  it('starts afresh for the next message under the id of one forgotten, and counts from the last write', () => {
    const { store, watchdog, silences, failures, write, rewrite } = watch();
    watchdog.start();
    watchdog.watch(1);
    const first = write(1);
    mock.timers.tick(1250);
    assert.equal(silences.length, 1);
    store.free(first);
    watchdog.forget(first);
    while (store.nextId !== first) store.free(store.add(USERS, '', 0, [], 0, 0));
    watchdog.watch(2);
    const second = write(2);
    assert.equal(second, first, 'the same packet id, a new message');
    mock.timers.tick(750);
    rewrite(second, 2); // PUBREC came: the wait for PUBCOMP starts now
    mock.timers.tick(1000);
    assert.equal(silences.length, 1, 'not silent: answered 1 s ago');
    mock.timers.tick(250);
    assert.equal(silences.length, 2, 'a new silence on a new connection is a first time');
    assert.deepEqual(failures, []);
  });

  it('takes one tick per quarter of the timeout, and none at QoS 0, without a timeout, or once stopped', () => {
    assert.equal(WATCH_TICKS, 4);
    for (const [qos, timeout] of [
      [0, 1000],
      [1, null],
    ] as const) {
      const { watchdog, silences, write } = watch(qos, timeout);
      watchdog.start();
      watchdog.watch(1);
      write(1);
      mock.timers.tick(60_000);
      assert.deepEqual(silences, [], `QoS ${qos}, timeout ${timeout}`);
    }
    const { watchdog, silences, write } = watch();
    watchdog.start();
    watchdog.start(); // started once only
    watchdog.watch(1);
    write(1);
    mock.timers.tick(1000);
    watchdog.stop();
    mock.timers.tick(60_000);
    assert.deepEqual(silences, [], 'stopped before the fifth tick');
  });
});
