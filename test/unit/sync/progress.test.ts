import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressIntervalMs, progressMessage } from '../../../src/sync/progress.js';

describe('progress', () => {
  it('reports at most every 30 seconds, however LOG_PROGRESS_SECONDS is set', () => {
    assert.equal(progressIntervalMs(undefined), 30_000);
    assert.equal(progressIntervalMs(''), 30_000);
    assert.equal(progressIntervalMs('nonsense'), 30_000);
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
});
