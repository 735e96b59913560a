/**
 * The progress LOG line: its interval from LOG_PROGRESS_SECONDS, its wording, and the reporter that writes it on a
 * timer (mock timers, no waiting) with the acknowledgement rate over the interval just past.
 */
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import type { LogLevel } from '../../../src/log.js';
import { Progress, progressIntervalMs, progressMessage } from '../../../src/sync/progress.js';

describe('progress', () => {
  it('reports at most every 30 seconds, however LOG_PROGRESS_SECONDS is set', () => {
    assert.equal(progressIntervalMs(undefined), 30_000);
    assert.equal(progressIntervalMs(''), 30_000);
    assert.equal(progressIntervalMs('nonsense'), 30_000);
    assert.equal(progressIntervalMs('  '), 30_000, 'blank is unset, not zero');
    assert.equal(progressIntervalMs('120'), 30_000);
    assert.equal(progressIntervalMs('5'), 5000);
    assert.equal(progressIntervalMs('0'), 1000);
  });

  it('names records received, acknowledged and in flight, states emitted and the rate', () => {
    const line = progressMessage(
      { received: 12_000, acknowledged: 11_000, statesEmitted: 7, connected: true },
      1000,
      2000,
    );
    assert.equal(
      line,
      'Progress: 12000 record(s) received, 11000 acknowledged, 1000 in flight, 7 state(s) emitted; 5000 record(s)/s acknowledged over the last 2.0 s.',
    );
    assert.match(
      progressMessage({ received: 1, acknowledged: 0, statesEmitted: 0, connected: false }, 0, 1000),
      /0 record\(s\)\/s .*; reconnecting to the broker\.$/,
    );
  });

  it('counts the input bytes read, and the bytes of a line still arriving', () => {
    const sample = { received: 0, acknowledged: 0, statesEmitted: 0, connected: true };
    assert.match(
      progressMessage(
        { ...sample, input: { bytesRead: 5_000_000, pendingLineNumber: 1, pendingLineBytes: 5_000_000 } },
        0,
        1000,
      ),
      /; 5000000 input byte\(s\) read, line 1 arriving \(5000000 bytes so far\)\.$/,
    );
    assert.match(
      progressMessage({ ...sample, input: { bytesRead: 300, pendingLineNumber: 4, pendingLineBytes: 0 } }, 0, 1000),
      /; 300 input byte\(s\) read\.$/,
    );
  });
  it('reports no rate, rather than an infinite one, over an interval of no time', () => {
    const sample = { received: 5, acknowledged: 5, statesEmitted: 0, connected: true };
    assert.match(progressMessage(sample, 0, 0), /; 0 record\(s\)\/s acknowledged over the last 0\.0 s\.$/);
  });

  it('logs the counts at every interval, the rate over the interval just past, and nothing once stopped', () => {
    const previous = process.env.LOG_PROGRESS_SECONDS;
    process.env.LOG_PROGRESS_SECONDS = '10';
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    try {
      const counts = { recordsReceived: 0, recordsAcknowledged: 0, statesEmitted: 0 };
      let connected = true;
      const lines: [LogLevel, string][] = [];
      const progress = new Progress(
        {
          ledger: counts,
          connected: () => connected,
          input: () => ({ bytesRead: counts.recordsReceived * 10, pendingLineNumber: 0, pendingLineBytes: 0 }),
        },
        (level, message) => lines.push([level, message]),
      );
      progress.start();
      mock.timers.tick(9_999);
      assert.deepEqual(lines, []);
      Object.assign(counts, { recordsReceived: 300, recordsAcknowledged: 200, statesEmitted: 2 });
      mock.timers.tick(1);
      Object.assign(counts, { recordsReceived: 500, recordsAcknowledged: 500, statesEmitted: 4 });
      connected = false;
      mock.timers.tick(10_000);
      progress.stop();
      mock.timers.tick(60_000);
      assert.deepEqual(lines, [
        [
          'INFO',
          'Progress: 300 record(s) received, 200 acknowledged, 100 in flight, 2 state(s) emitted; ' +
            '20 record(s)/s acknowledged over the last 10.0 s; 3000 input byte(s) read.',
        ],
        [
          'INFO',
          'Progress: 500 record(s) received, 500 acknowledged, 0 in flight, 4 state(s) emitted; ' +
            '30 record(s)/s acknowledged over the last 10.0 s; 5000 input byte(s) read; reconnecting to the broker.',
        ],
      ]);
    } finally {
      mock.timers.reset();
      if (previous === undefined) delete process.env.LOG_PROGRESS_SECONDS;
      else process.env.LOG_PROGRESS_SECONDS = previous;
    }
  });
});
