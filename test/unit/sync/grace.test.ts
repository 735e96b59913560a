/**
 * The grace period on its own, over fake channels whose drain the test settles, with node:test's mocked timers: time
 * moves only when the test ticks it.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { type ConnectorError, InterruptedError } from '../../../src/errors.js';
import type { LogLevel } from '../../../src/log.js';
import type { Channels } from '../../../src/sync/channels.js';
import { GracePeriod } from '../../../src/sync/grace.js';
import type { LedgerCounts } from '../../../src/sync/summary.js';

const GRACE_MS = 10_000;

interface Harness {
  readonly grace: GracePeriod;
  /** Every step taken, in order: pause, flush, log:<level>, now, drained. */
  readonly steps: string[];
  readonly logs: string[];
  readonly stoppedNow: ConnectorError[];
  readonly stoppedDrained: ConnectorError[];
  /** Settles the channels' drain. */
  readonly drained: () => void;
  readonly drainFailed: () => void;
  /** How many times the channels were asked to drain. */
  readonly drains: () => number;
  readonly channels: { unacknowledged: number };
}

function harness(options: { inFlight?: number; flushed?: number; graceMs?: number } = {}): Harness {
  const steps: string[] = [];
  const logs: string[] = [];
  const stoppedNow: ConnectorError[] = [];
  const stoppedDrained: ConnectorError[] = [];
  let settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
  let drains = 0;
  const channels = {
    unacknowledged: options.inFlight ?? 7,
    drain: (): Promise<void> => {
      drains++;
      return new Promise<void>((resolve, reject) => {
        settle = { resolve, reject };
      });
    },
  };
  const ledger: LedgerCounts = { recordsReceived: 12, recordsAcknowledged: 5, statesEmitted: 2, statesHeld: 1 };
  const grace = new GracePeriod(options.graceMs ?? GRACE_MS, {
    channels: channels as unknown as Channels,
    ledger,
    pauseInput: () => steps.push('pause'),
    flush: () => {
      steps.push('flush');
      // Sending the open batches puts them in flight.
      channels.unacknowledged += options.flushed ?? 0;
    },
    stopNow: (error) => {
      steps.push('now');
      stoppedNow.push(error);
    },
    stopDrained: (error) => {
      steps.push('drained');
      stoppedDrained.push(error);
    },
    log: (level: LogLevel, message: string) => {
      steps.push(`log:${level}`);
      logs.push(message);
    },
  });
  return {
    grace,
    steps,
    logs,
    stoppedNow,
    stoppedDrained,
    drained: () => settle?.resolve(),
    drainFailed: () => settle?.reject(new Error('stopped')),
    drains: () => drains,
    channels,
  };
}

/** Lets promise callbacks run (setImmediate is not mocked). */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function assertInterrupted(error: ConnectorError | undefined, signal: string): void {
  assert.ok(error instanceof InterruptedError, `expected an InterruptedError, got ${String(error)}`);
  assert.equal(error.failureType, 'transient_error');
  assert.match(error.message, new RegExp(`interrupted by ${signal} before its input was complete: 5 of 12 record`));
  assert.match(error.message, /2 state message\(s\) emitted, 1 withheld/);
}

describe('GracePeriod', () => {
  afterEach(() => mock.timers.reset());

  it('on the first signal reads no more input, sends the open batches, warns, and stops drained once all is acknowledged', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const h = harness({ inFlight: 7 });
    assert.equal(h.grace.interruptedBy, undefined);
    h.grace.received('SIGTERM');
    assert.equal(h.grace.interruptedBy, 'SIGTERM');
    assert.deepEqual(h.steps.filter((step) => step !== 'log:WARN').slice(0, 2), ['pause', 'flush']);
    assert.equal(h.steps[0], 'pause', 'input stops first');
    assert.ok(h.steps.includes('log:WARN'));
    assert.equal(h.logs.length, 1);
    assert.match(
      h.logs[0] ?? '',
      /^Received SIGTERM: reading no more input; waiting up to 10 s for the broker to acknowledge 7 message\(s\) in flight\.$/,
    );
    assert.equal(h.drains(), 1);
    assert.equal(h.stoppedNow.length, 0);
    assert.equal(h.stoppedDrained.length, 0, 'not before the channels drain');
    mock.timers.tick(GRACE_MS - 1);
    await settled();
    assert.equal(h.stoppedNow.length, 0);
    h.drained();
    await settled();
    assert.equal(h.stoppedDrained.length, 1);
    assertInterrupted(h.stoppedDrained[0], 'SIGTERM');
    mock.timers.tick(GRACE_MS);
    assert.equal(h.stoppedNow.length, 0, 'the grace timer is cleared once drained');
  });

  it('stops at once when the grace period runs out before the channels drain', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const h = harness();
    h.grace.received('SIGINT');
    mock.timers.tick(GRACE_MS - 1);
    assert.equal(h.stoppedNow.length, 0);
    mock.timers.tick(1);
    assert.equal(h.stoppedNow.length, 1);
    assertInterrupted(h.stoppedNow[0], 'SIGINT');
    await settled();
    assert.equal(h.stoppedDrained.length, 0);
  });

  it('says the grace time in seconds as configured', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const h = harness({ graceMs: 2500, inFlight: 0 });
    h.grace.received('SIGTERM');
    assert.match(h.logs[0] ?? '', /waiting up to 2\.5 s for the broker to acknowledge 0 message\(s\)/);
  });

  it('stops at once on a second signal, without waiting for the grace period', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const h = harness();
    h.grace.received('SIGTERM');
    assert.equal(h.stoppedNow.length, 0);
    h.grace.received('SIGINT');
    assert.equal(h.stoppedNow.length, 1);
    assert.ok(h.stoppedNow[0] instanceof InterruptedError);
    assert.equal(h.grace.interruptedBy, 'SIGTERM', 'the sync was stopped by the first');
    assert.equal(h.steps.filter((step) => step === 'pause').length, 1, 'the second signal starts nothing again');
    assert.equal(h.steps.filter((step) => step === 'flush').length, 1);
    assert.equal(h.drains(), 1);
    assert.equal(h.logs.length, 1);
  });

  it('does nothing once the sync has ended for another reason', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const h = harness();
    h.grace.end();
    h.grace.received('SIGTERM');
    h.grace.received('SIGTERM');
    mock.timers.tick(GRACE_MS);
    await settled();
    assert.equal(h.steps.length, 0);
    assert.equal(h.drains(), 0);
    assert.equal(h.grace.interruptedBy, undefined);
  });

  it('ignores a second signal that arrives after the sync ended', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const h = harness();
    h.grace.received('SIGTERM');
    h.grace.end();
    h.grace.received('SIGINT');
    assert.equal(h.stoppedNow.length, 0);
  });

  it('clears the grace timer when the drain fails (the sync stopped for another reason)', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const h = harness();
    h.grace.received('SIGTERM');
    h.drainFailed();
    await settled();
    mock.timers.tick(GRACE_MS);
    assert.equal(h.stoppedNow.length, 0);
    assert.equal(h.stoppedDrained.length, 0);
  });

  it('listens for SIGTERM and SIGINT only until told to stop', () => {
    const h = harness();
    const before = ['SIGTERM', 'SIGINT'].map((signal) => process.listenerCount(signal));
    h.grace.listen();
    assert.deepEqual(
      ['SIGTERM', 'SIGINT'].map((signal) => process.listenerCount(signal)),
      before.map((count) => count + 1),
    );
    h.grace.stopListening();
    assert.deepEqual(
      ['SIGTERM', 'SIGINT'].map((signal) => process.listenerCount(signal)),
      before,
    );
  });

  it('counts the open batches it has just sent among the messages in flight it waits for', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const h = harness({ inFlight: 7, flushed: 2 });
    h.grace.received('SIGTERM');
    assert.match(h.logs[0] ?? '', /acknowledge 9 message\(s\) in flight/);
  });
  it('acts on a signal that arrives while it listens, as the first signal of the grace period', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const h = harness();
    const before = process.listeners('SIGTERM');
    h.grace.listen();
    try {
      // Calls the listener it added (emitting the signal would reach every other listener of the process too).
      const added = process.listeners('SIGTERM').filter((listener) => !before.includes(listener));
      assert.equal(added.length, 1);
      for (const listener of added) listener('SIGTERM');
    } finally {
      h.grace.stopListening();
    }
    assert.equal(h.grace.interruptedBy, 'SIGTERM');
    assert.deepEqual(h.steps, ['pause', 'flush', 'log:WARN']);
    assert.equal(h.drains(), 1);
  });
});
